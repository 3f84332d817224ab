package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/lib/pq"
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

// ClearBackfillCursors ends a run, its parts too: the next backfill starts
// from the top.
func (s *Store) ClearBackfillCursors(ctx context.Context) error {
	const q = `WITH p AS (DELETE FROM backfill_partitions) DELETE FROM backfill_cursors`
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("clear backfill cursors: %w", translate(err))
	}
	return nil
}

// BackfillPartitions returns the parts of the current partitioned run,
// keyed by list and sorted by part; empty when none is in progress.
func (s *Store) BackfillPartitions(ctx context.Context) (map[string][]billing.BackfillPartition, error) {
	const q = `SELECT list, part, created_gte, created_lte, done, objects FROM backfill_partitions ORDER BY list, part`
	var rows []struct {
		List       string     `db:"list"`
		Part       int        `db:"part"`
		CreatedGTE *time.Time `db:"created_gte"`
		CreatedLTE *time.Time `db:"created_lte"`
		Done       bool       `db:"done"`
		Objects    int64      `db:"objects"`
	}
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("read backfill partitions: %w", translate(err))
	}
	out := map[string][]billing.BackfillPartition{}
	for _, r := range rows {
		out[r.List] = append(out[r.List], billing.BackfillPartition{List: r.List, Part: r.Part,
			CreatedGTE: r.CreatedGTE, CreatedLTE: r.CreatedLTE, Done: r.Done, Objects: r.Objects})
	}
	return out, nil
}

// SaveBackfillPartitions records parts in one statement, so a split (the
// running part's new lower bound and the new part below it) is stored
// whole or not at all.
func (s *Store) SaveBackfillPartitions(ctx context.Context, ps []billing.BackfillPartition) error {
	if len(ps) == 0 {
		return nil
	}
	const q = `
INSERT INTO backfill_partitions (list, part, created_gte, created_lte, done, objects)
SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::timestamptz[], $5::boolean[], $6::bigint[])
ON CONFLICT (list, part) DO UPDATE SET created_gte = EXCLUDED.created_gte, created_lte = EXCLUDED.created_lte,
    done = EXCLUDED.done, objects = EXCLUDED.objects, updated_at = now()`
	lists, parts, done, objects := make([]string, len(ps)), make([]int64, len(ps)), make([]bool, len(ps)), make([]int64, len(ps))
	gte, lte := make([]*time.Time, len(ps)), make([]*time.Time, len(ps))
	for i, p := range ps {
		lists[i], parts[i], gte[i], lte[i], done[i], objects[i] = p.List, int64(p.Part), p.CreatedGTE, p.CreatedLTE, p.Done, p.Objects
	}
	if _, err := s.db.ExecContext(ctx, q, pq.Array(lists), pq.Array(parts), timeArray(gte), timeArray(lte), pq.Array(done), pq.Array(objects)); err != nil {
		return fmt.Errorf("save backfill partitions: %w", translate(err))
	}
	return nil
}

// timeArray renders optional times as a PostgreSQL array literal (NULL
// for nil): pq.Array has no time.Time case.
func timeArray(ts []*time.Time) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		if t == nil {
			b.WriteString("NULL")
		} else {
			b.WriteString(`"` + t.UTC().Format(time.RFC3339Nano) + `"`)
		}
	}
	b.WriteByte('}')
	return b.String()
}
