package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// replicas opens n stores (separate pools, as separate processes would
// have) on one fresh database.
func replicas(t *testing.T, n int) []*postgres.Store {
	t.Helper()
	url := pgtest.URL(t)
	out := make([]*postgres.Store, n)
	for i := range out {
		st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out[i] = st
	}
	return out
}

// hintEvents are one event of each kind that carries an account hint, each
// about a new customer (and subscription) named after tag.
func hintEvents(account, tag string, at time.Time) []billing.Event {
	cus := func(n int) string { return fmt.Sprintf("cus_%sH%d", tag, n) }
	sub := func(n int) string { return fmt.Sprintf("sub_%sH%d", tag, n) }
	s := subscriptionOf(cus(1), sub(1), true, billing.StatusActive, 1000, at.Add(-time.Hour))
	s.AccountHint = account
	return []billing.Event{
		{ID: "evt_" + tag + "H0", Type: "customer.updated", Created: at, Livemode: true,
			Customer: &billing.Customer{ID: cus(0), Livemode: true, AccountHint: account}},
		{ID: "evt_" + tag + "H1", Type: "customer.subscription.created", Created: at, Livemode: true, Subscription: s},
		{ID: "evt_" + tag + "H2", Type: "checkout.session.completed", Created: at, Livemode: true,
			Checkout: &billing.CheckoutSession{CustomerID: cus(2), SubscriptionID: sub(2), Livemode: true, AccountHint: account}},
	}
}

func linkedTo(t *testing.T, st *postgres.Store, account string) int {
	t.Helper()
	return countRows(t, st, `SELECT count(*) FROM customers WHERE account_id = $1`, account)
}

// TestAccountTombstone: erasure tombstones the account ID itself, known or
// not, so that every kind of hint for a new customer is refused
// (link_erased: the customer is recorded, unlinked), one by one and in a
// batch; the app links it again only with an explicit, audited reuse.
func TestAccountTombstone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	f := newFixture("AT", 1)
	applyAll(t, st, f.history())
	res := erase(t, st, billing.ErasureRequest{AccountID: f.account})
	if res.Customers != 1 {
		t.Fatalf("erased %+v", res)
	}
	erase(t, st, billing.ErasureRequest{AccountID: "acct_neverseen"})
	if n := countRows(t, st, `SELECT count(*) FROM account_tombstones`); n != 2 {
		t.Fatalf("%d account tombstones, want 2 (a known and an unknown account)", n)
	}

	t.Run("EachHintOneByOne", func(t *testing.T) {
		for _, acct := range []string{f.account, "acct_neverseen"} {
			for i, o := range applyAll(t, st, hintEvents(acct, "one"+acct[5:], time.Now())) {
				if o != billing.OutcomeLinkErased {
					t.Errorf("%s event %d: outcome %s, want link_erased", acct, i, o)
				}
			}
			if n := linkedTo(t, st, acct); n != 0 {
				t.Errorf("%d customers linked to erased %s", n, acct)
			}
		}
	})
	t.Run("EachHintInOneBatch", func(t *testing.T) {
		evs := hintEvents(f.account, "batch", time.Now())
		// And a hint for a live account in the same batch still links.
		evs = append(evs, billing.Event{ID: "evt_batchLive", Type: "customer.updated", Created: time.Now(), Livemode: true,
			Customer: &billing.Customer{ID: "cus_batchLive", Livemode: true, AccountHint: "acct_live"}})
		outs, errs, err := postgres.ApplyBatch(ctx, st, evs)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			want := billing.OutcomeLinkErased
			if i == len(outs)-1 {
				want = billing.OutcomeApplied
			}
			if errs[i] != nil || o != want {
				t.Errorf("event %d: %s %v, want %s", i, o, errs[i], want)
			}
		}
		if linkedTo(t, st, f.account) != 0 || linkedTo(t, st, "acct_live") != 1 {
			t.Error("batch linked the erased account, or not the live one")
		}
	})
	t.Run("ReuseOnlyExplicit", func(t *testing.T) {
		if _, err := st.AccountLink(ctx, f.account, "cus_oneATH0", billing.LinkOptions{Actor: "backend"}); !errors.Is(err, billing.ErrAccountErased) {
			t.Fatalf("link without reuse: %v", err)
		}
		if n := countRows(t, st, `SELECT count(*) FROM audit_log WHERE action = $1`, postgres.AuditActionReuse); n != 0 {
			t.Fatalf("refused link audited %d times", n)
		}
		res, err := st.AccountLink(ctx, f.account, "cus_oneATH0", billing.LinkOptions{ReuseErased: true, Actor: "backend"})
		if err != nil || res != billing.LinkReused {
			t.Fatalf("link with reuse: %v %v", res, err)
		}
		subject, err := st.SubjectHMAC(ctx, f.account)
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, st, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor = 'backend' AND subject_hmac = $2`,
			postgres.AuditActionReuse, subject); n != 1 {
			t.Fatalf("reuse audited %d times, want 1", n)
		}
		// Idempotent: the same link again is 200 and audits nothing.
		if res, err := st.AccountLink(ctx, f.account, "cus_oneATH0", billing.LinkOptions{ReuseErased: true}); err != nil || res != billing.LinkExisted {
			t.Fatalf("repeat: %v %v", res, err)
		}
		// Erasing the reused account makes it erased again.
		erase(t, st, billing.ErasureRequest{AccountID: f.account})
		if _, err := st.AccountLink(ctx, f.account, "cus_oneATH1", billing.LinkOptions{}); !errors.Is(err, billing.ErrAccountErased) {
			t.Fatalf("link after a second erasure: %v", err)
		}
	})
	t.Run("LinkReferenceRefused", func(t *testing.T) {
		if _, _, err := st.LinkReference(ctx, f.account, time.Hour); !errors.Is(err, billing.ErrAccountErased) {
			t.Fatalf("reference for an erased account: %v", err)
		}
		ref, exp, err := st.LinkReference(ctx, "acct_live", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		v, err := st.LinkVerifier(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if acct, why := v.Verify(ref, exp); acct != "acct_live" || why != billing.LinkAccepted {
			t.Fatalf("reference does not verify: %q %q", acct, why)
		}
	})
}

// TestEraseRacesHint: an erasure racing an event that carries a
// hint for the same account, on two replicas (separate pools), in both
// orders and at random, never leaves a customer linked to the erased
// account. The event path takes the account's lock shared, the erasure
// exclusively: whichever commits first, the other sees it.
func TestEraseRacesHint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rs := replicas(t, 2)
	events, eraser := rs[0], rs[1]

	t.Run("EventFirst", func(t *testing.T) {
		f := newFixture("RHE", 1)
		applyAll(t, events, f.history())
		ev := hintEvents(f.account, "RHE", time.Now())[1] // a new customer's subscription
		done := make(chan error, 1)
		postgres.SetBeforeBatchCommit(events, func() {
			// The event has linked the new customer, not yet committed: the
			// erasure on the other replica must wait for it.
			go func() {
				_, err := eraser.EraseAccount(ctx, billing.ErasureRequest{AccountID: f.account, Actor: "t"})
				done <- err
			}()
			waitForLockWaiter(t, events)
		})
		out, err := events.ApplyEvent(ctx, ev)
		postgres.SetBeforeBatchCommit(events, nil)
		if err != nil || out != billing.OutcomeApplied {
			t.Fatalf("event: %s %v", out, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := linkedTo(t, events, f.account); n != 0 {
			t.Fatalf("%d customers linked after the erasure", n)
		}
		if !tombstoned(t, events, ev.Subscription.CustomerID) {
			t.Error("the customer linked while the erasure waited was not erased with the account")
		}
	})
	t.Run("EraseFirst", func(t *testing.T) {
		f := newFixture("RHX", 1)
		applyAll(t, events, f.history())
		ev := hintEvents(f.account, "RHX", time.Now())[1]
		type result struct {
			o   billing.Outcome
			err error
		}
		done := make(chan result, 1)
		postgres.SetBeforeEraseCommit(eraser, func() {
			go func() {
				o, err := events.ApplyEvent(ctx, ev)
				done <- result{o, err}
			}()
			waitForLockWaiter(t, eraser)
		})
		erase(t, eraser, billing.ErasureRequest{AccountID: f.account})
		postgres.SetBeforeEraseCommit(eraser, nil)
		r := <-done
		if r.err != nil || r.o != billing.OutcomeLinkErased {
			t.Fatalf("event after erasure: %s %v, want link_erased", r.o, r.err)
		}
		if n := linkedTo(t, events, f.account); n != 0 {
			t.Fatalf("%d customers linked after the erasure", n)
		}
	})
	t.Run("Random", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			f := newFixture(fmt.Sprintf("RHR%d", i), 1)
			applyAll(t, events, f.history())
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for j, ev := range hintEvents(f.account, fmt.Sprintf("RHR%d", i), time.Now()) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := rs[j%2].ApplyEvent(ctx, ev)
					errs <- err
				}()
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := eraser.EraseAccount(ctx, billing.ErasureRequest{AccountID: f.account, Actor: "t"})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := events.AccountLink(ctx, f.account, fmt.Sprintf("cus_RHR%dApi", i), billing.LinkOptions{})
				if errors.Is(err, billing.ErrAccountErased) {
					err = nil
				}
				errs <- err
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := linkedTo(t, events, f.account); n != 0 {
				t.Fatalf("round %d: %d customers linked to the erased account", i, n)
			}
			subs, err := events.AccountSubscriptions(ctx, f.account, true)
			if err != nil || len(subs) != 0 {
				t.Fatalf("round %d: %d subscriptions still entitle the erased account (err %v)", i, len(subs), err)
			}
		}
	})
}

// TestAccountTombstoneUpgrade: an account erased before migration 0100
// (no account tombstone then) gets its tombstone from its erasure's audit
// entry when the migration runs, so hints naming it are refused from the
// upgrade on.
func TestAccountTombstoneUpgrade(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	f := newFixture("UPA", 1)
	applyAll(t, st, f.history())
	erase(t, st, billing.ErasureRequest{AccountID: f.account})
	for { // back to before account tombstones (0100), whatever came after it
		v, _, err := st.SchemaVersion()
		if err != nil {
			t.Fatal(err)
		}
		if v < 100 {
			break
		}
		if err := st.MigrateDown(1); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, st, `SELECT count(*) FROM tombstones`); n != 2 {
		t.Fatalf("before the upgrade: %d tombstones, want the customer's and the subscription's", n)
	}
	if err := st.MigrateUp(); err != nil {
		t.Fatal(err)
	}
	for i, o := range applyAll(t, st, hintEvents(f.account, "UPA", time.Now())) {
		if o != billing.OutcomeLinkErased {
			t.Errorf("hint %d for an account erased before the upgrade: %s", i, o)
		}
	}
}
