package postgres

import (
	"context"
	"fmt"
)

// RecentEventModes counts the live- and test-mode events among the last n
// recorded (by arrival; the received_at index makes this a short scan
// whatever the table's size).
func (s *Store) RecentEventModes(ctx context.Context, n int) (live, test int, err error) {
	const q = `
SELECT count(*) FILTER (WHERE livemode), count(*) FILTER (WHERE NOT livemode)
FROM (SELECT livemode FROM stripe_events ORDER BY received_at DESC LIMIT $1) recent`
	if err := s.db.QueryRowContext(ctx, q, n).Scan(&live, &test); err != nil {
		return 0, 0, fmt.Errorf("read recent event modes: %w", translate(err))
	}
	return live, test, nil
}
