package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// linkValiditySlack is how far past a reference's expiry the link key's
// valid_until is recorded, so that a replica handing out references writes
// it about once an hour rather than once per reference.
const linkValiditySlack = time.Hour

// LinkReference returns a client_reference_id for accountID signed with
// the link ring's first key and valid for ttl (POST
// /v1/accounts/{id}/link-reference), and its expiry. An erased account
// gets billing.ErrAccountErased: no reference would ever link to it. The
// key's valid_until is recorded (key_fingerprints), so that a restart
// without that key is refused while references it signed are valid.
func (s *Store) LinkReference(ctx context.Context, accountID string, ttl time.Duration) (string, time.Time, error) {
	if !billing.ValidAccountID(accountID) {
		return "", time.Time{}, fmt.Errorf("link reference: %w: malformed account ID", billing.ErrInvalid)
	}
	if ttl < time.Minute || ttl > billing.MaxLinkReferenceTTL {
		return "", time.Time{}, fmt.Errorf("link reference: %w: validity must be from 1 minute to %s", billing.ErrInvalid, billing.MaxLinkReferenceTTL)
	}
	expires := time.Now().Add(ttl).Truncate(time.Second).UTC()
	ref, err := s.LinkReferenceUntil(ctx, accountID, expires)
	return ref, expires, err
}

// LinkReferenceUntil is LinkReference with the expiry chosen by the
// caller: a checkout session signs the same reference all day, so that a
// request retried with its idempotency key repeats its parameters exactly
// (billing.LinkReferenceExpiry).
func (s *Store) LinkReferenceUntil(ctx context.Context, accountID string, expires time.Time) (string, error) {
	if !billing.ValidAccountID(accountID) {
		return "", fmt.Errorf("link reference: %w: malformed account ID", billing.ErrInvalid)
	}
	if d := time.Until(expires); d <= 0 || d > billing.MaxLinkReferenceTTL {
		return "", fmt.Errorf("link reference: %w: expiry must be in the next %s", billing.ErrInvalid, billing.MaxLinkReferenceTTL)
	}
	er, err := s.erasureRing(ctx)
	if err != nil {
		return "", fmt.Errorf("link reference: %w", err)
	}
	t, err := readAccountTombstone(ctx, s.db, er, accountID)
	if err != nil {
		return "", fmt.Errorf("link reference: %w", err)
	}
	if t.Erased {
		return "", fmt.Errorf("link reference: %w", billing.ErrAccountErased)
	}
	lr, err := s.linkRing(ctx)
	if err != nil {
		return "", fmt.Errorf("link reference: %w", err)
	}
	if err := s.recordLinkValidity(ctx, lr.Fingerprints()[0], expires); err != nil {
		return "", fmt.Errorf("link reference: %w", err)
	}
	ref, err := billing.SignLinkReference(lr.Writer(), accountID, expires)
	if err != nil {
		return "", fmt.Errorf("link reference: %w", err)
	}
	return ref, nil
}

// recordLinkValidity makes sure key_fingerprints says the link key fp
// signed references valid until at least expires, before one is handed
// out.
func (s *Store) recordLinkValidity(ctx context.Context, fp string, expires time.Time) error {
	s.keys.mu.Lock()
	done := !expires.After(s.keys.linkRecordedUntil)
	s.keys.mu.Unlock()
	if done {
		return nil
	}
	until := expires.Add(linkValiditySlack)
	const q = `
INSERT INTO key_fingerprints (purpose, fingerprint, valid_until) VALUES ($1, $2, $3)
ON CONFLICT (purpose, fingerprint) DO UPDATE SET valid_until = greatest(key_fingerprints.valid_until, EXCLUDED.valid_until)`
	if _, err := s.db.ExecContext(ctx, q, PurposeLink, fp, until); err != nil {
		return fmt.Errorf("record link key validity: %w", translate(err))
	}
	s.keys.mu.Lock()
	if until.After(s.keys.linkRecordedUntil) {
		s.keys.linkRecordedUntil = until
	}
	s.keys.mu.Unlock()
	return nil
}
