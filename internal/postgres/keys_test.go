package postgres_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestErasureKey: replicas starting together on one database agree on one
// generated key; a configured ERASURE_KEY is used as given and never stored.
func TestErasureKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}

	t.Run("GeneratedOnceAcrossReplicas", func(t *testing.T) {
		const replicas = 6
		sums := make([][]byte, replicas)
		var wg sync.WaitGroup
		for i := range replicas {
			st := open()
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, err := st.SubjectHMAC(ctx, "acct_1")
				if err != nil {
					t.Error(err)
				}
				sums[i] = h
			}()
		}
		wg.Wait()
		for i := 1; i < replicas; i++ {
			if !bytes.Equal(sums[i], sums[0]) {
				t.Fatalf("replica %d hashes differently: two keys were generated", i)
			}
		}
		var n int
		if err := open().DB().Get(&n, `SELECT count(*) FROM instance_keys`); err != nil || n != 1 {
			t.Fatalf("instance_keys has %d rows (err %v), want 1", n, err)
		}
	})
	t.Run("FirstLoadInsideTransactionNeedsNoSecondConnection", func(t *testing.T) {
		if err := open().PrepareErasureKey(ctx); err != nil { // another replica made the key
			t.Fatal(err)
		}
		st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		tx, err := st.DB().BeginTxx(tctx, nil) // the pool's only connection
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck
		if _, err := postgres.IsTombstoned(tctx, st, tx, "cus_First"); err != nil {
			t.Fatalf("tombstone check with the key not yet cached and no spare connection: %v", err)
		}
	})
	t.Run("Configured", func(t *testing.T) {
		key := []byte("configured-erasure-key-0123456789")
		st := open()
		st.SetErasureKey(key)
		got, err := st.SubjectHMAC(ctx, "acct_1")
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte("acct_1"))
		if !bytes.Equal(got, m.Sum(nil)) {
			t.Fatal("SubjectHMAC is not HMAC-SHA256 with the configured key")
		}
		var stored int
		if err := st.DB().Get(&stored, `SELECT count(*) FROM instance_keys WHERE key = $1`, key); err != nil || stored != 0 {
			t.Fatalf("configured key stored %d times (err %v)", stored, err)
		}
	})
}

// BenchmarkIsTombstoned measures the event path's tombstone check (advisory
// locks plus one indexed lookup) against 10 000 tombstones.
func BenchmarkIsTombstoned(b *testing.B) {
	ctx := context.Background()
	st := pgtest.Open(b)
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO tombstones (subject_hmac, kind)
		SELECT sha256(i::text::bytea), 'customer' FROM generate_series(1, 10000) i`); err != nil {
		b.Fatal(err)
	}
	if _, err := st.SubjectHMAC(ctx, "warm"); err != nil { // load the key once
		b.Fatal(err)
	}
	// Baseline is the empty transaction the check runs in, so the figure
	// of Check minus Baseline is what the check itself costs.
	for _, bc := range []struct {
		name  string
		check bool
	}{{"Baseline", false}, {"Check", true}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				tx, err := st.DB().BeginTxx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if bc.check {
					if _, err := postgres.IsTombstoned(ctx, st, tx, "cus_Bench123", "sub_Bench456"); err != nil {
						b.Fatal(err)
					}
				} else if _, err := tx.ExecContext(ctx, `SELECT 1`); err != nil {
					b.Fatal(err)
				}
				_ = tx.Rollback()
			}
		})
	}
}
