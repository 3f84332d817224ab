package appwebhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/appwebhook"
	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/client"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

const secret = "app-webhook-secret-for-tests-0123456789"

var producer = postgres.ChangeProducer{
	Render:   func(e billing.Entitlement) []byte { return api.RenderEntitlement(e).Body },
	Grace:    72 * time.Hour,
	Outbound: true,
}

// received is one POST the app got, verified.
type received struct {
	ev   client.WebhookEvent
	body []byte
}

// app is the receiving endpoint: respond decides each answer (n counts
// requests from 1); every request whose signature verifies is recorded,
// whatever the answer, as an app that processed it before failing would.
type app struct {
	t       *testing.T
	mu      sync.Mutex
	n       int
	got     []received
	respond func(n int, w http.ResponseWriter, r *http.Request) bool // false: answer 200
	srv     *httptest.Server
}

func newApp(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request) bool) *app {
	a := &app{t: t, respond: respond}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ev, err := client.VerifyWebhook(body, r.Header.Get(appwebhook.SignatureHeader), secret, 0)
	if err != nil {
		a.t.Errorf("webhook does not verify: %v", err)
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.n++
	n := a.n
	a.got = append(a.got, received{ev: *ev, body: body})
	a.mu.Unlock()
	if a.respond != nil && a.respond(n, w, r) {
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (a *app) deliveries() []received {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]received(nil), a.got...)
}

// changeEvent moves account's one subscription to status at minute k.
func changeEvent(account string, k int, status billing.Status) billing.Event {
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 1, 0)
	return billing.Event{ID: fmt.Sprintf("evt_%s_%d", account, k), Type: "customer.subscription.updated",
		Created: time.Now().Add(-time.Hour).Truncate(time.Second).Add(time.Duration(k) * time.Minute), Livemode: true,
		Subscription: &billing.Subscription{ID: "sub_" + strings.ReplaceAll(account, "_", ""), CustomerID: "cus_" + strings.ReplaceAll(account, "_", ""), Livemode: true, Status: status,
			Currency: "usd", AccountHint: account, CurrentPeriodStart: &start, CurrentPeriodEnd: &end,
			Items: []billing.Item{{PriceID: "price_pro", ProductID: "prod_pro", Quantity: 1, UnitAmount: 900,
				Interval: billing.IntervalMonth, IntervalCount: 1, UsageType: "licensed", BillingScheme: "per_unit"}}}}
}

var statuses = []billing.Status{billing.StatusTrialing, billing.StatusActive, billing.StatusPastDue}

// seed applies three changes to each of accounts accounts, each followed by
// a producer pass, and returns the feed.
func seed(t *testing.T, st *postgres.Store, accounts int) []billing.Change {
	t.Helper()
	ctx := context.Background()
	for k, s := range statuses {
		for i := range accounts {
			if _, err := st.ApplyEvent(ctx, changeEvent(fmt.Sprintf("acct_w%d", i), k, s)); err != nil {
				t.Fatal(err)
			}
		}
		for {
			res, err := st.ProduceChanges(ctx, producer)
			if err != nil {
				t.Fatal(err)
			}
			if !res.More {
				break
			}
		}
	}
	feed, err := st.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed) != 3*accounts {
		t.Fatalf("%d feed entries, want %d", len(feed), 3*accounts)
	}
	return feed
}

func worker(st *postgres.Store, url string) *appwebhook.Worker {
	return &appwebhook.Worker{Queue: st, URL: url, Secret: []byte(secret), Timeout: 2 * time.Second,
		Backoff: appwebhook.Backoff{First: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Batch:   4, Poll: 10 * time.Millisecond, Lease: 5 * time.Second, Log: slog.New(slog.DiscardHandler)}
}

// run runs workers until every feed entry was answered 2xx (the outbox is
// empty) or a minute passed (a generous bound, not a timing assertion).
func run(t *testing.T, st *postgres.Store, ws ...*appwebhook.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	defer func() { cancel(); wg.Wait() }()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		s, err := st.OutboxStats(context.Background(), billing.OutboxAppWebhook)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pending == 0 && s.Dead == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered after a minute: %+v", s)
		}
	}
}

// checkDelivered: every feed entry reached the app with the documented
// payload, and per account the first receipts come in feed order.
func checkDelivered(t *testing.T, feed []billing.Change, got []received) {
	t.Helper()
	want := map[string]billing.Change{}
	for _, c := range feed {
		want[c.WebhookID()] = c
	}
	first := map[string]bool{}
	lastCursor := map[string]int64{}
	for _, r := range got {
		c, ok := want[r.ev.ID]
		if !ok {
			t.Errorf("unknown webhook %s", r.ev.ID)
			continue
		}
		wantBody := fmt.Sprintf(`{"id":%q,"type":"entitlement.changed","account_id":%q,"livemode":true,"entitlement":%s,"cursor":%q}`,
			c.WebhookID(), c.AccountID, c.Entitlement, c.Cursor())
		if string(r.body) != wantBody {
			t.Errorf("body\n%s\nwant\n%s", r.body, wantBody)
		}
		if first[r.ev.ID] {
			continue // a redelivery (at least once)
		}
		first[r.ev.ID] = true
		cur, _ := strconv.ParseInt(r.ev.Cursor, 10, 64)
		if cur <= lastCursor[r.ev.AccountID] {
			t.Errorf("%s: cursor %d arrived after %d", r.ev.AccountID, cur, lastCursor[r.ev.AccountID])
		}
		lastCursor[r.ev.AccountID] = cur
	}
	for id := range want {
		if !first[id] {
			t.Errorf("%s never delivered", id)
		}
	}
}

// Each change reaches the app, in order per account, whatever the endpoint
// does for a while: refuse connections, answer too slowly, 500 or 410.
func TestDeliveryThroughFailures(t *testing.T) {
	t.Parallel()
	const failures = 8
	tests := []struct {
		name    string
		respond func(n int, w http.ResponseWriter, r *http.Request) bool
		timeout time.Duration
	}{
		{"OK", nil, 0},
		{"Down", func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n > failures {
				return false
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // no answer at all: a crashed or unreachable app
			}
			return true
		}, 0},
		{"Slow", func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n <= failures {
				time.Sleep(400 * time.Millisecond) // past the worker's timeout
			}
			return false
		}, 100 * time.Millisecond},
		{"500", func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n > failures {
				return false
			}
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}, 0},
		{"410", func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n > failures {
				return false
			}
			w.WriteHeader(http.StatusGone)
			return true
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t)
			feed := seed(t, st, 4)
			a := newApp(t, tt.respond)
			w := worker(st, a.srv.URL)
			if tt.timeout > 0 {
				w.Timeout = tt.timeout
			}
			run(t, st, w)
			got := a.deliveries()
			checkDelivered(t, feed, got)
			if tt.respond != nil && len(got) <= len(feed) {
				t.Errorf("%d requests for %d entries: the failures were not retried", len(got), len(feed))
			}
		})
	}
}

// A replica killed while its POSTs are in flight leaves its claims leased,
// unacknowledged; another replica's worker sends them once the lease ends,
// and every change still arrives, in order per account.
func TestDeliveryReplicaKilledMidDelivery(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	stores := make([]*postgres.Store, 2)
	for i := range stores {
		st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores[i] = st
	}
	feed := seed(t, stores[0], 3)
	inFlight := make(chan struct{}, 16)
	block := make(chan struct{})
	a := newApp(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("replica") == "doomed" {
			inFlight <- struct{}{}
			<-block // the replica dies before an answer comes
			return false
		}
		return false
	})
	t.Cleanup(func() { close(block) })
	doomed := worker(stores[0], a.srv.URL+"?replica=doomed")
	doomed.Lease = time.Second
	dctx, kill := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); _, _ = doomed.RunOnce(dctx) }()
	<-inFlight
	kill()
	<-stopped
	if s, _ := stores[0].OutboxStats(context.Background(), billing.OutboxAppWebhook); s.Pending != int64(len(feed)) {
		t.Fatalf("after the kill %d rows pending, want all %d", s.Pending, len(feed))
	}
	run(t, stores[1], worker(stores[1], a.srv.URL+"?replica=survivor"))
	checkDelivered(t, feed, a.deliveries())
}

// After MaxAge of failures a webhook is dead-lettered: it no longer holds
// up its account's later ones, shows in the queue's stats, and a retry
// re-queues it.
func TestDeliveryDeadLetter(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	if _, err := st.ApplyEvent(ctx, changeEvent("acct_dead", 0, billing.StatusActive)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ProduceChanges(ctx, producer); err != nil {
		t.Fatal(err)
	}
	var refuse sync.Mutex
	refusing := true
	a := newApp(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		refuse.Lock()
		defer refuse.Unlock()
		if refusing {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	w := worker(st, a.srv.URL)
	w.MaxAge = time.Nanosecond // every failure is past the age
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := st.OutboxStats(ctx, billing.OutboxAppWebhook)
	if err != nil || s.Dead != 1 || s.Pending != 0 {
		t.Fatalf("stats %+v, %v; want one dead", s, err)
	}
	dead, err := st.OutboxRows(ctx, billing.OutboxAppWebhook, "dead")
	if err != nil || len(dead) != 1 || dead[0].LastStatus == nil || *dead[0].LastStatus != 503 {
		t.Fatalf("dead rows %+v, %v", dead, err)
	}
	// A later change of the account is not held up by the dead one.
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	if _, err := st.ApplyEvent(ctx, changeEvent("acct_dead", 1, billing.StatusCanceled)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ProduceChanges(ctx, producer); err != nil {
		t.Fatal(err)
	}
	if n, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("claimed %d, %v; want the later change", n, err)
	}
	if n, err := st.AppWebhookRetryDead(ctx, 0); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	// The retry opens a new window: one more failure retries, not kills.
	w.MaxAge = time.Hour
	refuse.Lock()
	refusing = true
	refuse.Unlock()
	if n, err := w.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("claimed %d, %v; want the re-queued one", n, err)
	}
	if s, _ := st.OutboxStats(ctx, billing.OutboxAppWebhook); s.Pending != 1 || s.Dead != 0 {
		t.Fatalf("after a failure past the retry: %+v, want it pending", s)
	}
	refuse.Lock()
	refusing = false
	refuse.Unlock()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if n, err := w.RunOnce(ctx); err != nil || n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retried webhook never became due again")
		}
	}
	if s, _ := st.OutboxStats(ctx, billing.OutboxAppWebhook); s.Pending != 0 || s.Dead != 0 {
		t.Errorf("stats after retry %+v, want empty", s)
	}
	var cursors []string
	for _, r := range a.deliveries() {
		var ev client.WebhookEvent
		_ = json.Unmarshal(r.body, &ev)
		cursors = append(cursors, ev.Cursor)
	}
	if len(cursors) != 4 || cursors[0] != cursors[2] || cursors[2] != cursors[3] || cursors[1] == cursors[0] {
		t.Errorf("requests %v, want the refused one, the later one, the retried one twice", cursors)
	}
}
