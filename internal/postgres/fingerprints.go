package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Key fingerprints (key_fingerprints): billingd records the
// fingerprint (billing.KeyFingerprint, never the key) of each key that
// made something it still depends on, and refuses to start when the
// configured keys no longer include one of them. A changed erasure key
// would otherwise silently let erased customers be linked again; a changed
// ProfitWell alias key would make every customer new to ProfitWell; a link
// key dropped too early would break references handed out.

// Key purposes (key_fingerprints.purpose).
const (
	PurposeErasure    = "erasure"
	PurposeLink       = "link_signing"
	PurposeProfitWell = "profitwell_alias"
)

// legacyLinkGrace is how long references of the old form (no expiry) keep
// linking after the first start with fingerprints: a Checkout Session
// lives at most 24 hours, so every session created before the upgrade
// completes within it.
const legacyLinkGrace = 24 * time.Hour

// KeyFingerprintRow is one recorded key.
type KeyFingerprintRow struct {
	Purpose     string     `db:"purpose"`
	Fingerprint string     `db:"fingerprint"`
	FirstUsedAt time.Time  `db:"first_used_at"`
	ValidUntil  *time.Time `db:"valid_until"`
	LegacyUntil *time.Time `db:"legacy_until"`
}

// KeyFingerprints lists every recorded key.
func (s *Store) KeyFingerprints(ctx context.Context) ([]KeyFingerprintRow, error) {
	const q = `
SELECT purpose, fingerprint, first_used_at, valid_until, legacy_until
FROM key_fingerprints ORDER BY purpose, first_used_at, fingerprint`
	var rows []KeyFingerprintRow
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("list key fingerprints: %w", translate(err))
	}
	return rows, nil
}

// ErrKeyChanged is returned (wrapped, with one line saying which key and
// what to do) when the configured keys lack one still needed.
var ErrKeyChanged = errors.New("key changed")

// PrepareKeys resolves the erasure and link rings (generating their keys
// on first start) and checks them against the recorded fingerprints: it
// fails with ErrKeyChanged when a key that erasure hashes were made with
// is missing from the erasure ring, or a link key whose references are
// still valid is missing from the link ring. Commands that write through
// the event path or erase call it after migrating, before any work.
func (s *Store) PrepareKeys(ctx context.Context) error {
	er, err := s.erasureRing(ctx)
	if err != nil {
		return err
	}
	if err := s.checkErasureKeys(ctx, er); err != nil {
		return err
	}
	lr, err := s.linkRing(ctx)
	if err != nil {
		return err
	}
	return s.checkLinkKeys(ctx, lr)
}

// checkErasureKeys compares the ring with the recorded erasure keys. With
// none recorded yet (the first start after the upgrade that added them) but
// erasure hashes already stored, the keys that can have made them are
// recorded first: the configured ones and the generated one, if any exists.
func (s *Store) checkErasureKeys(ctx context.Context, r billing.KeyRing) error {
	recorded, err := s.recordedFingerprints(ctx, PurposeErasure)
	if err != nil {
		return err
	}
	generated, err := loadGeneratedKey(ctx, s.db, erasureKeyName)
	if err != nil && !errors.Is(err, errNoGeneratedKey) {
		return err
	}
	var bootstrap []string
	if len(recorded) == 0 {
		const qData = `
SELECT EXISTS (SELECT 1 FROM tombstones)
    OR EXISTS (SELECT 1 FROM account_tombstones)
    OR EXISTS (SELECT 1 FROM audit_log WHERE subject_hmac IS NOT NULL)
    OR EXISTS (SELECT 1 FROM customers WHERE former_account_hmac IS NOT NULL)`
		var hasData bool
		if err := s.db.GetContext(ctx, &hasData, qData); err != nil {
			return fmt.Errorf("check erasure keys: %w", translate(err))
		}
		if hasData {
			for i, e := range s.erasureSpecOrDefault() {
				if !e.Generated {
					bootstrap = append(bootstrap, r.Fingerprints()[i])
				}
			}
			if generated != nil {
				bootstrap = append(bootstrap, billing.KeyFingerprint(generated))
			}
			recorded = bootstrap
		}
	}
	for _, fp := range recorded {
		if r.Contains(fp) {
			continue
		}
		which, fix := "the key with fingerprint "+fp, "ERASURE_KEYS=<new key>,<that key>"
		if generated != nil && billing.KeyFingerprint(generated) == fp {
			which, fix = "the key billingd generated (fingerprint "+fp+", kept in instance_keys)", "ERASURE_KEYS=<new key>,generated"
		}
		return fmt.Errorf("%w: the erasure keys (ERASURE_KEYS or ERASURE_KEY) do not include %s, which existing tombstones and audit entries were made with: erased customers could be linked again; keep it in the ring after the new key: %s",
			ErrKeyChanged, which, fix)
	}
	// Recorded only once accepted: a refused configuration leaves nothing
	// behind that the fixed one would have to carry.
	return s.recordFingerprints(ctx, PurposeErasure, bootstrap)
}

func (s *Store) erasureSpecOrDefault() []RingEntry {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if len(s.keys.erasureSpec) == 0 {
		return []RingEntry{{Generated: true}}
	}
	return s.keys.erasureSpec
}

func (s *Store) linkSpecOrDefault() []RingEntry {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if len(s.keys.linkSpec) == 0 {
		return []RingEntry{{Generated: true}}
	}
	return s.keys.linkSpec
}

// checkLinkKeys refuses a link ring that lacks a key whose references are
// still valid. On the first start with fingerprints, configured link keys
// of a deployment that already linked customers from checkouts get the
// legacy grace (old references never expired: they keep working for
// legacyLinkGrace, then stop).
func (s *Store) checkLinkKeys(ctx context.Context, r billing.KeyRing) error {
	rows, err := s.linkFingerprints(ctx)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		var fps []string
		for i, e := range s.linkSpecOrDefault() {
			if !e.Generated {
				fps = append(fps, r.Fingerprints()[i])
			}
		}
		if len(fps) > 0 {
			const q = `
INSERT INTO key_fingerprints (purpose, fingerprint, legacy_until)
SELECT $1, fp, now() + $3 * interval '1 second' FROM unnest($2::text[]) AS fp
WHERE EXISTS (SELECT 1 FROM customers WHERE linked_via = 'checkout')
ON CONFLICT (purpose, fingerprint) DO NOTHING`
			if _, err := s.db.ExecContext(ctx, q, PurposeLink, pq.Array(fps), legacyLinkGrace.Seconds()); err != nil {
				return fmt.Errorf("record link keys: %w", translate(err))
			}
			if rows, err = s.linkFingerprints(ctx); err != nil {
				return err
			}
		}
	}
	now := time.Now()
	for _, row := range rows {
		until := latest(row.ValidUntil, row.LegacyUntil)
		if r.Contains(row.Fingerprint) || until == nil || !until.After(now) {
			continue
		}
		return fmt.Errorf("%w: the link signing keys (LINK_SIGNING_KEYS or LINK_SIGNING_KEY) do not include the key with fingerprint %s (key ID %s), which signed references valid until %s: checkouts started with them would not link; keep it in the ring after the new key until then (LINK_SIGNING_KEYS=<new key>,<that key or generated>)",
			ErrKeyChanged, row.Fingerprint, row.Fingerprint[:8], until.UTC().Format(time.RFC3339))
	}
	return nil
}

func latest(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil || a.After(*b):
		return a
	}
	return b
}

func (s *Store) linkFingerprints(ctx context.Context) ([]KeyFingerprintRow, error) {
	const q = `
SELECT purpose, fingerprint, first_used_at, valid_until, legacy_until
FROM key_fingerprints WHERE purpose = $1`
	var rows []KeyFingerprintRow
	if err := s.db.SelectContext(ctx, &rows, q, PurposeLink); err != nil {
		return nil, fmt.Errorf("read link key fingerprints: %w", translate(err))
	}
	return rows, nil
}

func (s *Store) recordedFingerprints(ctx context.Context, purpose string) ([]string, error) {
	const q = `SELECT fingerprint FROM key_fingerprints WHERE purpose = $1 ORDER BY first_used_at, fingerprint`
	var fps []string
	if err := s.db.SelectContext(ctx, &fps, q, purpose); err != nil {
		return nil, fmt.Errorf("read %s key fingerprints: %w", purpose, translate(err))
	}
	return fps, nil
}

func (s *Store) recordFingerprints(ctx context.Context, purpose string, fps []string) error {
	if len(fps) == 0 {
		return nil
	}
	const q = `
INSERT INTO key_fingerprints (purpose, fingerprint)
SELECT $1, fp FROM unnest($2::text[]) AS fp
ON CONFLICT (purpose, fingerprint) DO NOTHING`
	if _, err := s.db.ExecContext(ctx, q, purpose, pq.Array(fps)); err != nil {
		return fmt.Errorf("record %s key fingerprints: %w", purpose, translate(err))
	}
	return nil
}

// recordKeyUse records, inside the transaction that writes with it, that
// a key made something lasting: a key is recorded exactly when something
// starts to depend on it.
func recordKeyUse(ctx context.Context, tx *sqlx.Tx, purpose, fp string) error {
	const q = `
INSERT INTO key_fingerprints (purpose, fingerprint) VALUES ($1, $2)
ON CONFLICT (purpose, fingerprint) DO NOTHING`
	if _, err := tx.ExecContext(ctx, q, purpose, fp); err != nil {
		return fmt.Errorf("record %s key: %w", purpose, translate(err))
	}
	return nil
}

// CheckProfitWellAliasKey records the alias key the ProfitWell worker is
// about to send with, or fails with ErrKeyChanged when another one was
// used before: every alias would change and each customer appear new in
// ProfitWell. Rotating on purpose: README "Secrets and key rotation", then
// ForgetKey(PurposeProfitWell, old).
func (s *Store) CheckProfitWellAliasKey(ctx context.Context, key []byte) error {
	fp := billing.KeyFingerprint(key)
	var recorded []string
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// One replica at a time: two starting with different keys must not
		// both record theirs as the first.
		const qLock = `SELECT pg_advisory_xact_lock(hashtextextended('billingd.key_fingerprints', 0))`
		if _, err := tx.ExecContext(ctx, qLock); err != nil {
			return translate(err)
		}
		const q = `SELECT fingerprint FROM key_fingerprints WHERE purpose = $1 ORDER BY first_used_at, fingerprint`
		if err := tx.SelectContext(ctx, &recorded, q, PurposeProfitWell); err != nil {
			return translate(err)
		}
		if len(recorded) > 0 {
			return nil
		}
		return recordKeyUse(ctx, tx, PurposeProfitWell, fp)
	})
	if err != nil {
		return fmt.Errorf("check profitwell alias key: %w", err)
	}
	for _, r := range recorded {
		if r == fp {
			return nil
		}
	}
	if len(recorded) == 0 {
		return nil
	}
	return fmt.Errorf("%w: PROFITWELL_ALIAS_KEY (fingerprint %s) is not the key ProfitWell's aliases were made with (fingerprint %s): every customer would appear new in ProfitWell; to switch keys on purpose follow README \"Secrets and key rotation\" (billingd keys forget profitwell_alias %s)",
		ErrKeyChanged, fp, strings.Join(recorded, ", "), recorded[0])
}

// ForgetKey removes a recorded link or ProfitWell alias key, after the
// operator moved off it on purpose. Erasure keys are never forgotten:
// tombstones are one-way hashes and cannot be re-made with a new key.
func (s *Store) ForgetKey(ctx context.Context, purpose, fingerprint string) error {
	switch purpose {
	case PurposeErasure:
		return fmt.Errorf("forget key: %w: erasure keys stay in the ring for good (tombstones cannot be re-hashed)", billing.ErrInvalid)
	case PurposeLink, PurposeProfitWell:
	default:
		return fmt.Errorf("forget key: %w: purpose must be %s or %s", billing.ErrInvalid, PurposeLink, PurposeProfitWell)
	}
	const q = `DELETE FROM key_fingerprints WHERE purpose = $1 AND fingerprint = $2`
	res, err := s.db.ExecContext(ctx, q, purpose, fingerprint)
	if err != nil {
		return fmt.Errorf("forget key: %w", translate(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("forget key: %w", billing.ErrNotFound)
	}
	return nil
}

// KeyRingFingerprints returns the fingerprints of the resolved rings, for
// `billingd keys status` and logs.
func (s *Store) KeyRingFingerprints(ctx context.Context) (erasure, link []string, err error) {
	er, err := s.erasureRing(ctx)
	if err != nil {
		return nil, nil, err
	}
	lr, err := s.linkRing(ctx)
	if err != nil {
		return nil, nil, err
	}
	return er.Fingerprints(), lr.Fingerprints(), nil
}

// LinkVerifier returns the verifier of checkout references for the link
// ring, with each key's legacy grace as recorded. allowUnsigned is
// LINK_REQUIRE_SIGNATURE=false.
func (s *Store) LinkVerifier(ctx context.Context, allowUnsigned bool) (*billing.LinkVerifier, error) {
	r, err := s.linkRing(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.linkFingerprints(ctx)
	if err != nil {
		return nil, err
	}
	legacy := map[string]time.Time{}
	for _, row := range rows {
		if row.LegacyUntil != nil {
			legacy[row.Fingerprint] = *row.LegacyUntil
		}
	}
	keys := make([]billing.LinkKey, r.Len())
	for i, k := range r.Keys() {
		keys[i] = billing.LinkKey{Key: k, LegacyUntil: legacy[r.Fingerprints()[i]]}
	}
	return billing.NewLinkVerifier(keys, allowUnsigned), nil
}
