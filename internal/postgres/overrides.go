package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Per-account overrides (account_overrides): features an account gets
// whatever its plan says, for sales deals and support. Keyed by account ID
// like customers.account_id, audited by the token's name with the keyed
// hash of the account (as every audit entry names an account), erased
// with the account and part of its export. Each change notifies the
// account on the invalidation feed and this replica's cache.

// The audit_log actions of overrides.
const (
	AuditActionOverridePut    = "override.put"
	AuditActionOverrideDelete = "override.delete"
)

// overrideRow is an account_overrides row.
type overrideRow struct {
	AccountID string     `db:"account_id"`
	Features  []byte     `db:"features"`
	ExpiresAt *time.Time `db:"expires_at"`
	UpdatedAt time.Time  `db:"updated_at"`
	UpdatedBy string     `db:"updated_by"`
}

func (r overrideRow) toOverride() (billing.Override, error) {
	o := billing.Override{AccountID: r.AccountID, ExpiresAt: r.ExpiresAt, UpdatedAt: r.UpdatedAt.UTC(), UpdatedBy: r.UpdatedBy}
	var err error
	o.Features, err = decodeOverrideFeatures(r.Features)
	return o, err
}

// decodeOverrideFeatures reads a stored features document.
func decodeOverrideFeatures(raw []byte) (map[string]billing.Grant, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("read override features: %w", err)
	}
	out := make(map[string]billing.Grant, len(m))
	for k, v := range m {
		g, err := billing.ParseGrant(v, "$.features."+k, false)
		if err != nil {
			return nil, fmt.Errorf("read override features: %w", err)
		}
		out[k] = g
	}
	return out, nil
}

// Override returns the account's override; billing.ErrNotFound when none.
func (s *Store) Override(ctx context.Context, accountID string) (billing.Override, error) {
	const q = `SELECT account_id, features, expires_at, updated_at, updated_by FROM account_overrides WHERE account_id = $1`
	var r overrideRow
	if err := s.db.GetContext(ctx, &r, q, accountID); err != nil {
		if err == errNoRows {
			return billing.Override{}, fmt.Errorf("read override: %w", billing.ErrNotFound)
		}
		return billing.Override{}, fmt.Errorf("read override: %w", translate(err))
	}
	return r.toOverride()
}

// OverridePut sets (replaces) the account's override. The account need
// not be known: an app may grant a deal before the first payment. An
// erased account's ID is refused like a link is (billing.ErrAccountErased)
// unless its reuse was recorded.
func (s *Store) OverridePut(ctx context.Context, o billing.Override) (billing.Override, error) {
	if !billing.ValidAccountID(o.AccountID) || !billing.ValidActor(o.UpdatedBy) {
		return billing.Override{}, fmt.Errorf("set override: %w: malformed account ID or actor", billing.ErrInvalid)
	}
	doc, err := json.Marshal(o.Features)
	if err != nil {
		return billing.Override{}, fmt.Errorf("set override: %w", err)
	}
	var out billing.Override
	changed := accountSet{}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		ring, err := s.erasureRingTx(ctx, tx)
		if err != nil {
			return err
		}
		// Under the account's shared lock, as a link: an erasure either
		// committed before (seen here) or waits and deletes this row.
		_, acct, err := checkTombstones(ctx, tx, ring, nil, o.AccountID)
		if err != nil {
			return err
		}
		if acct.Erased && !acct.Reused {
			return billing.ErrAccountErased
		}
		const q = `
INSERT INTO account_overrides (account_id, features, expires_at, updated_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id) DO UPDATE SET features = EXCLUDED.features, expires_at = EXCLUDED.expires_at,
    updated_at = now(), updated_by = EXCLUDED.updated_by
RETURNING account_id, features, expires_at, updated_at, updated_by`
		var r overrideRow
		if err := tx.QueryRowxContext(ctx, q, o.AccountID, string(doc), o.ExpiresAt, o.UpdatedBy).StructScan(&r); err != nil {
			return fmt.Errorf("set override: %w", translate(err))
		}
		if out, err = r.toOverride(); err != nil {
			return err
		}
		if err := auditOverride(ctx, tx, ring, AuditActionOverridePut, o); err != nil {
			return err
		}
		return notifyAccountChange(ctx, tx, changed, o.AccountID)
	})
	if err != nil {
		return billing.Override{}, fmt.Errorf("set override: %w", err)
	}
	s.accountsCommitted(changed)
	return out, nil
}

// OverrideDelete removes the account's override; billing.ErrNotFound when
// it had none.
func (s *Store) OverrideDelete(ctx context.Context, accountID, actor string) error {
	if !billing.ValidAccountID(accountID) || !billing.ValidActor(actor) {
		return fmt.Errorf("delete override: %w: malformed account ID or actor", billing.ErrInvalid)
	}
	changed := accountSet{}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM account_overrides WHERE account_id = $1`, accountID)
		if err != nil {
			return translate(err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return billing.ErrNotFound
		}
		ring, err := s.erasureRingTx(ctx, tx)
		if err != nil {
			return err
		}
		if err := auditOverride(ctx, tx, ring, AuditActionOverrideDelete, billing.Override{AccountID: accountID, UpdatedBy: actor}); err != nil {
			return err
		}
		return notifyAccountChange(ctx, tx, changed, accountID)
	})
	if err != nil {
		return fmt.Errorf("delete override: %w", err)
	}
	s.accountsCommitted(changed)
	return nil
}

// auditOverride records an override change: the actor, the account by its
// keyed hash, and the feature keys and expiry (catalog names and a date,
// nothing personal).
func auditOverride(ctx context.Context, tx *sqlx.Tx, ring billing.KeyRing, action string, o billing.Override) error {
	if err := recordKeyUse(ctx, tx, PurposeErasure, ring.Fingerprints()[0]); err != nil {
		return err
	}
	keys := make([]string, 0, len(o.Features))
	for k := range o.Features {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	d := map[string]any{}
	if action == AuditActionOverridePut {
		d["features"], d["expires_at"] = keys, o.ExpiresAt
	}
	details, _ := json.Marshal(d)
	const q = `INSERT INTO audit_log (actor, action, subject_hmac, details) VALUES ($1, $2, $3, $4)`
	if _, err := tx.ExecContext(ctx, q, o.UpdatedBy, action, subjectHMAC(ring.Writer(), o.AccountID), string(details)); err != nil {
		return fmt.Errorf("audit override: %w", translate(err))
	}
	return nil
}

// eraseEntitlementExtras removes what issue 18 keeps about an erased
// account that is not deleted with its customer rows: its override, and
// the entitlement fetch jobs of its customers that have not run (their
// payload holds a customer ID; schedules and summaries go with the
// customer rows, ON DELETE CASCADE).
func eraseEntitlementExtras(ctx context.Context, tx *sqlx.Tx, accountID string, customerIDs []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM account_overrides WHERE account_id = $1`, accountID); err != nil {
		return fmt.Errorf("erase override: %w", translate(err))
	}
	const q = `
DELETE FROM outbox WHERE kind = 'stripe' AND action = $1 AND state <> 'sent' AND payload->>'customer_id' = ANY($2)`
	if _, err := tx.ExecContext(ctx, q, StripeFetchEntitlements, pq.Array(customerIDs)); err != nil {
		return fmt.Errorf("erase entitlement fetch jobs: %w", translate(err))
	}
	return nil
}
