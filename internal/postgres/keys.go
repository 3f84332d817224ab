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

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// erasureKeyName is the instance_keys row of the generated erasure key.
const erasureKeyName = "erasure_hmac"

// erasureKeys caches the erasure HMAC key: the webhook hot path hashes IDs
// on every event and must not read instance_keys each time. The key never
// changes for the life of a deployment (a new key would orphan every
// tombstone), so caching it forever is correct.
type erasureKeys struct {
	mu  sync.Mutex
	key []byte // nil until configured or loaded

	// beforeEraseCommit, when set (tests only), runs inside the erase
	// transaction just before commit, so a test can race it deterministically.
	beforeEraseCommit func()
}

// SetErasureKey makes key (ERASURE_KEY) the erasure HMAC key instead of the
// generated one kept in the database. Call it once, before serving.
func (s *Store) SetErasureKey(key []byte) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	s.keys.key = append([]byte(nil), key...)
}

// PrepareErasureKey loads (or first generates) the erasure key now, so the
// webhook path never has to: serve calls it after migrating.
func (s *Store) PrepareErasureKey(ctx context.Context) error {
	_, err := s.erasureKey(ctx)
	return err
}

// erasureKeyTx is erasureKey for a caller inside a transaction: the stored
// key is read on the caller's connection. A first load through the pool
// could otherwise deadlock when every pooled connection is held by an event
// transaction waiting for the key. Only a committed key is ever read, so
// caching it is safe; if none exists yet, it falls back to generating one.
func (s *Store) erasureKeyTx(ctx context.Context, tx *sqlx.Tx) ([]byte, error) {
	s.keys.mu.Lock()
	if s.keys.key != nil {
		defer s.keys.mu.Unlock()
		return s.keys.key, nil
	}
	var key []byte
	err := tx.GetContext(ctx, &key, qSelectErasureKey, erasureKeyName)
	if err == nil && len(key) >= 16 {
		s.keys.key = key
		s.keys.mu.Unlock()
		return key, nil
	}
	s.keys.mu.Unlock()
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("load erasure key: %w", translate(err))
	}
	return s.erasureKey(ctx)
}

const qSelectErasureKey = `
SELECT key FROM instance_keys WHERE name = $1`

// erasureKey returns the erasure HMAC key: the configured one, else the one
// kept in instance_keys, generating it on first use. Replicas starting
// together race to insert; ON CONFLICT DO NOTHING then SELECT makes them all
// read the one row that won.
func (s *Store) erasureKey(ctx context.Context) ([]byte, error) {
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if s.keys.key != nil {
		return s.keys.key, nil
	}
	const qInsert = `
INSERT INTO instance_keys (name, key)
VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING`
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generate erasure key: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, qInsert, erasureKeyName, fresh); err != nil {
		return nil, fmt.Errorf("store erasure key: %w", translate(err))
	}
	var key []byte
	if err := s.db.GetContext(ctx, &key, qSelectErasureKey, erasureKeyName); err != nil {
		return nil, fmt.Errorf("load erasure key: %w", translate(err))
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("load erasure key: stored key is %d bytes, want at least 16: %w", len(key), billing.ErrInvalid)
	}
	s.keys.key = key
	return key, nil
}

// subjectHMAC is HMAC-SHA256(key, id): the only form in which tombstones and
// the audit log name an erased ID.
func subjectHMAC(key []byte, id string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return m.Sum(nil)
}

// SubjectHMAC returns the keyed hash under which tombstones and audit_log
// name id (an account, customer or subscription ID). The privacy export
// finds an account's audit entries by it.
func (s *Store) SubjectHMAC(ctx context.Context, id string) ([]byte, error) {
	key, err := s.erasureKey(ctx)
	if err != nil {
		return nil, err
	}
	return subjectHMAC(key, id), nil
}
