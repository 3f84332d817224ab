package postgres_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// batchScenario is a set of events that exercises every rule of the event
// path inside one batch: several versions of one subscription (with a
// same-second tie and a stale one), a copy of an event, an invoice before
// its subscription, a customer deleted, a checkout link, a hint that
// conflicts with an existing link, a tombstoned customer and a connected
// account's event. before is applied first, one event at a time.
func batchScenario() (before, batch []billing.Event) {
	f := newFixture("B1", 2) // linked before the batch
	g := newFixture("B2", 2) // first seen in the batch
	h := newFixture("B3", 1) // erased before the batch
	before = append(f.history(), h.history()...)

	batch = append(batch, g.history()...)
	// g's live subscription: cancelled and reactivated within one second
	// (rank breaks the tie), then a late, stale update.
	tie := month(2026, time.March)
	batch = append(batch,
		g.subscriptionEvent(0, tie, billing.StatusCanceled, 2500),
		g.subscriptionEvent(0, tie, billing.StatusActive, 4000),
		g.subscriptionEvent(0, month(2026, time.January).Add(30*time.Second), billing.StatusActive, 999),
	)
	// f: an upgrade, a conflicting hint on its subscription, its test-mode
	// customer deleted, a copy of an event of this batch and a version
	// older than the one stored.
	up := f.subscriptionEvent(0, month(2026, time.April), billing.StatusActive, 5000)
	conflict := f.subscriptionEvent(1, month(2026, time.April), billing.StatusActive, 1500)
	conflict.Subscription.AccountHint = "acct_somebody_else"
	deleted := billing.Event{ID: "evt_B1del", Type: "customer.deleted", Created: month(2026, time.May), Livemode: false,
		Customer: &billing.Customer{ID: f.cus[1], Livemode: false, Deleted: true}}
	late := f.subscriptionEvent(0, month(2026, time.January).AddDate(0, 0, 14), billing.StatusActive, 1200) // older than stored: stale
	batch = append(batch, up, conflict, deleted, up, late)
	// An invoice before its (new) subscription, and a checkout linking a
	// new customer with no subscription yet.
	batch = append(batch,
		billing.Event{ID: "evt_B4inv", Type: "invoice.payment_failed", Created: month(2026, time.June), Livemode: true,
			Invoice: &billing.Invoice{CustomerID: "cus_B4C0", SubscriptionID: "sub_B4S0", Livemode: true,
				Status: billing.InvoicePaymentFailed, AttemptCount: 2}},
		billing.Event{ID: "evt_B4sub", Type: "customer.subscription.created", Created: month(2026, time.June).Add(-time.Hour),
			Livemode: true, Subscription: subscriptionOf("cus_B4C0", "sub_B4S0", true, billing.StatusActive, 700, month(2026, time.June))},
		billing.Event{ID: "evt_B5co", Type: "checkout.session.completed", Created: month(2026, time.June), Livemode: true,
			Checkout: &billing.CheckoutSession{CustomerID: "cus_B5C0", Livemode: true, AccountHint: "acct_B5"}},
		billing.Event{ID: "evt_B6conn", Type: "customer.subscription.updated", Created: month(2026, time.June), Livemode: true, Connect: true},
	)
	// h was erased: its later events are tombstoned.
	batch = append(batch, h.subscriptionEvent(0, month(2026, time.July), billing.StatusCanceled, 1000))
	// Customer events applied together (each its customer's only one but
	// subscription events): a new customer linked by its own metadata with
	// its discount known, a hint conflicting with f's link (beside f's
	// upgrade), a hint naming the erased account; and two updates of one
	// customer, applied one by one.
	cus := func(id, typ, hint string, at time.Time, c billing.Customer) billing.Event {
		c.ID, c.Livemode, c.AccountHint = "cus_"+id, true, hint
		return billing.Event{ID: "evt_" + id, Type: typ, Created: at, Livemode: true, Customer: &c}
	}
	conflictCus := f.customerEvent(0, month(2026, time.April))
	conflictCus.ID, conflictCus.Customer.AccountHint = "evt_B1cus", "acct_somebody_else"
	batch = append(batch,
		cus("B7C0", "customer.created", "acct_B7", month(2026, time.June), billing.Customer{DiscountsKnown: true, Discounts: []billing.Discount{}}),
		conflictCus,
		cus("B8C0", "customer.created", "acct_B3", month(2026, time.June), billing.Customer{}),
		cus("B9C0", "customer.created", "acct_B9", month(2026, time.June), billing.Customer{}),
		cus("B9C0b", "customer.updated", "", month(2026, time.June).Add(time.Hour), billing.Customer{}),
	)
	batch[len(batch)-1].Customer.ID = "cus_B9C0"
	return before, batch
}

// TestBatchEqualsOneByOne applies the scenario's batch in one transaction,
// in several input orders, and one event at a time: the stored state (with
// surrogate references and internal IDs replaced by the Stripe IDs they
// stand for), the outbox and every event's outcome are the same.
func TestBatchEqualsOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	before, batch := batchScenario()
	prepare := func(t *testing.T) *postgres.Store {
		st := pgtest.Open(t)
		applyAll(t, st, before)
		if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_B3", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Reference: one event per transaction, in the order a batch applies
	// them (subscription events first, by customer and version; the rest
	// after, by customer and time); the copy is a sequential duplicate.
	// Customer events go through applyCustomer alone, which the batch's
	// plain customer events applied together must equal.
	ref := prepare(t)
	postgres.SetCustomersOneByOne(ref)
	order := slices.Clone(batch)
	isSub := func(ev billing.Event) bool { return ev.Subscription != nil && !ev.Connect }
	slices.SortStableFunc(order, func(x, y billing.Event) int {
		if isSub(x) != isSub(y) {
			if isSub(x) {
				return -1
			}
			return 1
		}
		return cmp.Or(strings.Compare(customerOf(x), customerOf(y)), x.Created.Compare(y.Created), strings.Compare(statusRank(x), statusRank(y)))
	})
	want := map[string]billing.Outcome{}
	for _, ev := range order {
		o, err := ref.ApplyEvent(ctx, ev)
		if err != nil {
			t.Fatalf("one by one: %s: %v", ev.ID, err)
		}
		if _, seen := want[ev.ID]; !seen {
			want[ev.ID] = o
		}
	}
	wantState := normalisedState(t, ref)

	for run := 0; run < 4; run++ {
		t.Run(fmt.Sprint("order", run), func(t *testing.T) {
			st := prepare(t)
			evs := slices.Clone(batch)
			rand.New(rand.NewPCG(uint64(run), 7)).Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			outs, errs, err := postgres.ApplyBatch(ctx, st, evs)
			if err != nil {
				t.Fatal(err)
			}
			firstSeen := map[string]bool{}
			for i, ev := range evs {
				if errs[i] != nil {
					t.Errorf("%s: %v", ev.ID, errs[i])
					continue
				}
				w := want[ev.ID]
				if firstSeen[ev.ID] {
					w = billing.OutcomeDuplicate // the copy, in the same batch
				}
				firstSeen[ev.ID] = true
				if outs[i] != w {
					t.Errorf("%s (%s): outcome %q, one by one %q", ev.ID, ev.Type, outs[i], w)
				}
			}
			got := normalisedState(t, st)
			for _, name := range slices.Sorted(mapsKeys(wantState)) {
				if got[name] != wantState[name] {
					t.Errorf("%s differs from one by one:\n got: %s\nwant: %s", name, got[name], wantState[name])
				}
			}
		})
	}
	// The scenario covers every outcome, so each path above was compared.
	seen := map[billing.Outcome]bool{}
	for _, o := range want {
		seen[o] = true
	}
	for _, o := range []billing.Outcome{billing.OutcomeApplied, billing.OutcomeStale, billing.OutcomeLinkConflict,
		billing.OutcomeTombstoned, billing.OutcomeIgnored, billing.OutcomeLinkErased} {
		if !seen[o] {
			t.Errorf("scenario produced no %q outcome: %v", o, want)
		}
	}
	for _, c := range []struct {
		event string
		want  billing.Outcome
		row   string
	}{
		{"evt_B1cus", billing.OutcomeLinkConflict, "cus_B1C0 true false acct_B1"},
		{"evt_B7C0", billing.OutcomeApplied, "cus_B7C0 true false acct_B7 customer_metadata"},
		{"evt_B8C0", billing.OutcomeLinkErased, "cus_B8C0 true false - -"},
		{"evt_B9C0", billing.OutcomeApplied, "cus_B9C0 true false acct_B9 customer_metadata"},
	} {
		if want[c.event] != c.want || !strings.Contains(wantState["customers"], c.row) {
			t.Errorf("scenario: %s: %q, want %q and a row %q in\n%s", c.event, want[c.event], c.want, c.row, wantState["customers"])
		}
	}
	if !strings.Contains(wantState["discounts"], "cus_B7C0") {
		t.Errorf("scenario: no discount version for cus_B7C0:\n%s", wantState["discounts"])
	}
	if want["evt_B1del"] != billing.OutcomeApplied || !strings.Contains(wantState["customers"], "cus_B1C1 false true") {
		t.Errorf("scenario: customer.deleted not applied: %q\n%s", want["evt_B1del"], wantState["customers"])
	}
}

func customerOf(ev billing.Event) string {
	switch {
	case ev.Subscription != nil:
		return ev.Subscription.CustomerID
	case ev.Customer != nil:
		return ev.Customer.ID
	case ev.Invoice != nil:
		return ev.Invoice.CustomerID
	case ev.Checkout != nil:
		return ev.Checkout.CustomerID
	}
	return ""
}

// statusRank orders same-second subscription versions as the version key does.
func statusRank(ev billing.Event) string {
	if ev.Subscription == nil {
		return ev.ID
	}
	return fmt.Sprintf("%02d%s", billing.StatusRank(ev.Subscription.Status), ev.ID)
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// normalisedState reads what the event path writes, keyed by Stripe IDs
// rather than surrogate references, without internal IDs and clock times.
func normalisedState(t *testing.T, st *postgres.Store) map[string]string {
	t.Helper()
	queries := map[string]string{
		"customers": `SELECT stripe_customer_id, livemode, deleted, coalesce(account_id, '-'), coalesce(linked_via, '-'),
		                     coalesce(version_at::text, '-'), coalesce(version_event, '-')
		              FROM customers ORDER BY 1`,
		"subscriptions": `SELECT stripe_subscription_id, status, items::text, mrr_minor, version_at, version_rank, version_event,
		                         coalesce(latest_invoice_status, '-'), invoice_attempt_count
		                  FROM subscriptions ORDER BY 1`,
		"versions": `SELECT s.stripe_subscription_id, v.status, v.mrr_minor, v.version_at, v.version_rank, v.version_event
		             FROM subscription_versions v JOIN subscriptions s USING (subscription_ref) ORDER BY 1, 4, 5, 6`,
		"pending": `SELECT stripe_subscription_id, latest_invoice_status FROM pending_invoice_facts ORDER BY 1`,
		"movements": `SELECT c.stripe_customer_id, m.livemode, m.currency, m.effective_at, m.kind, m.delta_minor,
		                     m.customer_mrr_before, m.customer_mrr_after
		              FROM mrr_movements m JOIN customers c USING (customer_ref) ORDER BY 1, 2, 3, 4, 5`,
		"activity": `SELECT c.stripe_customer_id, a.livemode, a.currency, a.effective_at, a.delta
		             FROM subscription_activity a JOIN customers c USING (customer_ref) ORDER BY 1, 2, 3, 4, 5`,
		"revenue_daily": `SELECT livemode, currency, day, sum(mrr_delta), sum(new_minor), sum(expansion_minor),
		                         sum(contraction_minor), sum(churn_minor), sum(paying_delta), sum(active_delta)
		                  FROM revenue_daily GROUP BY 1, 2, 3 HAVING sum(abs(mrr_delta)) + sum(abs(active_delta)) > 0 ORDER BY 1, 2, 3`,
		"events": `SELECT event_id, outcome FROM stripe_events ORDER BY 1`,
		"outbox": `SELECT c.stripe_customer_id, o.kind, o.action, o.payload::text
		           FROM outbox o JOIN customers c ON o.ordering_key LIKE '%' || c.customer_ref::text
		           ORDER BY o.id`, // erased customers' rows (churn dated at the erasure) left out
		"invalidations": `SELECT DISTINCT kind, bucket FROM cache_invalidations ORDER BY 1, 2`,
		"dirty":         `SELECT DISTINCT account_id FROM entitlement_dirty ORDER BY 1`,
		"discounts": `SELECT c.stripe_customer_id, d.livemode, d.version_at, d.version_event, d.discounts::text
		              FROM customer_discount_versions d JOIN customers c USING (customer_ref) ORDER BY 1, 3, 4`,
	}
	out := map[string]string{}
	for name, q := range queries {
		rows, err := st.DB().QueryxContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var lines []string
		for rows.Next() {
			vals, err := rows.SliceScan()
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				if tm, ok := v.(time.Time); ok {
					v = tm.UTC().Format(time.RFC3339Nano)
				}
				parts = append(parts, fmt.Sprint(v))
			}
			lines = append(lines, uuidRE.ReplaceAllString(strings.Join(parts, " "), "<ref>"))
		}
		rows.Close()
		out[name] = strings.Join(lines, "\n")
	}
	return out
}

// TestBatchesAcrossReplicas sends the same events, each twice and in a
// different random order, from 32 goroutines to two Stores (two replicas)
// on one database, so batches of the two overlap in events and customers:
// no delivery fails (no deadlock between batches), every event ID is
// applied exactly once, and the state equals one-by-one application.
func TestBatchesAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var evs []billing.Event
	for c := 0; c < 24; c++ {
		f := newFixture(fmt.Sprintf("R%02d", c), 2)
		evs = append(evs, f.history()...)
		for m := time.March; m <= time.June; m++ {
			evs = append(evs, f.subscriptionEvent(c%2, month(2026, m), billing.StatusActive, int64(1000+100*int(m))))
		}
		evs = append(evs, f.subscriptionEvent(0, month(2026, time.July), billing.StatusCanceled, 1600))
	}

	ref := pgtest.Open(t)
	order := slices.Clone(evs)
	slices.SortStableFunc(order, func(x, y billing.Event) int { return x.Created.Compare(y.Created) })
	applyAll(t, ref, order)
	want := normalisedState(t, ref)

	url := pgtest.URL(t)
	var stores [2]*postgres.Store
	for i := range stores {
		st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	batches, biggest := 0, 0
	var mu sync.Mutex
	for _, st := range stores {
		st.ObserveEventBatches(func(n int, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			batches++
			biggest = max(biggest, n)
			if err != nil {
				t.Errorf("a batch failed and fell back to one event per transaction: %v", err)
			}
		})
	}
	type delivery struct {
		st *postgres.Store
		ev billing.Event
	}
	var work []delivery
	rng := rand.New(rand.NewPCG(11, 12))
	for copyN := 0; copyN < 2; copyN++ {
		for _, i := range rng.Perm(len(evs)) {
			work = append(work, delivery{stores[(i+copyN)%2], evs[i]})
		}
	}
	ch := make(chan delivery)
	applied := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range ch {
				out, err := d.st.ApplyEvent(ctx, d.ev)
				if err != nil {
					t.Errorf("%s: %v", d.ev.ID, err)
					continue
				}
				if out != billing.OutcomeDuplicate {
					mu.Lock()
					applied[d.ev.ID]++
					mu.Unlock()
				}
			}
		}()
	}
	for _, d := range work {
		ch <- d
	}
	close(ch)
	wg.Wait()
	for _, ev := range evs {
		if applied[ev.ID] != 1 {
			t.Errorf("%s applied %d times", ev.ID, applied[ev.ID])
		}
	}
	got := normalisedState(t, stores[0])
	// Outcomes (applied or stale) depend on delivery order; the state does not.
	for _, name := range []string{"customers", "subscriptions", "versions", "movements", "activity", "revenue_daily", "pending"} {
		if got[name] != want[name] {
			t.Errorf("%s differs from one by one:\n got: %.600s\nwant: %.600s", name, got[name], want[name])
		}
	}
	t.Logf("%d deliveries in %d batches, largest %d", len(work), batches, biggest)
	if biggest < 2 {
		t.Errorf("no batch held more than one event: the test did not exercise group commit")
	}
}
