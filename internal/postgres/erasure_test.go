package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// erasureFixture is one account with its Stripe objects, written through
// the real event path (ApplyEvent).
type erasureFixture struct {
	account string
	cus     []string // customers; the first is live mode, the rest test mode
	subs    []string // one subscription per customer, same index
	seq     int      // event ID counter
	prefix  string
}

func (f *erasureFixture) ids() []string {
	return append(append([]string{f.account}, f.cus...), f.subs...)
}

func (f *erasureFixture) nextEventID() string {
	f.seq++
	return fmt.Sprintf("evt_%s%d", f.prefix, f.seq)
}

func month(y int, m time.Month) time.Time { return time.Date(y, m, 1, 12, 0, 0, 0, time.UTC) }

func subscriptionOf(cus, sub string, live bool, status billing.Status, amount int64, start time.Time) *billing.Subscription {
	end := start.AddDate(0, 1, 0)
	return &billing.Subscription{
		ID: sub, CustomerID: cus, Livemode: live, Status: status, Currency: "eur",
		Items: []billing.Item{{PriceID: "price_basic", ProductID: "prod_basic", Quantity: 1, UnitAmount: amount,
			Interval: billing.IntervalMonth, IntervalCount: 1, UsageType: "licensed", BillingScheme: "per_unit"}},
		Discounts: []billing.Discount{}, Created: &start, StartDate: &start,
		CurrentPeriodStart: &start, CurrentPeriodEnd: &end,
	}
}

// customerEvent, subscriptionEvent, invoiceEvent and checkoutEvent build
// every kind of event the event path handles for one customer.
func (f *erasureFixture) customerEvent(i int, at time.Time) billing.Event {
	return billing.Event{ID: f.nextEventID(), Type: "customer.updated", Created: at, Livemode: i == 0,
		Customer: &billing.Customer{ID: f.cus[i], Livemode: i == 0, AccountHint: f.account}}
}

func (f *erasureFixture) subscriptionEvent(i int, at time.Time, status billing.Status, amount int64) billing.Event {
	return billing.Event{ID: f.nextEventID(), Type: "customer.subscription.updated", Created: at, Livemode: i == 0,
		Subscription: subscriptionOf(f.cus[i], f.subs[i], i == 0, status, amount, month(2026, time.January))}
}

func (f *erasureFixture) invoiceEvent(i int, at time.Time) billing.Event {
	return billing.Event{ID: f.nextEventID(), Type: "invoice.paid", Created: at, Livemode: i == 0,
		Invoice: &billing.Invoice{CustomerID: f.cus[i], SubscriptionID: f.subs[i], Livemode: i == 0, Status: billing.InvoicePaid, AttemptCount: 1}}
}

func (f *erasureFixture) checkoutEvent(i int, at time.Time) billing.Event {
	return billing.Event{ID: f.nextEventID(), Type: "checkout.session.completed", Created: at, Livemode: i == 0,
		Checkout: &billing.CheckoutSession{CustomerID: f.cus[i], SubscriptionID: f.subs[i], Livemode: i == 0, AccountHint: f.account}}
}

// history is every event of the fixture: link, start, an upgrade in
// February and an invoice, per customer. Past months only.
func (f *erasureFixture) history() []billing.Event {
	var evs []billing.Event
	for i := range f.cus {
		evs = append(evs,
			f.customerEvent(i, month(2026, time.January)),
			f.subscriptionEvent(i, month(2026, time.January).Add(time.Minute), billing.StatusActive, 1000),
			f.subscriptionEvent(i, month(2026, time.February), billing.StatusActive, 2500),
			f.invoiceEvent(i, month(2026, time.February).Add(time.Hour)),
		)
	}
	return evs
}

func newFixture(prefix string, customers int) *erasureFixture {
	f := &erasureFixture{account: "acct_" + prefix, prefix: prefix}
	for i := 0; i < customers; i++ {
		f.cus = append(f.cus, fmt.Sprintf("cus_%sC%d", prefix, i))
		f.subs = append(f.subs, fmt.Sprintf("sub_%sS%d", prefix, i))
	}
	return f
}

func applyAll(t *testing.T, st *postgres.Store, evs []billing.Event) []billing.Outcome {
	t.Helper()
	out := make([]billing.Outcome, len(evs))
	for i, ev := range evs {
		o, err := st.ApplyEvent(context.Background(), ev)
		if err != nil {
			t.Fatalf("apply %s %s: %v", ev.Type, ev.ID, err)
		}
		out[i] = o
	}
	return out
}

// dump returns every row of every table as text, keyed by table.
func dump(t *testing.T, st *postgres.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	cols, err := st.SchemaColumns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(cols))
	for table := range cols {
		var s string
		// Table names come from the catalog, not from input.
		q := fmt.Sprintf(`SELECT coalesce(string_agg(t::text, E'\n'), '') FROM %q t`, table)
		if err := st.DB().GetContext(ctx, &s, q); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		out[table] = s
	}
	return out
}

// assertNoneInDump fails for every ID found in any table.
func assertNoneInDump(t *testing.T, st *postgres.Store, ids []string) {
	t.Helper()
	for table, rows := range dump(t, st) {
		for _, id := range ids {
			if strings.Contains(rows, id) {
				t.Errorf("table %s still holds %s", table, id)
			}
		}
	}
}

func countRows(t *testing.T, st *postgres.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().GetContext(context.Background(), &n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func revenue(t *testing.T, st *postgres.Store) []billing.PeriodTotals {
	t.Helper()
	p, err := st.Revenue(context.Background(), billing.RevenueQuery{Livemode: true, Currency: "eur", Bucket: billing.BucketMonth,
		From: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func erase(t *testing.T, st *postgres.Store, req billing.ErasureRequest) billing.ErasureResult {
	t.Helper()
	if req.Actor == "" {
		req.Actor = "app-backend"
	}
	res, err := st.EraseAccount(context.Background(), req)
	if err != nil {
		t.Fatalf("erase %v", err)
	}
	return res
}

func TestEraseAccount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	f := newFixture("A", 2)
	other := newFixture("B", 1)
	applyAll(t, st, f.history())
	applyAll(t, st, other.history())
	before := revenue(t, st)
	versions := countRows(t, st, `SELECT count(*) FROM subscription_versions`)
	movements := countRows(t, st, `SELECT count(*) FROM mrr_movements`)
	if movements == 0 {
		t.Fatal("fixture produced no movements: the revenue check would prove nothing")
	}

	var refs []string // the erased customers' and subscriptions' surrogate references
	if err := st.DB().Select(&refs, `SELECT customer_ref::text FROM customers WHERE account_id = $1
		UNION ALL SELECT s.subscription_ref::text FROM subscriptions s JOIN customers c USING (stripe_customer_id) WHERE c.account_id = $1`, f.account); err != nil {
		t.Fatal(err)
	}

	res := erase(t, st, billing.ErasureRequest{AccountID: f.account, EraseProfitWell: true})

	t.Run("Counts", func(t *testing.T) {
		want := billing.ErasureResult{Customers: 2, Subscriptions: 2, Tombstones: 4, ProfitWellChurn: 1, ProfitWellErase: 1}
		if res != want {
			t.Errorf("result = %+v, want %+v", res, want)
		}
	})
	t.Run("NoIDLeftInAnyTable", func(t *testing.T) {
		assertNoneInDump(t, st, f.ids())
	})
	t.Run("HistoryReKeyed", func(t *testing.T) {
		// The old references may have left billingd (an export, ProfitWell
		// aliases): only the ProfitWell rows just queued may still carry
		// them, so that ProfitWell hears about the right aliases.
		for table, rows := range dump(t, st) {
			if table == "outbox" {
				continue
			}
			for _, ref := range refs {
				if strings.Contains(rows, ref) {
					t.Errorf("table %s still holds the erased reference %s", table, ref)
				}
			}
		}
		// Rebuilding every ledger from the re-keyed history gives the same
		// figures: versions and movements moved together.
		custRefs, err := st.LedgerCustomers(ctx, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range custRefs {
			if err := st.RebuildCustomerLedger(ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
		if got := revenue(t, st); !reflect.DeepEqual(got, before) {
			t.Errorf("revenue after rebuilding the re-keyed ledgers:\n got %+v\nwant %+v", got, before)
		}
	})
	t.Run("OtherAccountUntouched", func(t *testing.T) {
		if n := countRows(t, st, `SELECT count(*) FROM customers WHERE account_id = $1`, other.account); n != 1 {
			t.Errorf("other account has %d customers, want 1", n)
		}
		if n := countRows(t, st, `SELECT count(*) FROM subscriptions WHERE stripe_customer_id = $1`, other.cus[0]); n != 1 {
			t.Errorf("other account has %d subscriptions, want 1", n)
		}
	})
	t.Run("RevenueHistoryUnchanged", func(t *testing.T) {
		if got := revenue(t, st); !reflect.DeepEqual(got, before) {
			t.Errorf("revenue changed by erasure:\n got %+v\nwant %+v", got, before)
		}
		if n := countRows(t, st, `SELECT count(*) FROM subscription_versions`); n != versions {
			t.Errorf("subscription_versions: %d rows, want %d", n, versions)
		}
		if n := countRows(t, st, `SELECT count(*) FROM mrr_movements`); n != movements {
			t.Errorf("mrr_movements: %d rows, want %d", n, movements)
		}
	})
	t.Run("Audit", func(t *testing.T) {
		subject, err := st.SubjectHMAC(ctx, f.account)
		if err != nil {
			t.Fatal(err)
		}
		var rows []struct {
			Actor   string `db:"actor"`
			Details []byte `db:"details"`
		}
		if err := st.DB().SelectContext(ctx, &rows, `SELECT actor, details FROM audit_log WHERE action = $1 AND subject_hmac = $2`,
			postgres.AuditActionErase, subject); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Actor != "app-backend" {
			t.Fatalf("audit rows = %+v, want one by app-backend", rows)
		}
		var d map[string]any
		if err := json.Unmarshal(rows[0].Details, &d); err != nil {
			t.Fatal(err)
		}
		if d["customers"] != 2.0 || d["subscriptions"] != 2.0 || d["erase_profitwell"] != true {
			t.Errorf("audit details = %s", rows[0].Details)
		}
	})
	t.Run("ProfitWellRowsByReferenceOnly", func(t *testing.T) {
		rows, err := st.OutboxRows(ctx, billing.OutboxProfitWell, "")
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]int{}
		for _, r := range rows {
			actions[r.Action]++
			for _, bad := range []string{"cus_", "sub_", "acct_"} {
				if strings.Contains(string(r.Payload), bad) || strings.Contains(r.OrderingKey, bad) {
					t.Errorf("outbox row %d holds %q: %s", r.ID, bad, r.Payload)
				}
			}
		}
		if actions[string(billing.SyncChurn)] != 1 || actions[string(billing.SyncEraseUser)] != 1 {
			t.Errorf("profitwell actions = %v, want one churn (live subscription) and one erase_user (live customer)", actions)
		}
	})
	t.Run("Tombstoned", func(t *testing.T) {
		for _, id := range append(append([]string{}, f.cus...), f.subs...) {
			if !tombstoned(t, st, id) {
				t.Errorf("%s not tombstoned", id)
			}
		}
		for _, id := range []string{other.cus[0], other.subs[0], "cus_neverseen"} {
			if tombstoned(t, st, id) {
				t.Errorf("%s tombstoned, want not", id)
			}
		}
	})
	t.Run("SecondCallAndUnknownAccount", func(t *testing.T) {
		for _, acct := range []string{f.account, "acct_unknown"} {
			if res := erase(t, st, billing.ErasureRequest{AccountID: acct, DeleteCustomer: true}); res != (billing.ErasureResult{}) {
				t.Errorf("erase %s again: %+v, want nothing", acct, res)
			}
		}
	})
}

func tombstoned(t *testing.T, st *postgres.Store, id string) bool {
	t.Helper()
	ctx := context.Background()
	tx, err := st.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	dead, err := postgres.IsTombstoned(ctx, st, tx, id)
	if err != nil {
		t.Fatal(err)
	}
	return dead
}

func TestEraseAccountInvalid(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	tests := []struct {
		name string
		req  billing.ErasureRequest
	}{
		{"ErrAccountIDEmpty", billing.ErasureRequest{Actor: "x"}},
		{"ErrAccountIDChars", billing.ErasureRequest{AccountID: "a b", Actor: "x"}},
		{"ErrAccountIDLong", billing.ErasureRequest{AccountID: strings.Repeat("a", 129), Actor: "x"}},
		{"ErrActorEmpty", billing.ErasureRequest{AccountID: "acct_1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := st.EraseAccount(context.Background(), tt.req); !isInvalid(err) {
				t.Errorf("err = %v, want billing.ErrInvalid", err)
			}
		})
	}
}

func isInvalid(err error) bool {
	return err != nil && strings.Contains(err.Error(), billing.ErrInvalid.Error())
}

// TestEraseThenReplay replays every event of the erased customers, with
// their original IDs (duplicates) and as new deliveries dated before and
// after the erasure: each is acknowledged as duplicate or tombstoned, and
// nothing about the customers is stored again.
func TestEraseThenReplay(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	f := newFixture("R", 2)
	hist := f.history()
	applyAll(t, st, hist)
	erase(t, st, billing.ErasureRequest{AccountID: f.account})
	before := dump(t, st)
	versions := countRows(t, st, `SELECT count(*) FROM subscription_versions`)

	var fresh []billing.Event
	for i := range f.cus {
		for _, at := range []time.Time{month(2025, time.December), time.Now().Add(time.Hour)} {
			fresh = append(fresh, f.customerEvent(i, at), f.subscriptionEvent(i, at, billing.StatusActive, 9900),
				f.subscriptionEvent(i, at.Add(time.Second), billing.StatusCanceled, 9900), f.invoiceEvent(i, at), f.checkoutEvent(i, at))
		}
	}
	tests := []struct {
		name string
		evs  []billing.Event
		want billing.Outcome
	}{
		{"SameEventIDs", hist, billing.OutcomeDuplicate},
		{"NewDeliveries", fresh, billing.OutcomeTombstoned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, o := range applyAll(t, st, tt.evs) {
				if o != tt.want {
					t.Errorf("%s %s: outcome %s, want %s", tt.evs[i].Type, tt.evs[i].ID, o, tt.want)
				}
			}
			assertNoneInDump(t, st, f.ids())
			if n := countRows(t, st, `SELECT count(*) FROM subscription_versions`); n != versions {
				t.Errorf("subscription_versions grew from %d to %d", versions, n)
			}
		})
	}
	after := dump(t, st)
	for table, rows := range before {
		if table == "stripe_events" {
			continue // the new event IDs are recorded as tombstoned, nothing else
		}
		if after[table] != rows {
			t.Errorf("table %s changed by replaying erased customers' events", table)
		}
	}
}

// TestEraseConcurrentWithEvent races an erasure against the event path for
// the same customer, in both orders, and at random: whichever wins, the
// final state has no link.
func TestEraseConcurrentWithEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)

	t.Run("EventFirst", func(t *testing.T) {
		f := newFixture("EF", 1)
		applyAll(t, st, f.history())
		// The event path holds its tombstone check (shared lock) and writes
		// a new subscription for the customer, not yet committed.
		tx, err := st.DB().BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck
		newSub := "sub_EFlate"
		if dead, err := postgres.IsTombstoned(ctx, st, tx, f.cus[0], newSub); err != nil || dead {
			t.Fatalf("tombstone check = %v, %v", dead, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status,
			currency, items, version_at, version_rank, version_event)
			SELECT $1, stripe_customer_id, customer_ref, true, 'active', 'eur', '[]', now(), 0, 'evt_EFlate'
			FROM customers WHERE stripe_customer_id = $2`, newSub, f.cus[0]); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: f.account, Actor: "t"})
			done <- err
		}()
		waitForLockWaiter(t, st)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		assertNoneInDump(t, st, append(f.ids(), newSub))
		if !tombstoned(t, st, newSub) {
			t.Error("the subscription written while the erasure waited is not tombstoned")
		}
	})

	t.Run("EraseFirst", func(t *testing.T) {
		f := newFixture("XF", 1)
		applyAll(t, st, f.history())
		ev := f.subscriptionEvent(0, time.Now(), billing.StatusActive, 5000)
		ev.Subscription.ID = "sub_XFlate"
		type result struct {
			o   billing.Outcome
			err error
		}
		done := make(chan result, 1)
		postgres.SetBeforeEraseCommit(st, func() {
			// The erasure holds its locks: the event must wait for it.
			go func() {
				o, err := st.ApplyEvent(ctx, ev)
				done <- result{o, err}
			}()
			waitForLockWaiter(t, st)
		})
		erase(t, st, billing.ErasureRequest{AccountID: f.account})
		postgres.SetBeforeEraseCommit(st, nil)
		r := <-done
		if r.err != nil || r.o != billing.OutcomeTombstoned {
			t.Fatalf("event after erasure: %s, %v; want tombstoned", r.o, r.err)
		}
		assertNoneInDump(t, st, append(f.ids(), "sub_XFlate"))
	})

	t.Run("Random", func(t *testing.T) {
		for i := 0; i < 15; i++ {
			f := newFixture(fmt.Sprintf("RND%d", i), 1)
			applyAll(t, st, f.history())
			evs := []billing.Event{
				f.subscriptionEvent(0, time.Now(), billing.StatusPastDue, 2500),
				f.customerEvent(0, time.Now()),
				f.checkoutEvent(0, time.Now()),
			}
			var wg sync.WaitGroup
			errs := make(chan error, len(evs)+1)
			for _, ev := range evs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := st.ApplyEvent(ctx, ev)
					errs <- err
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: f.account, Actor: "t"})
				errs <- err
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			assertNoneInDump(t, st, f.ids())
		}
	})
}

// waitForLockWaiter returns once some session of the test database waits
// for a lock: the racing transaction has reached the point the test needs.
func waitForLockWaiter(t *testing.T, st *postgres.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := st.DB().Get(&n, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND a.datname = current_database()`); err != nil {
			t.Error(err)
			return
		}
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Error("no session ever waited for a lock")
}
