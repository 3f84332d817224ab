package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/lib/pq"
)

// The missed-event sweeper's progress (stripe_sweep_cursors): one row per
// mode and group of event types. It runs under the Stripe sync lock
// (TryStripeSyncLock), so one replica writes these rows at a time.

// SweepCursors returns the mode's cursors keyed by type group.
func (s *Store) SweepCursors(ctx context.Context, livemode bool) (map[string]billing.SweepCursor, error) {
	const q = `
SELECT event_types, event_id, event_created, completed_at
FROM stripe_sweep_cursors WHERE livemode = $1`
	var rows []struct {
		Types       string     `db:"event_types"`
		EventID     *string    `db:"event_id"`
		Created     *time.Time `db:"event_created"`
		CompletedAt *time.Time `db:"completed_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, livemode); err != nil {
		return nil, fmt.Errorf("read sweep cursors: %w", translate(err))
	}
	out := make(map[string]billing.SweepCursor, len(rows))
	for _, r := range rows {
		c := billing.SweepCursor{Livemode: livemode, Types: r.Types, EventCreated: r.Created, CompletedAt: r.CompletedAt}
		if r.EventID != nil {
			c.EventID = *r.EventID
		}
		out[r.Types] = c
	}
	return out, nil
}

// SaveSweepCursor records a group's progress.
func (s *Store) SaveSweepCursor(ctx context.Context, c billing.SweepCursor) error {
	const q = `
INSERT INTO stripe_sweep_cursors (livemode, event_types, event_id, event_created, completed_at)
VALUES ($1, $2, NULLIF($3, ''), $4, $5)
ON CONFLICT (livemode, event_types) DO UPDATE SET event_id = EXCLUDED.event_id,
    event_created = EXCLUDED.event_created, completed_at = EXCLUDED.completed_at, updated_at = now()`
	if _, err := s.db.ExecContext(ctx, q, c.Livemode, c.Types, c.EventID, c.EventCreated, c.CompletedAt); err != nil {
		return fmt.Errorf("save sweep cursor: %w", translate(err))
	}
	return nil
}

// DropSweepCursors deletes the mode's cursors of type groups not in keep:
// groups of an older set of handled types, once every current group has
// been swept.
func (s *Store) DropSweepCursors(ctx context.Context, livemode bool, keep []string) error {
	const q = `DELETE FROM stripe_sweep_cursors WHERE livemode = $1 AND NOT (event_types = ANY($2))`
	if _, err := s.db.ExecContext(ctx, q, livemode, pq.Array(keep)); err != nil {
		return fmt.Errorf("drop sweep cursors: %w", translate(err))
	}
	return nil
}

// LastSweep is when a sweep of the mode last completed (every group's
// completed_at, the oldest of them); ok is false before the first one.
func (s *Store) LastSweep(ctx context.Context, livemode bool) (at time.Time, ok bool, err error) {
	const q = `
SELECT min(completed_at), bool_and(completed_at IS NOT NULL) AND count(*) > 0
FROM stripe_sweep_cursors WHERE livemode = $1`
	var last *time.Time
	var all *bool
	if err := s.db.QueryRowxContext(ctx, q, livemode).Scan(&last, &all); err != nil {
		return time.Time{}, false, fmt.Errorf("read last sweep: %w", translate(err))
	}
	if last == nil || all == nil || !*all {
		return time.Time{}, false, nil
	}
	return *last, true, nil
}
