package postgres

import (
	"context"
	"fmt"
	"time"
)

// ReserveRateSlot reserves the next start time for a request to the API
// called name, at least gap after the previous reservation of any replica
// (rate_slots). It returns the slot and how long to wait for it; times are
// the database's clock, so replicas' clocks need not agree.
func (s *Store) ReserveRateSlot(ctx context.Context, name string, gap time.Duration) (time.Time, time.Duration, error) {
	const q = `
INSERT INTO rate_slots AS r (name, next_at)
VALUES ($1, clock_timestamp() + make_interval(secs => $2))
ON CONFLICT (name) DO UPDATE
SET next_at = greatest(r.next_at, clock_timestamp()) + make_interval(secs => $2)
RETURNING r.next_at - make_interval(secs => $2) AS slot,
          EXTRACT(EPOCH FROM r.next_at - make_interval(secs => $2) - clock_timestamp())::float8 AS wait`
	var r struct {
		Slot time.Time `db:"slot"`
		Wait float64   `db:"wait"`
	}
	if err := s.db.QueryRowxContext(ctx, q, name, gap.Seconds()).StructScan(&r); err != nil {
		return time.Time{}, 0, fmt.Errorf("reserve %s rate slot: %w", name, translate(err))
	}
	return r.Slot, max(0, time.Duration(r.Wait*float64(time.Second))), nil
}

// PauseRateSlots moves the API's next slot to at least d from now (its
// Retry-After), for every replica.
func (s *Store) PauseRateSlots(ctx context.Context, name string, d time.Duration) error {
	const q = `
INSERT INTO rate_slots AS r (name, next_at)
VALUES ($1, clock_timestamp() + make_interval(secs => $2))
ON CONFLICT (name) DO UPDATE
SET next_at = greatest(r.next_at, EXCLUDED.next_at)`
	if _, err := s.db.ExecContext(ctx, q, name, d.Seconds()); err != nil {
		return fmt.Errorf("pause %s rate slots: %w", name, translate(err))
	}
	return nil
}
