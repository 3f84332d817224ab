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

type dbToken struct {
	ID         int64      `db:"id"`
	Name       string     `db:"name"`
	Scope      string     `db:"scope"`
	Hash       []byte     `db:"token_hash"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

func (d dbToken) toToken() billing.Token {
	t := billing.Token{ID: d.ID, Name: d.Name, Scope: billing.Scope(d.Scope),
		CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, RevokedAt: d.RevokedAt}
	copy(t.Hash[:], d.Hash)
	return t
}

// TokenCreate stores a new token's record (only its hash) and returns its ID.
func (s *Store) TokenCreate(ctx context.Context, name string, scope billing.Scope, hash billing.TokenHash) (int64, error) {
	if !billing.ValidTokenName(name) {
		return 0, fmt.Errorf("create token: %w: name must be 1-64 of A-Z a-z 0-9 _ . : -", billing.ErrInvalid)
	}
	if !scope.Valid() {
		return 0, fmt.Errorf("create token: %w: scope must be app or finance", billing.ErrInvalid)
	}
	const q = `INSERT INTO api_tokens (name, scope, token_hash) VALUES ($1, $2, $3) RETURNING id`
	var id int64
	if err := s.db.QueryRowContext(ctx, q, name, string(scope), hash[:]).Scan(&id); err != nil {
		return 0, fmt.Errorf("create token: %w", translate(err))
	}
	return id, nil
}

// TokenList returns every token record, revoked ones included, oldest first.
func (s *Store) TokenList(ctx context.Context) ([]billing.Token, error) {
	const q = `SELECT id, name, scope, token_hash, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id`
	var rows []dbToken
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("list tokens: %w", translate(err))
	}
	out := make([]billing.Token, len(rows))
	for i, r := range rows {
		out[i] = r.toToken()
	}
	return out, nil
}

// TokenByHash returns the record of the token with this hash, revoked or
// not; billing.ErrNotFound when there is none.
func (s *Store) TokenByHash(ctx context.Context, hash billing.TokenHash) (billing.Token, error) {
	const q = `SELECT id, name, scope, token_hash, created_at, last_used_at, revoked_at FROM api_tokens WHERE token_hash = $1`
	var r dbToken
	if err := s.db.GetContext(ctx, &r, q, hash[:]); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return billing.Token{}, fmt.Errorf("get token: %w", billing.ErrNotFound)
		}
		return billing.Token{}, fmt.Errorf("get token: %w", translate(err))
	}
	return r.toToken(), nil
}

// TokenTouch records that the token was used. Callers do it when they load
// a token into a cache, not per request, so last_used_at is as fresh as
// the cache lifetime and the hot path writes nothing.
func (s *Store) TokenTouch(ctx context.Context, id int64) error {
	const q = `UPDATE api_tokens SET last_used_at = now() WHERE id = $1`
	if _, err := s.db.ExecContext(ctx, q, id); err != nil {
		return fmt.Errorf("touch token: %w", translate(err))
	}
	return nil
}

// TokenRevoke revokes the token with this ID, ends its dashboard sessions
// and tells every replica to drop it from its cache (at commit). It reports whether the token was
// already revoked; billing.ErrNotFound when there is no such token.
func (s *Store) TokenRevoke(ctx context.Context, id int64) (already bool, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		const q = `
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1
RETURNING revoked_at < now()`
		// In one transaction now() is fixed, so a revocation made now reads
		// as "not before now" and an earlier one as before it.
		if err := tx.QueryRowContext(ctx, q, id).Scan(&already); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return billing.ErrNotFound
			}
			return translate(err)
		}
		// Its dashboard sessions end with it (sessions also check the
		// token on every request; this keeps no dead rows behind).
		if _, err := tx.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE token_id = $1`, id); err != nil {
			return translate(err)
		}
		return insertInvalidation(ctx, tx, invalidationToken, 0)
	})
	if err != nil {
		return false, fmt.Errorf("revoke token %d: %w", id, err)
	}
	return already, nil
}
