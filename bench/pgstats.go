package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// statementStats resets (reset=true) or prints pg_stat_statements for one
// database: the statements that took the most total time, with calls and
// mean time. Queries are parameterised, so nothing but SQL text is shown.
// A no-op when the extension is not preloaded (an external DATABASE_URL).
func (c *config) statementStats(ctx context.Context, dbURL, label string, reset bool) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return
	}
	if reset {
		_, _ = db.ExecContext(ctx, `SELECT pg_stat_statements_reset()`)
		return
	}
	rows, err := db.QueryContext(ctx, `
SELECT calls, total_exec_time, mean_exec_time, query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC LIMIT 15`)
	if err != nil {
		return
	}
	defer rows.Close()
	for i := 1; rows.Next(); i++ {
		var calls int64
		var total, mean float64
		var q string
		if rows.Scan(&calls, &total, &mean, &q) != nil {
			return
		}
		q = strings.Join(strings.Fields(q), " ")
		if len(q) > 110 {
			q = q[:110] + "…"
		}
		c.print(fmt.Sprintf("pgstat_%s_%02d", label, i), "calls=%d total_ms=%.0f mean_ms=%.3f %s", calls, total, mean, q)
	}
}
