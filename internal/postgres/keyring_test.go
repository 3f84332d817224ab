package postgres_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

var (
	keyA = []byte("erasure-key-A-0123456789")
	keyB = []byte("erasure-key-B-0123456789")
)

// storeOn opens a store on url with the given erasure and link rings (nil:
// the generated key), as a process started with that configuration.
func storeOn(t *testing.T, url string, erasure, link []postgres.RingEntry) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.SetErasureKeys(erasure)
	st.SetLinkSigningKeys(link)
	return st
}

func ring(keys ...[]byte) []postgres.RingEntry {
	var out []postgres.RingEntry
	for _, k := range keys {
		if k == nil {
			out = append(out, postgres.RingEntry{Generated: true})
			continue
		}
		out = append(out, postgres.RingEntry{Key: k})
	}
	return out
}

// TestErasureKeyRotation: ERASURE_KEYS=B,A keeps every tombstone A wrote
// valid (customers, subscriptions and the account itself), writes new ones
// with B, and the export still finds audit entries made under either key.
// Dropping a key that wrote something is refused at start, by old and new
// replicas alike.
func TestErasureKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	old := storeOn(t, url, ring(keyA), nil)
	if err := old.PrepareKeys(ctx); err != nil {
		t.Fatal(err)
	}
	f := newFixture("ROT", 1)
	applyAll(t, old, f.history())
	erase(t, old, billing.ErasureRequest{AccountID: f.account})

	rotated := storeOn(t, url, ring(keyB, keyA), nil)
	if err := rotated.PrepareKeys(ctx); err != nil {
		t.Fatalf("ring B,A refused: %v", err)
	}
	t.Run("OldTombstonesHold", func(t *testing.T) {
		f.prefix = "ROTx" // fresh event IDs
		for i, o := range applyAll(t, rotated, []billing.Event{f.customerEvent(0, time.Now()), f.subscriptionEvent(0, time.Now(), billing.StatusActive, 500)}) {
			if o != billing.OutcomeTombstoned {
				t.Errorf("event %d for the erased customer: %s, want tombstoned", i, o)
			}
		}
		for i, o := range applyAll(t, rotated, hintEvents(f.account, "ROT", time.Now())) {
			if o != billing.OutcomeLinkErased {
				t.Errorf("hint %d for the erased account: %s, want link_erased", i, o)
			}
		}
		if !tombstoned(t, rotated, f.cus[0]) || !tombstoned(t, rotated, f.subs[0]) {
			t.Error("the rotated ring does not find the old key's tombstones")
		}
	})
	t.Run("NewKeyWrites", func(t *testing.T) {
		g := newFixture("ROTB", 1)
		applyAll(t, rotated, g.history())
		erase(t, rotated, billing.ErasureRequest{AccountID: g.account})
		subject, err := rotated.SubjectHMAC(ctx, g.account)
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, rotated, `SELECT count(*) FROM account_tombstones WHERE subject_hmac = $1`, subject); n != 1 {
			t.Fatal("the account tombstone is not under the ring's first key")
		}
	})
	t.Run("ExportFindsBothKeys", func(t *testing.T) {
		exp, err := rotated.AccountExport(ctx, f.account)
		if err != nil {
			t.Fatal(err)
		}
		if len(exp.Audit) != 1 {
			t.Fatalf("export of the account erased under the old key has %d audit entries, want 1", len(exp.Audit))
		}
	})
	t.Run("DroppingAKeyRefused", func(t *testing.T) {
		for name, st := range map[string]*postgres.Store{
			"NewKeyAlone": storeOn(t, url, ring(keyB), nil), // A's tombstones would be ignored
			"OldKeyAlone": storeOn(t, url, ring(keyA), nil), // an old replica: B's would be
		} {
			err := st.PrepareKeys(ctx)
			if !errors.Is(err, postgres.ErrKeyChanged) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v, want one line wrapping ErrKeyChanged", name, err)
			}
		}
	})
}

// TestErasureKeyChangedRefused is the changed-key scenario at the store: a
// deployment started without ERASURE_KEY (a key is generated), erased an
// account, and is restarted with ERASURE_KEY set. It is refused with one
// line naming the way out (ERASURE_KEYS=<new key>,generated), which then
// keeps the erasure in force. Before the first erasure, changing the key
// is not refused: nothing depends on it yet.
func TestErasureKeyChangedRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	first := storeOn(t, url, nil, nil)
	if err := first.PrepareKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := storeOn(t, url, ring(keyA), nil).PrepareKeys(ctx); err != nil {
		t.Fatalf("a new key before anything was erased: %v", err)
	}
	f := newFixture("CHG", 1)
	applyAll(t, first, f.history())
	erase(t, first, billing.ErasureRequest{AccountID: f.account})

	err := storeOn(t, url, ring(keyA), nil).PrepareKeys(ctx)
	if !errors.Is(err, postgres.ErrKeyChanged) || !strings.Contains(err.Error(), "ERASURE_KEYS=<new key>,generated") {
		t.Fatalf("restart with ERASURE_KEY set: %v", err)
	}
	fixed := storeOn(t, url, ring(keyA, nil), nil)
	if err := fixed.PrepareKeys(ctx); err != nil {
		t.Fatalf("ERASURE_KEYS=<new key>,generated: %v", err)
	}
	f.prefix = "CHGx"
	if o := applyAll(t, fixed, []billing.Event{f.customerEvent(0, time.Now())}); o[0] != billing.OutcomeTombstoned {
		t.Fatalf("event for the erased customer after the key change: %s", o[0])
	}
}

// TestErasureKeyUpgrade: a database erased under a version without
// fingerprints records, on the first start, the keys that can have made
// its hashes (the configured ones and the generated one): a generated key
// that the new configuration drops is refused even though nothing recorded
// it yet.
func TestErasureKeyUpgrade(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	before := storeOn(t, url, nil, nil)
	f := newFixture("UPG", 1)
	applyAll(t, before, f.history())
	erase(t, before, billing.ErasureRequest{AccountID: f.account})
	if _, err := before.DB().Exec(`DELETE FROM key_fingerprints`); err != nil { // as before migration 0100
		t.Fatal(err)
	}
	if err := storeOn(t, url, ring(keyA), nil).PrepareKeys(ctx); !errors.Is(err, postgres.ErrKeyChanged) {
		t.Fatalf("upgrade dropping the generated key: %v", err)
	}
	if err := storeOn(t, url, nil, nil).PrepareKeys(ctx); err != nil {
		t.Fatalf("upgrade keeping the generated key: %v", err)
	}
}

// TestLinkKeyFingerprints: a link key that signed references through the
// API stays required while they are valid; the new key put in front of it
// is fine; once they expire it may go. On the first start with
// fingerprints, a deployment that linked customers from checkouts with a
// configured key accepts references of the old form for 24 hours.
func TestLinkKeyFingerprints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	l1, l2 := []byte("link-key-one-0123456789"), []byte("link-key-two-0123456789")
	st := storeOn(t, url, nil, ring(l1))
	if err := st.PrepareKeys(ctx); err != nil {
		t.Fatal(err)
	}
	ref, exp, err := st.LinkReference(ctx, "acct_1", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := storeOn(t, url, nil, ring(l2)).PrepareKeys(ctx); !errors.Is(err, postgres.ErrKeyChanged) {
		t.Fatalf("dropping the key of valid references: %v", err)
	}
	rotated := storeOn(t, url, nil, ring(l2, l1))
	if err := rotated.PrepareKeys(ctx); err != nil {
		t.Fatalf("LINK_SIGNING_KEYS=new,old: %v", err)
	}
	v, err := rotated.LinkVerifier(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if acct, why := v.Verify(ref, exp); acct != "acct_1" || why != billing.LinkAccepted {
		t.Fatalf("reference of the old key after rotation: %q %q", acct, why)
	}
	if _, err := st.DB().Exec(`UPDATE key_fingerprints SET valid_until = now() - interval '1 second' WHERE purpose = 'link_signing'`); err != nil {
		t.Fatal(err)
	}
	if err := storeOn(t, url, nil, ring(l2)).PrepareKeys(ctx); err != nil {
		t.Fatalf("dropping the key once its references expired: %v", err)
	}

	t.Run("LegacyGrace", func(t *testing.T) {
		url := pgtest.URL(t)
		st := storeOn(t, url, nil, ring(l1))
		if _, err := st.AccountLink(ctx, "acct_old", "cus_Old1", billing.LinkOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().Exec(`UPDATE customers SET linked_via = 'checkout'`); err != nil { // linked from an old reference
			t.Fatal(err)
		}
		if err := st.PrepareKeys(ctx); err != nil {
			t.Fatal(err)
		}
		v, err := st.LinkVerifier(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		legacy := legacyReference(l1, "acct_old")
		if acct, why := v.Verify(legacy, time.Now()); acct != "acct_old" || why != billing.LinkAccepted {
			t.Fatalf("old-form reference right after the upgrade: %q %q", acct, why)
		}
		if _, why := v.Verify(legacy, time.Now().Add(25*time.Hour)); why != billing.LinkLegacy {
			t.Fatalf("old-form reference 25 h after the upgrade: %q", why)
		}
		fresh := storeOn(t, pgtest.URL(t), nil, ring(l1)) // never linked from a checkout: no grace
		if err := fresh.PrepareKeys(ctx); err != nil {
			t.Fatal(err)
		}
		v, err = fresh.LinkVerifier(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, why := v.Verify(legacy, time.Now()); why != billing.LinkLegacy {
			t.Fatalf("old-form reference on a new deployment: %q", why)
		}
	})
}

// TestGeneratedKeysOnceAcrossReplicas: replicas starting together with no
// keys configured agree on one generated erasure key and one generated
// link key.
func TestGeneratedKeysOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	for i := range stores {
		stores[i] = storeOn(t, url, nil, nil)
	}
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.PrepareKeys(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e0, l0, err := stores[0].KeyRingFingerprints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range stores[1:] {
		e, l, err := st.KeyRingFingerprints(ctx)
		if err != nil || e[0] != e0[0] || l[0] != l0[0] {
			t.Fatalf("replica %d: %v %v %v", i+1, e, l, err)
		}
	}
	if e0[0] == l0[0] {
		t.Fatal("one generated key serves both purposes")
	}
	if c := countRows(t, stores[0], `SELECT count(*) FROM instance_keys WHERE name IN ('erasure_hmac', 'link_signing')`); c != 2 {
		t.Fatalf("%d generated keys, want 2", c)
	}
}

// TestProfitWellAliasKeyChanged: the alias key ProfitWell knows is
// recorded on first use; another key is refused with one line until the
// operator forgets the old one on purpose. Erasure keys cannot be
// forgotten.
func TestProfitWellAliasKeyChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	k1, k2 := []byte("profitwell-alias-key-one"), []byte("profitwell-alias-key-two")
	for i := 0; i < 2; i++ {
		if err := st.CheckProfitWellAliasKey(ctx, k1); err != nil {
			t.Fatalf("check %d with the recorded key: %v", i, err)
		}
	}
	err := st.CheckProfitWellAliasKey(ctx, k2)
	if !errors.Is(err, postgres.ErrKeyChanged) || !strings.Contains(err.Error(), billing.KeyFingerprint(k1)) {
		t.Fatalf("changed alias key: %v", err)
	}
	if err := st.ForgetKey(ctx, postgres.PurposeErasure, billing.KeyFingerprint(keyA)); !errors.Is(err, billing.ErrInvalid) {
		t.Fatalf("forget an erasure key: %v", err)
	}
	if err := st.ForgetKey(ctx, postgres.PurposeProfitWell, billing.KeyFingerprint(k1)); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckProfitWellAliasKey(ctx, k2); err != nil {
		t.Fatalf("new alias key after forgetting the old one: %v", err)
	}
	for _, r := range mustFingerprints(t, st) {
		if r.Purpose == postgres.PurposeProfitWell && r.Fingerprint != billing.KeyFingerprint(k2) {
			t.Fatalf("recorded %s", r.Fingerprint)
		}
	}
}

// legacyReference is a checkout reference of the form before expiries.
func legacyReference(key []byte, acct string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(acct))
	return acct + "." + hex.EncodeToString(m.Sum(nil))
}

func mustFingerprints(t *testing.T, st *postgres.Store) []postgres.KeyFingerprintRow {
	t.Helper()
	rows, err := st.KeyFingerprints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
