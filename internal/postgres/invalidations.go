package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// Cache invalidation goes through a table, not NOTIFY: NOTIFY serialises
// the commits of every notifying transaction on one database-wide lock,
// fsync included, which capped webhook ingest near 1/fsync time. A row is
// an ordinary insert. Readers (internal/entcache) poll it by transaction
// ID: each poll reads rows written by transactions with xid >= the previous
// poll's snapshot xmin. Every transaction not visible to that snapshot was
// either running then (xid >= xmin) or began later (larger xid), so no
// committed row is ever skipped, whatever the commit order; rows read twice
// are deduplicated by ID.

const (
	invalidationAccount = 1
	invalidationToken   = 2
	// invalidationAll: every entitlement answer (the catalog changed).
	invalidationAll = 3
)

const qInsertInvalidation = `INSERT INTO cache_invalidations (kind, bucket) VALUES ($1, $2)`

// insertInvalidation appends one row to the feed in tx (prepared when tx
// is the event path's ptx).
func insertInvalidation(ctx context.Context, tx sqlx.ExecerContext, kind int, bucket uint16) error {
	if _, err := tx.ExecContext(ctx, qInsertInvalidation, kind, int(bucket)); err != nil {
		return fmt.Errorf("record cache invalidation: %w", translate(err))
	}
	return nil
}

// Invalidations returns the snapshot xmin to pass to the next call and the
// feed rows written since the xmin of the previous call (since = 0: just
// the current xmin, no rows: the caller starts from a flushed cache).
func (s *Store) Invalidations(ctx context.Context, since uint64) (uint64, []billing.Invalidation, error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return 0, nil, fmt.Errorf("read cache invalidations: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var xmin string
	// The first statement fixes the transaction's snapshot: the rows read
	// next are exactly those visible to the snapshot whose xmin this is.
	if err := tx.GetContext(ctx, &xmin, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`); err != nil {
		return 0, nil, fmt.Errorf("read snapshot xmin: %w", translate(err))
	}
	next, err := strconv.ParseUint(xmin, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("parse snapshot xmin %q: %w", xmin, err)
	}
	if since == 0 {
		return next, nil, nil
	}
	const q = `SELECT id, kind, bucket FROM cache_invalidations WHERE xid >= $1::text::xid8`
	rows, err := tx.QueryContext(ctx, q, strconv.FormatUint(since, 10))
	if err != nil {
		return 0, nil, fmt.Errorf("read cache invalidations: %w", translate(err))
	}
	defer rows.Close()
	var out []billing.Invalidation
	for rows.Next() {
		var id int64
		var kind, bucket int
		if err := rows.Scan(&id, &kind, &bucket); err != nil {
			return 0, nil, fmt.Errorf("read cache invalidations: %w", translate(err))
		}
		out = append(out, billing.Invalidation{ID: id, Token: kind == invalidationToken, All: kind == invalidationAll, Bucket: uint16(bucket)})
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("read cache invalidations: %w", translate(err))
	}
	return next, out, nil
}

// PurgeInvalidations deletes feed rows older than age. Every poller calls it
// now and then; a poller that fell that far behind has lost its freshness
// proof long before and flushes when it recovers.
func (s *Store) PurgeInvalidations(ctx context.Context, age time.Duration) error {
	const q = `DELETE FROM cache_invalidations WHERE at < now() - make_interval(secs => $1)`
	if _, err := s.db.ExecContext(ctx, q, age.Seconds()); err != nil {
		return fmt.Errorf("purge cache invalidations: %w", translate(err))
	}
	return nil
}
