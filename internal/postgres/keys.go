package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// Key rings. Erasure hashes (tombstones, audit subjects, former
// accounts) and link references are made with HMAC keys. Each purpose has a
// ring: the first key writes or signs, every key checks or verifies, so a
// key rotates without undoing erasures or breaking outstanding references.
// A ring is configured (ERASURE_KEYS, LINK_SIGNING_KEYS) or, by default, is
// the one key billingd generated and keeps in instance_keys; a configured
// ring may name that key too (RingEntry.Generated). fingerprints.go keeps
// the rings from changing silently.

// RingEntry is one configured key of a ring: the key itself, or the key
// billingd generated and keeps in instance_keys (Generated).
type RingEntry struct {
	Key       []byte
	Generated bool
}

// instance_keys rows of the generated keys.
const (
	erasureKeyName = "erasure_hmac"
	linkKeyName    = "link_signing"
)

// instanceKeys caches the resolved rings: the webhook hot path hashes IDs
// on every event and must not read instance_keys each time. A ring does
// not change for the life of a process (rotation is a restart with a new
// configuration), so caching it is correct.
type instanceKeys struct {
	mu          sync.Mutex
	erasureSpec []RingEntry // nil: the generated key alone
	erasure     *billing.KeyRing
	linkSpec    []RingEntry
	link        *billing.KeyRing
	// linkRecordedUntil: key_fingerprints already says the link writer
	// signs references valid until then (recordLinkValidity).
	linkRecordedUntil time.Time

	// beforeEraseCommit and beforeBatchCommit, when set (tests only), run
	// inside the erase and event transactions just before commit, so a
	// test can race them deterministically.
	beforeEraseCommit func()
	beforeBatchCommit func()
	// customersOneByOne (tests only) applies every customer event through
	// applyCustomer, the reference applyPlainCustomers must equal.
	customersOneByOne bool
}

// SetErasureKeys configures the erasure ring (ERASURE_KEYS): the first
// entry hashes new tombstones, every entry is checked. Call it once,
// before serving; without it the ring is the generated key alone.
func (s *Store) SetErasureKeys(ring []RingEntry) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	s.keys.erasureSpec, s.keys.erasure = copyRing(ring), nil
}

// SetErasureKey configures a ring of one key (ERASURE_KEY).
func (s *Store) SetErasureKey(key []byte) { s.SetErasureKeys([]RingEntry{{Key: key}}) }

// SetLinkSigningKeys configures the link ring (LINK_SIGNING_KEYS): the
// first entry signs references, every entry verifies. Without it the ring
// is the generated link key alone.
func (s *Store) SetLinkSigningKeys(ring []RingEntry) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	s.keys.linkSpec, s.keys.link = copyRing(ring), nil
}

func copyRing(ring []RingEntry) []RingEntry {
	out := make([]RingEntry, len(ring))
	for i, e := range ring {
		out[i] = RingEntry{Key: append([]byte(nil), e.Key...), Generated: e.Generated}
	}
	return out
}

// PrepareErasureKey resolves the erasure ring now (generating the key on
// first start), so the webhook path never has to.
func (s *Store) PrepareErasureKey(ctx context.Context) error {
	_, err := s.erasureRing(ctx)
	return err
}

// erasureRing returns the erasure ring, loading (or first generating) the
// generated key through the pool. Replicas starting together race to
// insert it; ON CONFLICT DO NOTHING then SELECT makes them all read the
// one row that won.
func (s *Store) erasureRing(ctx context.Context) (billing.KeyRing, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.erasure != nil {
		return *s.keys.erasure, nil
	}
	r, err := s.resolveRing(ctx, s.db, s.keys.erasureSpec, erasureKeyName, true)
	if err != nil {
		return billing.KeyRing{}, fmt.Errorf("erasure keys: %w", err)
	}
	s.keys.erasure = &r
	return r, nil
}

// erasureRingTx is erasureRing for a caller inside a transaction: the
// generated key is read on the caller's connection. A first load through
// the pool could otherwise deadlock when every pooled connection is held
// by an event transaction waiting for the key. Only a committed key is
// ever read, so caching it is safe; if none exists yet, it falls back to
// generating one.
func (s *Store) erasureRingTx(ctx context.Context, tx *sqlx.Tx) (billing.KeyRing, error) {
	s.keys.mu.Lock()
	if s.keys.erasure != nil {
		defer s.keys.mu.Unlock()
		return *s.keys.erasure, nil
	}
	r, err := s.resolveRing(ctx, tx, s.keys.erasureSpec, erasureKeyName, false)
	if err == nil {
		s.keys.erasure = &r
		s.keys.mu.Unlock()
		return r, nil
	}
	s.keys.mu.Unlock()
	if !errors.Is(err, errNoGeneratedKey) {
		return billing.KeyRing{}, fmt.Errorf("erasure keys: %w", err)
	}
	return s.erasureRing(ctx)
}

// linkRing returns the link signing ring, generating its key on first use.
func (s *Store) linkRing(ctx context.Context) (billing.KeyRing, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.link != nil {
		return *s.keys.link, nil
	}
	r, err := s.resolveRing(ctx, s.db, s.keys.linkSpec, linkKeyName, true)
	if err != nil {
		return billing.KeyRing{}, fmt.Errorf("link signing keys: %w", err)
	}
	s.keys.link = &r
	return r, nil
}

// errNoGeneratedKey: the ring names the generated key and none exists yet.
var errNoGeneratedKey = errors.New("generated key not created yet")

// resolveRing turns a configured ring into keys, reading the generated key
// (name) through q, and generating it when generate is set.
func (s *Store) resolveRing(ctx context.Context, q sqlx.ExtContext, spec []RingEntry, name string, generate bool) (billing.KeyRing, error) {
	if len(spec) == 0 {
		spec = []RingEntry{{Generated: true}}
	}
	keys := make([][]byte, 0, len(spec))
	for _, e := range spec {
		if !e.Generated {
			keys = append(keys, e.Key)
			continue
		}
		k, err := loadGeneratedKey(ctx, q, name)
		if errors.Is(err, errNoGeneratedKey) && generate {
			k, err = s.generateKey(ctx, name)
		}
		if err != nil {
			return billing.KeyRing{}, err
		}
		keys = append(keys, k)
	}
	return billing.NewKeyRing(keys...)
}

const qSelectInstanceKey = `
SELECT key FROM instance_keys WHERE name = $1`

// loadGeneratedKey reads a generated key; errNoGeneratedKey when absent.
func loadGeneratedKey(ctx context.Context, q sqlx.QueryerContext, name string) ([]byte, error) {
	var key []byte
	err := sqlx.GetContext(ctx, q, &key, qSelectInstanceKey, name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, errNoGeneratedKey
	case err != nil:
		return nil, fmt.Errorf("load %s key: %w", name, translate(err))
	case len(key) < billing.MinKeyLen:
		return nil, fmt.Errorf("load %s key: stored key is %d bytes, want at least %d: %w", name, len(key), billing.MinKeyLen, billing.ErrInvalid)
	}
	return key, nil
}

// generateKey stores a fresh random key under name unless one exists, and
// returns the one stored.
func (s *Store) generateKey(ctx context.Context, name string) ([]byte, error) {
	const qInsert = `
INSERT INTO instance_keys (name, key)
VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING`
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate %s key: %w", name, err)
	}
	if _, err := s.db.ExecContext(ctx, qInsert, name, fresh); err != nil {
		return nil, fmt.Errorf("store %s key: %w", name, translate(err))
	}
	return loadGeneratedKey(ctx, s.db, name)
}

// subjectHMAC is HMAC-SHA256(key, id): the only form in which tombstones and
// the audit log name an erased ID.
func subjectHMAC(key []byte, id string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return m.Sum(nil)
}

// ringHashes returns the hashes of id under every key of the ring, the
// writer's first: what a lookup must match.
func ringHashes(r billing.KeyRing, id string) [][]byte {
	out := make([][]byte, 0, r.Len())
	for _, k := range r.Keys() {
		out = append(out, subjectHMAC(k, id))
	}
	return out
}

// SubjectHMAC returns the keyed hash under which new tombstones and
// audit_log entries name id (an account, customer or subscription ID): the
// erasure ring's writer's.
func (s *Store) SubjectHMAC(ctx context.Context, id string) ([]byte, error) {
	r, err := s.erasureRing(ctx)
	if err != nil {
		return nil, err
	}
	return subjectHMAC(r.Writer(), id), nil
}

// SubjectHMACs returns every hash under which rows may name id: one per
// key of the erasure ring. The privacy export finds an account's audit
// entries by them.
func (s *Store) SubjectHMACs(ctx context.Context, id string) ([][]byte, error) {
	r, err := s.erasureRing(ctx)
	if err != nil {
		return nil, err
	}
	return ringHashes(r, id), nil
}
