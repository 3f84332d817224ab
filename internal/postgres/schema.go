package postgres

import (
	"context"
	"fmt"
)

// SchemaColumns returns every base table in the current schema with its
// columns in ordinal order, for the privacy inventory check. golang-migrate's
// schema_migrations is bookkeeping and is left out.
func (s *Store) SchemaColumns(ctx context.Context) (map[string][]string, error) {
	const q = `
SELECT c.table_name, c.column_name
FROM information_schema.columns c
JOIN information_schema.tables t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = current_schema()
  AND t.table_type = 'BASE TABLE'
  AND c.table_name <> 'schema_migrations'
ORDER BY c.table_name, c.ordinal_position`
	var rows []struct {
		Table  string `db:"table_name"`
		Column string `db:"column_name"`
	}
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("list schema columns: %w", translate(err))
	}
	out := make(map[string][]string)
	for _, r := range rows {
		out[r.Table] = append(out[r.Table], r.Column)
	}
	return out, nil
}
