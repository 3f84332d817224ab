package main

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// bareTwoStatement measures the ingest goal's yardstick on the same server in
// the same run: a transaction of two single-row statements (record an
// event ID, upsert one object's state), prepared, at concurrency conc, one
// transaction per event. Ingest figures are reported against it so that
// runs on machines of different speed compare.
func (c *config) bareTwoStatement(ctx context.Context, conc, n int) (loadResult, error) {
	dbURL, err := c.freshDB("bench_bare2")
	if err != nil {
		return loadResult{}, err
	}
	db, err := sqlx.Open("postgres", dbURL)
	if err != nil {
		return loadResult{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(conc)
	db.SetMaxIdleConns(conc)
	if _, err := db.ExecContext(ctx, `
CREATE TABLE bare_events (event_id text PRIMARY KEY, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE bare_objects (id text PRIMARY KEY, state text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return loadResult{}, err
	}
	ins, err := db.PreparexContext(ctx, `INSERT INTO bare_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING`)
	if err != nil {
		return loadResult{}, err
	}
	up, err := db.PreparexContext(ctx, `INSERT INTO bare_objects (id, state) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`)
	if err != nil {
		return loadResult{}, err
	}
	return runLoad(ctx, conc, n, func(ctx context.Context, i int) error {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit a no-op
		if _, err := tx.StmtxContext(ctx, ins).ExecContext(ctx, fmt.Sprintf("evt_bare%07d", i)); err != nil {
			return err
		}
		if _, err := tx.StmtxContext(ctx, up).ExecContext(ctx, fmt.Sprintf("sub_bare%07d", i), "active"); err != nil {
			return err
		}
		return tx.Commit()
	})
}
