package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// maxSessionsPerToken bounds the live dashboard sessions of one token: a
// script signing in in a loop cannot grow the table without limit; the
// oldest sessions go first.
const maxSessionsPerToken = 50

// DashboardSessionCreate stores a new dashboard session (its ID's hash,
// never the ID) and drops the token's oldest sessions beyond
// maxSessionsPerToken.
func (s *Store) DashboardSessionCreate(ctx context.Context, ds billing.DashboardSession) error {
	const qInsert = `
INSERT INTO dashboard_sessions (session_hash, token_id, created_at, expires_at, idle_expires_at)
VALUES ($1, $2, $3, $4, $5)`
	const qTrim = `
DELETE FROM dashboard_sessions
WHERE token_id = $1 AND session_hash IN (
    SELECT session_hash FROM dashboard_sessions WHERE token_id = $1
    ORDER BY created_at DESC OFFSET $2)`
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, qInsert, ds.Hash[:], ds.TokenID, ds.CreatedAt, ds.ExpiresAt, ds.IdleExpiresAt); err != nil {
			return translate(err)
		}
		if _, err := tx.ExecContext(ctx, qTrim, ds.TokenID, maxSessionsPerToken); err != nil {
			return translate(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create dashboard session: %w", err)
	}
	return nil
}

// DashboardSession returns the session stored under hash and its token's
// record as stored now (so a revocation shows at once, on every replica);
// billing.ErrNotFound when there is no such session. Whether it is still
// active is the caller's rule (billing.DashboardSession.Active).
func (s *Store) DashboardSession(ctx context.Context, hash billing.TokenHash) (billing.DashboardSession, billing.Token, error) {
	const q = `
SELECT s.token_id, s.created_at, s.expires_at, s.idle_expires_at,
       t.id, t.name, t.scope, t.token_hash, t.created_at, t.last_used_at, t.revoked_at
FROM dashboard_sessions s JOIN api_tokens t ON t.id = s.token_id
WHERE s.session_hash = $1`
	ds := billing.DashboardSession{Hash: hash}
	var t dbToken
	err := s.db.QueryRowContext(ctx, q, hash[:]).Scan(&ds.TokenID, &ds.CreatedAt, &ds.ExpiresAt, &ds.IdleExpiresAt,
		&t.ID, &t.Name, &t.Scope, &t.Hash, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return billing.DashboardSession{}, billing.Token{}, fmt.Errorf("get dashboard session: %w", billing.ErrNotFound)
	}
	if err != nil {
		return billing.DashboardSession{}, billing.Token{}, fmt.Errorf("get dashboard session: %w", translate(err))
	}
	return ds, t.toToken(), nil
}

// DashboardSessionTouch moves the session's idle expiry forward to
// idleUntil (never back, never past its lifetime cap).
func (s *Store) DashboardSessionTouch(ctx context.Context, hash billing.TokenHash, idleUntil time.Time) error {
	const q = `
UPDATE dashboard_sessions SET idle_expires_at = least($2, expires_at)
WHERE session_hash = $1 AND idle_expires_at < least($2, expires_at)`
	if _, err := s.db.ExecContext(ctx, q, hash[:], idleUntil); err != nil {
		return fmt.Errorf("touch dashboard session: %w", translate(err))
	}
	return nil
}

// DashboardSessionDelete ends the session stored under hash (sign-out);
// ending one that does not exist is not an error.
func (s *Store) DashboardSessionDelete(ctx context.Context, hash billing.TokenHash) error {
	const q = `DELETE FROM dashboard_sessions WHERE session_hash = $1`
	if _, err := s.db.ExecContext(ctx, q, hash[:]); err != nil {
		return fmt.Errorf("delete dashboard session: %w", translate(err))
	}
	return nil
}

// purgeDashboardSessions deletes sessions past their lifetime cap or idle
// expiry at cutoff (they are refused already; this keeps the table small).
func purgeDashboardSessions(ctx context.Context, conn *sqlx.Conn, cutoff time.Time, batch int) (int64, error) {
	const q = `
DELETE FROM dashboard_sessions
WHERE session_hash IN (
    SELECT session_hash FROM dashboard_sessions WHERE idle_expires_at <= $1 LIMIT $2)`
	var total int64
	for {
		r, err := conn.ExecContext(ctx, q, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("purge dashboard sessions: %w", translate(err))
		}
		n, _ := r.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}
