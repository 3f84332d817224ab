package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
)

// dashboardSessionKeyName is the instance_keys row that signs dashboard
// session cookies.
const dashboardSessionKeyName = "dashboard_session"

// DashboardSessionKey returns the key that signs the finance dashboard's
// session cookies, generating it on first use and keeping it in
// instance_keys so that every replica accepts every other replica's
// cookies. Deleting the row (and restarting) ends every session.
func (s *Store) DashboardSessionKey(ctx context.Context) ([]byte, error) {
	const qInsert = `
INSERT INTO instance_keys (name, key)
VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING`
	const qSelect = `
SELECT key FROM instance_keys WHERE name = $1`
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate dashboard session key: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, qInsert, dashboardSessionKeyName, fresh); err != nil {
		return nil, fmt.Errorf("store dashboard session key: %w", translate(err))
	}
	var key []byte
	if err := s.db.GetContext(ctx, &key, qSelect, dashboardSessionKeyName); err != nil {
		return nil, fmt.Errorf("load dashboard session key: %w", translate(err))
	}
	return key, nil
}
