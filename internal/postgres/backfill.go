package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// Backfill progress (backfill_cursors) and the lock that keeps one
// backfill or reconcile running at a time across replicas and commands.

// StripeSyncLockKey is the session advisory lock held by a backfill or
// reconcile run (command or RECONCILE_INTERVAL scheduler), so two never
// walk Stripe's lists at once.
const StripeSyncLockKey int64 = 0x62696c6c73796e63 // "billsync"

// TryStripeSyncLock takes the Stripe sync lock on a connection of its own
// if no one holds it. ok is false when another run holds it; otherwise the
// caller must call release when done (closing the session frees the lock
// even if release is never reached, e.g. on kill -9).
func (s *Store) TryStripeSyncLock(ctx context.Context) (release func(), ok bool, err error) {
	conn, err := s.sess.Connx(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("stripe sync lock: connect: %w", translate(err))
	}
	if err := conn.GetContext(ctx, &ok, `SELECT pg_try_advisory_lock($1)`, StripeSyncLockKey); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("stripe sync lock: %w", translate(err))
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, StripeSyncLockKey)
		conn.Close()
	}, true, nil
}

// BackfillCursors returns the progress of the current run, keyed by list;
// empty when no run is in progress.
func (s *Store) BackfillCursors(ctx context.Context) (map[string]billing.BackfillCursor, error) {
	const q = `SELECT list, created_lte, done, objects FROM backfill_cursors`
	var rows []struct {
		List       string     `db:"list"`
		CreatedLTE *time.Time `db:"created_lte"`
		Done       bool       `db:"done"`
		Objects    int64      `db:"objects"`
	}
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("read backfill cursors: %w", translate(err))
	}
	out := make(map[string]billing.BackfillCursor, len(rows))
	for _, r := range rows {
		out[r.List] = billing.BackfillCursor{List: r.List, CreatedLTE: r.CreatedLTE, Done: r.Done, Objects: r.Objects}
	}
	return out, nil
}

// SaveBackfillCursor records one list's progress.
func (s *Store) SaveBackfillCursor(ctx context.Context, c billing.BackfillCursor) error {
	const q = `
INSERT INTO backfill_cursors (list, created_lte, done, objects)
VALUES ($1, $2, $3, $4)
ON CONFLICT (list) DO UPDATE SET created_lte = EXCLUDED.created_lte, done = EXCLUDED.done,
    objects = EXCLUDED.objects, updated_at = now()`
	if _, err := s.db.ExecContext(ctx, q, c.List, c.CreatedLTE, c.Done, c.Objects); err != nil {
		return fmt.Errorf("save backfill cursor: %w", translate(err))
	}
	return nil
}

// ClearBackfillCursors ends a run: the next backfill starts from the top.
func (s *Store) ClearBackfillCursors(ctx context.Context) error {
	const q = `DELETE FROM backfill_cursors`
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("clear backfill cursors: %w", translate(err))
	}
	return nil
}
