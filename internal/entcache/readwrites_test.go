package entcache_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// TestStoreWritesDropCachedAnswers wires a Store to its replica's cache as
// serve does (OnAccountsChanged) and makes every kind of write that can
// change an entitlement: right after the write returns, the cache answers
// from the new state, every round, without waiting for the feed. The kinds
// cover each path that notifies: the batch's subscription writes, customer
// and checkout events (their hooks), an invoice, an object fetched from
// the API (backfill, reconcile), a link and an erasure.
func TestStoreWritesDropCachedAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.URL(t), slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	// A long bound: the feed alone would leave answers stale for the whole
	// test, so only the Store's own notification can make it pass.
	// The answers are the domain values themselves: the cache keeps whatever
	// its render function makes of an entitlement.
	domain := func(e billing.Entitlement) billing.Entitlement { return e }
	cache := entcache.New(st, domain, entcache.Options{Grace: 72 * time.Hour, Bound: time.Minute, Log: slog.New(slog.DiscardHandler), Registerer: reg})
	st.OnAccountsChanged(cache.InvalidateAccounts)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { cache.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(30 * time.Second); !cache.Fresh(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache listener never came up")
		}
	}

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	sub := func(id, cus, hint string, status billing.Status) *billing.Subscription {
		end := t0.Add(30 * 24 * time.Hour)
		return &billing.Subscription{ID: id, CustomerID: cus, Livemode: true, Status: status, Currency: "usd",
			CurrentPeriodStart: &t0, CurrentPeriodEnd: &end, AccountHint: hint,
			Items: []billing.Item{{PriceID: "price_ryw", Quantity: 1, UnitAmount: 900, Interval: billing.IntervalMonth, IntervalCount: 1}}}
	}
	apply := func(t *testing.T, ev billing.Event) {
		t.Helper()
		if out, err := st.ApplyEvent(ctx, ev); err != nil || (out != billing.OutcomeApplied) {
			t.Fatalf("apply %s: %v %v", ev.Type, out, err)
		}
	}
	entitled := func(t *testing.T, acct string) bool {
		t.Helper()
		a, err := cache.Entitlement(ctx, acct, true)
		if err != nil {
			t.Fatal(err)
		}
		return a.Entitled
	}
	// cached reads acct twice and checks the second came from memory.
	cached := func(t *testing.T, acct string) bool {
		t.Helper()
		first := entitled(t, acct)
		if second := entitled(t, acct); second != first {
			t.Fatalf("%s: two reads disagree", acct)
		}
		return first
	}

	kinds := []struct {
		name   string
		letter string // the accounts' and objects' prefix
		before bool
		setup  func(t *testing.T, k string)
		change func(t *testing.T, k string)
	}{
		{"SubscriptionEvent", "s", true, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_s" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_s"+k, "cus_s"+k, "acct_s"+k, billing.StatusActive)})
		}, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_s" + k + "x", Type: "customer.subscription.deleted", Created: t0.Add(time.Minute), Livemode: true, Subscription: sub("sub_s"+k, "cus_s"+k, "", billing.StatusCanceled)})
		}},
		{"FetchedFromAPI", "f", true, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_f" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_f"+k, "cus_f"+k, "acct_f"+k, billing.StatusActive)})
		}, func(t *testing.T, k string) {
			// Backfill and reconcile: no event ID, the fetch time as version.
			apply(t, billing.Event{Type: "customer.subscription.updated", Created: time.Now(), Livemode: true, Subscription: sub("sub_f"+k, "cus_f"+k, "", billing.StatusUnpaid)})
		}},
		{"CustomerDeleted", "c", true, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_c" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_c"+k, "cus_c"+k, "acct_c"+k, billing.StatusActive)})
		}, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_c" + k + "x", Type: "customer.deleted", Created: t0.Add(time.Minute), Livemode: true, Customer: &billing.Customer{ID: "cus_c" + k, Livemode: true, Deleted: true}})
		}},
		{"CustomerMetadataLinks", "m", false, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_m" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_m"+k, "cus_m"+k, "", billing.StatusActive)})
		}, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_m" + k + "x", Type: "customer.updated", Created: t0.Add(time.Minute), Livemode: true, Customer: &billing.Customer{ID: "cus_m" + k, Livemode: true, AccountHint: "acct_m" + k}})
		}},
		{"CheckoutLinks", "k", false, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_k" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_k"+k, "cus_k"+k, "", billing.StatusActive)})
		}, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_k" + k + "x", Type: "checkout.session.completed", Created: t0.Add(time.Minute), Livemode: true, Checkout: &billing.CheckoutSession{CustomerID: "cus_k" + k, SubscriptionID: "sub_k" + k, Livemode: true, AccountHint: "acct_k" + k}})
		}},
		{"Link", "l", false, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_l" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_l"+k, "cus_l"+k, "", billing.StatusActive)})
		}, func(t *testing.T, k string) {
			if res, err := st.AccountLink(ctx, "acct_l"+k, "cus_l"+k, billing.LinkOptions{}); err != nil || res != billing.LinkCreated {
				t.Fatalf("link: %v %v", res, err)
			}
		}},
		{"Erasure", "e", true, func(t *testing.T, k string) {
			apply(t, billing.Event{ID: "evt_e" + k, Type: "customer.subscription.created", Created: t0, Livemode: true, Subscription: sub("sub_e"+k, "cus_e"+k, "acct_e"+k, billing.StatusActive)})
		}, func(t *testing.T, k string) {
			if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_e" + k, Actor: "test"}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			for i := 0; i < 10; i++ {
				k := fmt.Sprintf("%s%02d", kind.name[:3], i)
				acct := "acct_" + kind.letter + k
				kind.setup(t, k)
				if got := cached(t, acct); got != kind.before {
					t.Fatalf("round %d: entitled %v before the change, want %v", i, got, kind.before)
				}
				kind.change(t, k)
				if got := entitled(t, acct); got == kind.before {
					t.Fatalf("round %d: entitled still %v right after the write returned", i, got)
				}
			}
		})
	}
}
