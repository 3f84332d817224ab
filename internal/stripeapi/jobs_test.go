package stripeapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/prometheus/client_golang/prometheus"
)

// newFake starts the Stripe fake holding the customers the jobs will
// delete, each with its subscription sub_<suffix> (seedErased's).
func newFake(t *testing.T, customers ...string) *stripefake.Server {
	t.Helper()
	f := stripefake.New()
	t.Cleanup(f.Close)
	for _, cus := range customers {
		f.PutCustomer(stripefake.Customer{ID: cus, Livemode: true})
		f.PutSubscription(stripefake.Subscription{ID: "sub_" + strings.TrimPrefix(cus, "cus_"), CustomerID: cus, Status: "active",
			Livemode: true, Currency: "usd", Items: []stripefake.Item{{PriceID: "price_1", UnitAmount: 500, Interval: "month", Quantity: 1}}})
	}
	return f
}

// count is how many times the fake saw call ("METHOD /path").
func count(f *stripefake.Server, call string) int {
	method, path, _ := strings.Cut(call, " ")
	return f.Count(method, path)
}

// jobClient is the jobs' Stripe client for key at base.
func jobClient(t *testing.T, key, base string) *stripeapi.Client {
	t.Helper()
	c, err := stripeapi.New(stripeapi.Config{Key: key, Base: base, NetworkRetries: stripeapi.NoNetworkRetries,
		HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seedErased links customers (each with one active live subscription) to
// account and erases it with req's flags.
func seedErased(t *testing.T, st *postgres.Store, account string, customers []string, req billing.ErasureRequest) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	for _, cus := range customers {
		sub := "sub_" + strings.TrimPrefix(cus, "cus_")
		evs := []billing.Event{
			{ID: "evt_c" + strings.TrimPrefix(cus, "cus_"), Type: "customer.created", Created: at, Livemode: true,
				Customer: &billing.Customer{ID: cus, Livemode: true, AccountHint: account}},
			{ID: "evt_s" + strings.TrimPrefix(cus, "cus_"), Type: "customer.subscription.created", Created: at.Add(time.Second), Livemode: true,
				Subscription: &billing.Subscription{ID: sub, CustomerID: cus, Livemode: true, Status: billing.StatusActive, Currency: "usd",
					Items: []billing.Item{{PriceID: "price_1", Quantity: 1, UnitAmount: 500, Interval: billing.IntervalMonth, IntervalCount: 1}}}},
		}
		for _, ev := range evs {
			if _, err := st.ApplyEvent(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	req.AccountID, req.Actor = account, "test"
	if _, err := st.EraseAccount(ctx, req); err != nil {
		t.Fatal(err)
	}
}

func newWorker(t *testing.T, st *postgres.Store, base string) *stripeapi.JobWorker {
	w := &stripeapi.JobWorker{Store: st, Stripe: jobClient(t, stripefake.Key, base),
		Log: slog.New(slog.DiscardHandler), Interval: 10 * time.Millisecond}
	w.Register(prometheus.NewRegistry())
	return w
}

// drain runs workers until no job is due.
func drain(t *testing.T, workers ...*stripeapi.JobWorker) {
	t.Helper()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := w.RunOnce(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func stripeRows(t *testing.T, st *postgres.Store) []postgres.OutboxRow {
	t.Helper()
	rows, err := st.OutboxRows(context.Background(), billing.OutboxStripe, "")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// assertScrubbed checks no Stripe job row holds an ID any more.
func assertScrubbed(t *testing.T, rows []postgres.OutboxRow, state string) {
	t.Helper()
	for _, r := range rows {
		if r.State != state {
			t.Errorf("job %d is %s, want %s", r.ID, r.State, state)
		}
		all := string(r.Payload) + r.OrderingKey
		if r.LastError != nil {
			all += *r.LastError
		}
		if strings.Contains(all, "cus_") || strings.Contains(all, "sub_") {
			t.Errorf("job %d still names a Stripe ID: %s", r.ID, all)
		}
	}
}

func TestDeleteCustomerExactlyOnce(t *testing.T) {
	t.Parallel()
	// Two replicas: two stores (connection pools) on one database.
	url := pgtest.URL(t)
	replica := func() *postgres.Store {
		st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	st, st2 := replica(), replica()
	customers := []string{"cus_Once1", "cus_Once2", "cus_Once3"}
	fake := newFake(t, customers...)
	seedErased(t, st, "acct_once", customers, billing.ErasureRequest{DeleteCustomer: true})

	rows := stripeRows(t, st)
	if len(rows) != 3 || !strings.Contains(string(rows[0].Payload), "cus_Once") {
		t.Fatalf("before the worker: %d jobs (%v), want 3 holding the customer IDs", len(rows), rows)
	}
	// The two replicas' workers race for the same jobs.
	drain(t, newWorker(t, st, fake.URL), newWorker(t, st2, fake.URL))

	for _, cus := range customers {
		if n := count(fake, "DELETE /v1/customers/"+cus); n != 1 {
			t.Errorf("DELETE %s called %d times, want exactly once", cus, n)
		}
	}
	if n := count(fake, "DELETE /v1/subscriptions/sub_Once1"); n != 0 {
		t.Errorf("subscription cancelled separately %d times; deleting the customer cancels it", n)
	}
	assertScrubbed(t, stripeRows(t, st), "sent")
	// Stripe confirmed: now nothing anywhere names the account or its objects.
	dump := dumpAll(t, st)
	for _, id := range append(customers, "acct_once", "sub_Once1", "sub_Once2", "sub_Once3") {
		if strings.Contains(dump, id) {
			t.Errorf("after the Stripe jobs the database still holds %s", id)
		}
	}
}

// dumpAll returns every row of every table as text.
func dumpAll(t *testing.T, st *postgres.Store) string {
	t.Helper()
	cols, err := st.SchemaColumns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for table := range cols {
		var rows []string
		// Table names come from the catalog, not from input.
		if err := st.DB().Select(&rows, fmt.Sprintf(`SELECT t::text FROM %q t`, table)); err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(rows, "\n"))
	}
	return b.String()
}

func TestStripeJobOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    billing.ErasureRequest
		gone   bool   // the customer was already deleted in Stripe
		refuse bool   // Stripe refuses the request for good
		key    string // API key the worker uses
		call   string // the request the fake must see once
		state  string
		status int
	}{
		{"CancelSubscriptions", billing.ErasureRequest{CancelSubscriptions: true}, false, false, "sk_test_fake",
			"DELETE /v1/subscriptions/sub_Out0", "sent", 200},
		{"AlreadyDeletedIs404AndDone", billing.ErasureRequest{DeleteCustomer: true}, true, false, "sk_test_fake",
			"DELETE /v1/customers/cus_Out1", "sent", 404},
		{"BadKeyRetries", billing.ErasureRequest{DeleteCustomer: true}, false, false, "sk_test_wrong",
			"DELETE /v1/customers/cus_Out2", "pending", 401},
		{"RefusedIsDeadAndKeepsItsID", billing.ErasureRequest{DeleteCustomer: true}, false, true, "sk_test_fake",
			"DELETE /v1/customers/cus_Out3", "dead", 400},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t)
			cus := fmt.Sprintf("cus_Out%d", i)
			fake := newFake(t, cus)
			if tt.gone {
				fake.Forget(cus)
			}
			fake.Refuse(cus, tt.refuse)
			seedErased(t, st, fmt.Sprintf("acct_out%d", i), []string{cus}, tt.req)
			w := newWorker(t, st, fake.URL)
			w.Stripe = jobClient(t, tt.key, fake.URL)
			drain(t, w)
			if n := count(fake, tt.call); n != 1 {
				t.Errorf("%s called %d times, want once", tt.call, n)
			}
			rows := stripeRows(t, st)
			if len(rows) != 1 {
				t.Fatalf("%d jobs, want 1", len(rows))
			}
			if rows[0].LastStatus == nil || *rows[0].LastStatus != tt.status {
				t.Errorf("last status %v, want %d", rows[0].LastStatus, tt.status)
			}
			if tt.state == "pending" || tt.state == "dead" {
				// Unfinished, so the ID that finishes it stays (a dead
				// job until `billingd stripe-jobs retry`).
				if rows[0].State != tt.state || !strings.Contains(string(rows[0].Payload), cus) {
					t.Errorf("job = %+v, want %s and still holding the ID it needs", rows[0], tt.state)
				}
				if rows[0].LastError == nil || strings.Contains(*rows[0].LastError, "cus_") {
					t.Errorf("last_error = %v, want a summary without the ID", rows[0].LastError)
				}
				return
			}
			assertScrubbed(t, rows, tt.state)
		})
	}
}

// TestDeadJobRetried: a job Stripe refused is dead with its ID; once
// re-queued (billingd stripe-jobs retry) and accepted, it is done and its
// ID is gone.
func TestDeadJobRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	fake := newFake(t, "cus_Dead1")
	fake.Refuse("cus_Dead1", true)
	seedErased(t, st, "acct_dead", []string{"cus_Dead1"}, billing.ErasureRequest{DeleteCustomer: true})
	w := newWorker(t, st, fake.URL)
	drain(t, w)
	rows := stripeRows(t, st)
	if len(rows) != 1 || rows[0].State != "dead" || !strings.Contains(string(rows[0].Payload), "cus_Dead1") {
		t.Fatalf("after a refusal: %+v, want one dead job holding its ID", rows)
	}
	// Nothing retries a dead job by itself.
	drain(t, w)
	if n := count(fake, "DELETE /v1/customers/cus_Dead1"); n != 1 {
		t.Fatalf("dead job called Stripe %d times, want once", n)
	}
	fake.Refuse("cus_Dead1", false)
	if n, err := st.OutboxRetryDead(ctx, billing.OutboxStripe, 0); err != nil || n != 1 {
		t.Fatalf("re-queue: %d, %v", n, err)
	}
	drain(t, w)
	if n := count(fake, "DELETE /v1/customers/cus_Dead1"); n != 2 {
		t.Errorf("re-queued job called Stripe %d times in all, want twice", n)
	}
	assertScrubbed(t, stripeRows(t, st), "sent")
}

// TestStripeDownThenBack: with the fake down (503, then unreachable), the
// job stays pending with its IDs and is retried; once Stripe answers it
// completes and the IDs go.
func TestStripeDownThenBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	fake := newFake(t, "cus_Down1")
	seedErased(t, st, "acct_down", []string{"cus_Down1"}, billing.ErasureRequest{DeleteCustomer: true})

	// Nothing listens on a closed listener's address: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	steps := []struct {
		name   string
		base   string
		down   bool
		state  string
		status int // last_status; 0: none
	}{
		{"Down503", fake.URL, true, "pending", 503},
		{"Unreachable", closed, false, "pending", 0},
		{"Back", fake.URL, false, "sent", 200},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			fake.Down(s.down)
			// Time passes: the backoff delay is over.
			if _, err := st.DB().ExecContext(ctx, `UPDATE outbox SET next_attempt_at = now() WHERE kind = 'stripe'`); err != nil {
				t.Fatal(err)
			}
			if n, err := newWorker(t, st, s.base).RunOnce(ctx); err != nil || n != 1 {
				t.Fatalf("RunOnce = %d, %v; want one job claimed", n, err)
			}
			rows := stripeRows(t, st)
			if len(rows) != 1 || rows[0].State != s.state || rows[0].Attempts != i+1 {
				t.Fatalf("job = %+v, want %s after %d attempts", rows, s.state, i+1)
			}
			got := 0
			if rows[0].LastStatus != nil {
				got = *rows[0].LastStatus
			}
			if got != s.status {
				t.Errorf("last_status %d, want %d", got, s.status)
			}
			if s.state == "pending" && !strings.Contains(string(rows[0].Payload), "cus_Down1") {
				t.Errorf("a pending job lost the ID it needs: %s", rows[0].Payload)
			}
			if s.state == "pending" {
				var due bool
				if err := st.DB().Get(&due, `SELECT next_attempt_at <= now() FROM outbox WHERE id = $1`, rows[0].ID); err != nil || due {
					t.Errorf("failed job due again at once (due=%v, err=%v), want a backoff", due, err)
				}
			}
		})
	}
	assertScrubbed(t, stripeRows(t, st), "sent")
	if n := count(fake, "DELETE /v1/customers/cus_Down1"); n != 2 {
		t.Errorf("DELETE reached the fake %d times, want 2 (503, then success)", n)
	}
}

// TestJobsAgainstStripeMock runs the real client's delete and cancel
// against stripe-mock, which validates requests against Stripe's OpenAPI
// spec.
func TestJobsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripefake.StartStripeMock(t)

	st := pgtest.Open(t)
	seedErased(t, st, "acct_mock", []string{"cus_Mock1"}, billing.ErasureRequest{DeleteCustomer: true})
	seedErased(t, st, "acct_mock2", []string{"cus_Mock2"}, billing.ErasureRequest{CancelSubscriptions: true})
	w := newWorker(t, st, base)
	w.Stripe = jobClient(t, "sk_test_123", base)
	drain(t, w)
	rows := stripeRows(t, st)
	if len(rows) != 2 {
		t.Fatalf("%d jobs, want 2", len(rows))
	}
	for _, r := range rows {
		if r.LastStatus == nil || *r.LastStatus != 200 {
			t.Errorf("job %s: last status %v, want 200 from stripe-mock", r.Action, r.LastStatus)
		}
	}
	assertScrubbed(t, rows, "sent")
}
