package profitwell_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/profitwell"
	"github.com/billingd/billingd/profitwell/profitwelltest"
)

var aliasKey = []byte("test-alias-key-0123456789")

// bundle is one test's database, fake ProfitWell and worker settings.
type bundle struct {
	st   *postgres.Store
	fake *profitwelltest.Fake
}

func setup(t *testing.T) bundle {
	t.Helper()
	b := bundle{st: pgtest.Open(t), fake: profitwelltest.New(t)}
	// Personal strings a fixture might hold: none may reach ProfitWell.
	b.fake.Forbid("Jane Doe", "jane.doe", "acct_", "account-42")
	b.fake.RateLimit(10000, time.Second) // the workers below use a fast limiter
	return b
}

// worker returns a worker with test-sized timings.
func (b bundle) worker(t *testing.T, mod ...func(*profitwell.Worker)) *profitwell.Worker {
	w := &profitwell.Worker{
		Queue: b.st,
		Client: profitwell.NewClient(profitwell.ClientOptions{Base: b.fake.URL, Token: profitwelltest.Token,
			Limiter: profitwell.NewLimiter(1000, time.Second)}),
		AliasKey:    aliasKey,
		MaxAttempts: 10,
		Backoff:     profitwell.Backoff{First: 5 * time.Millisecond, Max: 40 * time.Millisecond},
		Batch:       5,
		Timeout:     2 * time.Second,
		Lease:       5 * time.Second,
		Poll:        10 * time.Millisecond,
		Log:         slog.New(slog.DiscardHandler),
	}
	for _, m := range mod {
		m(w)
	}
	return w
}

func newRef() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

type change struct {
	action billing.SyncKind
	p      billing.SyncPayload
}

func create(c, s string, value int64, status string) change {
	return change{billing.SyncCreate, billing.SyncPayload{CustomerRef: c, SubscriptionRef: s, PlanID: "price_basic", PlanInterval: "month",
		PlanCurrency: "eur", Status: status, Value: value, EffectiveDate: 1767225600}}
}

func update(c, s string, value int64) change {
	return change{billing.SyncUpdate, billing.SyncPayload{CustomerRef: c, SubscriptionRef: s, PlanID: "price_pro", PlanInterval: "year",
		PlanCurrency: "eur", Status: "active", Value: value, EffectiveDate: 1769904000}}
}

func churn(c, s string, t billing.ChurnType) change {
	return change{billing.SyncChurn, billing.SyncPayload{CustomerRef: c, SubscriptionRef: s, EffectiveDate: 1772323200, ChurnType: t}}
}

func unchurn(c, s string) change {
	return change{billing.SyncUnchurn, billing.SyncPayload{CustomerRef: c, SubscriptionRef: s}}
}

func (b bundle) enqueue(t *testing.T, changes ...change) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.st.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, c := range changes {
		if _, err := postgres.EnqueueProfitWell(ctx, tx, c.action, c.p); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// drain runs w until no row is pending (a guard stops a hung test; it
// asserts nothing about speed).
func (b bundle) drain(t *testing.T, w *profitwell.Worker) {
	t.Helper()
	ctx := context.Background()
	for start := time.Now(); time.Since(start) < 30*time.Second; {
		if _, err := w.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := b.st.OutboxStats(ctx, billing.OutboxProfitWell)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("outbox did not drain")
}

func (b bundle) rows(t *testing.T, state string) []postgres.OutboxRow {
	t.Helper()
	rows, err := b.st.OutboxRows(context.Background(), billing.OutboxProfitWell, state)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func sub(t *testing.T, f *profitwelltest.Fake, subRef string) profitwelltest.Sub {
	t.Helper()
	s, ok := f.Subscriptions()[profitwell.Alias(aliasKey, subRef)]
	if !ok {
		t.Fatalf("fake has no subscription for %s", subRef)
	}
	return s
}

func TestWorkerDeliversLifecycleInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, s := newRef(), newRef()
	c2, s2 := newRef(), newRef()
	b.enqueue(t, create(c, s, 1000, "trialing"), update(c, s, 12000), churn(c, s, billing.ChurnDelinquent), unchurn(c, s))
	b.enqueue(t, create(c2, s2, 500, "active"), churn(c2, s2, billing.ChurnVoluntary))
	b.drain(t, b.worker(t))

	got := sub(t, b.fake, s)
	if strings.Join(got.Ops, ",") != "create,update,churn,unchurn" {
		t.Errorf("ops = %v, want create,update,churn,unchurn in order", got.Ops)
	}
	if got.Value != 12000 || got.PlanInterval != "year" || got.PlanID != "price_pro" || got.Status != "active" || got.Churned {
		t.Errorf("final subscription = %+v", got)
	}
	if got.UserAlias != profitwell.Alias(aliasKey, c) || len(got.SubscriptionAlias) != 36 {
		t.Errorf("aliases = %q / %q", got.UserAlias, got.SubscriptionAlias)
	}
	if g2 := sub(t, b.fake, s2); !g2.Churned || g2.ChurnType != "voluntary" || g2.ChurnDate != 1772323200 {
		t.Errorf("churned subscription = %+v", g2)
	}
	if n := len(b.rows(t, "sent")); n != 6 {
		t.Errorf("sent rows = %d, want 6", n)
	}
}

func TestWorkerFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		faults  []profitwelltest.Fault
		mod     func(*profitwell.Worker)
		wantOps string
	}{
		{"500sRetried", []profitwelltest.Fault{{Status: 500}, {Status: 502}, {Status: 503}}, nil, "create,update"},
		{"429BurstRetriedWithoutSpendingAttempts", []profitwelltest.Fault{{Status: 429, RetryAfter: 1}, {Status: 429}, {Status: 429}},
			func(w *profitwell.Worker) { w.MaxAttempts = 2 }, "create,update"},
		// The fake applies the create but answers too late: the resend meets
		// "already exists" and becomes an update, so nothing is lost or doubled.
		{"TimeoutAfterApplyResentIdempotently", []profitwelltest.Fault{{Delay: time.Second}},
			func(w *profitwell.Worker) { w.Timeout = 200 * time.Millisecond }, "create,update,update"},
		{"LostResponseOn500", []profitwelltest.Fault{{Status: 500, After: true}}, nil, "create,update,update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			c, s := newRef(), newRef()
			b.enqueue(t, create(c, s, 1000, "active"), update(c, s, 2000))
			b.fake.FailNext(tt.faults...)
			w := b.worker(t)
			if tt.mod != nil {
				tt.mod(w)
			}
			b.drain(t, w)
			got := sub(t, b.fake, s)
			if strings.Join(got.Ops, ",") != tt.wantOps || got.Value != 2000 {
				t.Errorf("ops = %v value = %d, want %s and 2000", got.Ops, got.Value, tt.wantOps)
			}
			if dead := b.rows(t, "dead"); len(dead) != 0 {
				t.Errorf("dead rows: %+v", dead)
			}
		})
	}
}

func TestWorkerHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, s := newRef(), newRef()
	b.enqueue(t, create(c, s, 1000, "active"))
	b.fake.FailNext(profitwelltest.Fault{Status: 429, RetryAfter: 30})
	w := b.worker(t)
	ctx := context.Background()
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Retry-After (30 s) outweighs the 5 ms backoff: the row is not due yet.
	if n, err := w.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("second claim took %d rows (err %v), want 0 while Retry-After runs", n, err)
	}
	rows := b.rows(t, "pending")
	if len(rows) != 1 || rows[0].Attempts != 0 || rows[0].LastStatus == nil || *rows[0].LastStatus != 429 {
		t.Fatalf("row after 429 = %+v, want pending, attempt given back, status 429", rows)
	}
}

func TestWorkerDeadLetters(t *testing.T) {
	t.Parallel()
	t.Run("4xxDeadAtOnceWithoutPersonalData", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c, s := newRef(), newRef()
		c2, s2 := newRef(), newRef()
		b.enqueue(t, create(c, s, 1000, "active"))
		b.enqueue(t, create(c2, s2, 700, "active"))
		b.fake.FailNext(profitwelltest.Fault{Status: 400, Body: `{"email":["jane.doe@example.com is not valid"]}`})
		b.drain(t, b.worker(t))
		dead := b.rows(t, "dead")
		if len(dead) != 1 || dead[0].Attempts != 1 || dead[0].LastStatus == nil || *dead[0].LastStatus != 400 {
			t.Fatalf("dead rows = %+v, want one at attempt 1 with status 400", dead)
		}
		if dead[0].LastError == nil || strings.Contains(*dead[0].LastError, "@") || !strings.Contains(*dead[0].LastError, "http 400") {
			t.Errorf("last_error = %v, want an http 400 summary without the address", dead[0].LastError)
		}
		if len(b.fake.Subscriptions()) != 1 {
			t.Errorf("other customers' rows must still go out")
		}
	})
	t.Run("MaxAttemptsThenDeadThenRetry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c, s := newRef(), newRef()
		b.enqueue(t, create(c, s, 1000, "active"), update(c, s, 3000))
		var down atomic.Bool
		down.Store(true)
		b.fake.Hook(func(r *http.Request) *profitwelltest.Fault {
			if down.Load() {
				return &profitwelltest.Fault{Status: 500}
			}
			return nil
		})
		w := b.worker(t, func(w *profitwell.Worker) { w.MaxAttempts = 3 })
		b.drain(t, w)
		// The create died after 3 attempts; the update after it then met a
		// subscription ProfitWell does not have... and the 500s: also dead.
		dead := b.rows(t, "dead")
		if len(dead) != 2 || dead[0].Attempts != 3 || !strings.Contains(*dead[0].LastError, "gave up after 3 attempts") {
			t.Fatalf("dead rows = %+v", dead)
		}
		down.Store(false)
		n, err := b.st.OutboxRetryDead(context.Background(), billing.OutboxProfitWell, 0)
		if err != nil || n != 2 {
			t.Fatalf("retry dead: %d, %v", n, err)
		}
		b.drain(t, w)
		if got := sub(t, b.fake, s); strings.Join(got.Ops, ",") != "create,update" || got.Value != 3000 {
			t.Errorf("after retry: %+v", got)
		}
	})
}

// killableQueue stands in for a worker process that dies: once killed,
// nothing it does reaches the database any more.
type killableQueue struct {
	profitwell.Queue
	killed atomic.Bool
}

var errKilled = fmt.Errorf("worker killed")

func (q *killableQueue) OutboxClaim(ctx context.Context, kind string, limit int, lease time.Duration) ([]billing.OutboxJob, error) {
	if q.killed.Load() {
		return nil, errKilled
	}
	return q.Queue.OutboxClaim(ctx, kind, limit, lease)
}

func (q *killableQueue) OutboxMarkSent(ctx context.Context, id int64, attempt, status int) error {
	if q.killed.Load() {
		return errKilled
	}
	return q.Queue.OutboxMarkSent(ctx, id, attempt, status)
}

func (q *killableQueue) OutboxRetryLater(ctx context.Context, id int64, attempt int, d time.Duration, status int, s string, counted bool) error {
	if q.killed.Load() {
		return errKilled
	}
	return q.Queue.OutboxRetryLater(ctx, id, attempt, d, status, s, counted)
}

func (q *killableQueue) OutboxMarkDead(ctx context.Context, id int64, attempt, status int, s string) error {
	if q.killed.Load() {
		return errKilled
	}
	return q.Queue.OutboxMarkDead(ctx, id, attempt, status, s)
}

func TestWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type subject struct{ c, s string }
	var subs []subject
	for i := 0; i < 4; i++ {
		x := subject{newRef(), newRef()}
		subs = append(subs, x)
		b.enqueue(t, create(x.c, x.s, 1000, "active"), churn(x.c, x.s, billing.ChurnVoluntary), unchurn(x.c, x.s), update(x.c, x.s, 5000))
	}
	q := &killableQueue{Queue: b.st}
	var served atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	b.fake.Hook(func(r *http.Request) *profitwelltest.Fault {
		// Die after the 6th request reached ProfitWell, before any outcome
		// of it is recorded.
		if served.Add(1) == 6 {
			q.killed.Store(true)
			cancel()
		}
		return nil
	})
	dying := b.worker(t, func(w *profitwell.Worker) {
		w.Queue = q
		w.Lease = 300 * time.Millisecond
		w.Timeout = 100 * time.Millisecond
	})
	_ = dying.Run(ctx)
	if !q.killed.Load() {
		t.Fatal("the worker was never killed")
	}
	b.fake.Hook(nil)
	b.drain(t, b.worker(t))
	for _, x := range subs {
		got := sub(t, b.fake, x.s)
		if got.Value != 5000 || got.Churned || got.PlanID != "price_pro" {
			t.Errorf("after kill and recovery: %+v", got)
		}
		// Each change applied once; a resend after the kill may repeat one
		// idempotently (create→update, or a no-op churn/unchurn).
		if !inOrder(got.Ops, []string{"create", "churn", "unchurn", "update"}) {
			t.Errorf("ops = %v, want create, churn, unchurn, update in order", got.Ops)
		}
	}
	if dead := b.rows(t, "dead"); len(dead) != 0 {
		t.Errorf("dead rows: %+v", dead)
	}
}

// inOrder reports whether ops is want in order, where an op may be followed
// by an idempotent repeat (a create by an update).
func inOrder(ops, want []string) bool {
	i := 0
	for _, op := range ops {
		switch {
		case i < len(want) && op == want[i]:
			i++
		case i > 0 && (op == want[i-1] || want[i-1] == "create" && op == "update"):
		default:
			return false
		}
	}
	return i == len(want)
}

func TestTwoWorkersExactlyOnceInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type subject struct{ c, s string }
	var subs []subject
	for i := 0; i < 8; i++ {
		x := subject{newRef(), newRef()}
		subs = append(subs, x)
		b.enqueue(t, create(x.c, x.s, 1000, "trialing"), update(x.c, x.s, int64(2000+i)), churn(x.c, x.s, billing.ChurnDelinquent), unchurn(x.c, x.s))
	}
	var n atomic.Int32
	b.fake.Hook(func(r *http.Request) *profitwelltest.Fault {
		if n.Add(1)%7 == 0 { // refused before processing: safe to resend
			return &profitwelltest.Fault{Status: 503}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		w := b.worker(t)
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
		if len(b.rows(t, "sent")) == len(subs)*4 {
			break
		}
	}
	cancel()
	wg.Wait()
	for i, x := range subs {
		got := sub(t, b.fake, x.s)
		if strings.Join(got.Ops, ",") != "create,update,churn,unchurn" || got.Value != int64(2000+i) {
			t.Errorf("subscription %d: ops %v value %d", i, got.Ops, got.Value)
		}
	}
	if sent := len(b.rows(t, "sent")); sent != len(subs)*4 {
		t.Errorf("sent rows = %d, want %d", sent, len(subs)*4)
	}
}

func TestWorkerIdlePickup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := b.worker(t, func(w *profitwell.Worker) { w.Poll = 0 }) // the default poll
	go func() { defer close(done); _ = w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, s := newRef(), newRef()
	b.enqueue(t, create(c, s, 1000, "active")) // written while the worker idles
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(10 * time.Millisecond) {
		if len(b.fake.Subscriptions()) == 1 {
			return
		}
	}
	t.Fatal("an idle worker never picked up the new row")
}

func TestEraseUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c, s := newRef(), newRef()
	b.enqueue(t, create(c, s, 1000, "active"))
	ctx := context.Background()
	tx, err := b.st.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.EnqueueProfitWellChurn(ctx, tx, c, s, time.Unix(1772323200, 0), billing.ChurnVoluntary); err != nil {
		t.Fatal(err)
	}
	if err := postgres.EnqueueProfitWellEraseUser(ctx, tx, c); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	b.drain(t, b.worker(t))
	if len(b.fake.Subscriptions()) != 0 || !b.fake.Erased(profitwell.Alias(aliasKey, c)) {
		t.Fatalf("user not erased: %+v", b.fake.Subscriptions())
	}
	t.Run("UnknownUserIsDone", func(t *testing.T) {
		tx, _ := b.st.DB().BeginTxx(ctx, nil)
		if err := postgres.EnqueueProfitWellEraseUser(ctx, tx, newRef()); err != nil {
			t.Fatal(err)
		}
		_ = tx.Commit()
		b.drain(t, b.worker(t))
		if dead := b.rows(t, "dead"); len(dead) != 0 {
			t.Errorf("dead rows: %+v", dead)
		}
	})
}

func TestClientContract(t *testing.T) {
	t.Parallel()
	f := profitwelltest.New(t)
	c := profitwell.NewClient(profitwell.ClientOptions{Base: f.URL, Token: profitwelltest.Token})
	ctx := context.Background()
	if err := c.Status(ctx); err != nil {
		t.Fatalf("status: %v", err)
	}
	t.Run("ErrUnauthorizedFinal", func(t *testing.T) {
		bad := profitwell.NewClient(profitwell.ClientOptions{Base: f.URL, Token: "Bearer " + profitwelltest.Token})
		err := bad.Status(ctx)
		var e *profitwell.Error
		if !asError(err, &e) || e.Status != 401 || e.Temporary() {
			t.Fatalf("err = %v, want a final 401", err)
		}
	})
	t.Run("ThrottledWithRetryAfter", func(t *testing.T) {
		f.FailNext(profitwelltest.Fault{Status: 429, RetryAfter: 1})
		err := c.Status(ctx)
		var e *profitwell.Error
		if !asError(err, &e) || !e.Throttled() || !e.Temporary() || e.RetryAfter != time.Second {
			t.Fatalf("err = %v, want throttled with Retry-After 1s", err)
		}
	})
	t.Run("ServerErrorTemporary", func(t *testing.T) {
		f.FailNext(profitwelltest.Fault{Status: 500})
		err := c.Status(ctx)
		var e *profitwell.Error
		if !asError(err, &e) || !e.Temporary() || e.Throttled() {
			t.Fatalf("err = %v, want temporary", err)
		}
	})
	if v := f.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

func asError(err error, e **profitwell.Error) bool {
	if err == nil {
		return false
	}
	x, ok := err.(*profitwell.Error)
	if ok {
		*e = x
	}
	return ok
}

func TestWorkerThrottledBatchKeepsAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue(t, create(newRef(), newRef(), 1000, "active"))
	b.enqueue(t, create(newRef(), newRef(), 2000, "active"))
	// The first send is throttled for 30 s; the second is then held by our
	// own limiter until its send deadline. Neither may spend an attempt.
	b.fake.FailNext(profitwelltest.Fault{Status: 429, RetryAfter: 30})
	w := b.worker(t, func(w *profitwell.Worker) { w.Timeout = 200 * time.Millisecond; w.MaxAttempts = 1 })
	if n, err := w.RunOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v; want 2 rows claimed", n, err)
	}
	rows := b.rows(t, "pending")
	if len(rows) != 2 {
		t.Fatalf("pending rows = %+v, want both still pending", rows)
	}
	for _, r := range rows {
		if r.Attempts != 0 {
			t.Errorf("row %d attempts = %d, want 0 (throttling is not the row's fault)", r.ID, r.Attempts)
		}
	}
	if got := len(b.fake.Requests()); got != 1 {
		t.Errorf("requests sent = %d, want 1 (the second was held back)", got)
	}
}

// TestWorkerSurvivesDatabaseRestart: the worker outlives a PostgreSQL
// outage (claims fail and back off) and delivers what was queued before it.
func TestWorkerSurvivesDatabaseRestart(t *testing.T) {
	t.Parallel()
	srv := pgtest.NewServer(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.CreateDB(t, srv.AdminURL()), slog.New(slog.DiscardHandler), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := bundle{st: st, fake: profitwelltest.New(t)}
	b.fake.RateLimit(10000, time.Second)
	c, s := newRef(), newRef()
	b.enqueue(t, create(c, s, 1000, "active"), update(c, s, 4000))
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = b.worker(t).Run(wctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // let it fail a few claims
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(20 * time.Millisecond) {
		if subs := b.fake.Subscriptions(); len(subs) == 1 && subs[profitwell.Alias(aliasKey, s)].Value == 4000 {
			return
		}
	}
	t.Fatalf("not delivered after the restart: %+v", b.fake.Subscriptions())
}

func TestSharedLimiter(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	const limit, window = 100, time.Second // a 10 ms gap
	t.Run("EveryWaitReservesAFleetSlot", func(t *testing.T) {
		replicas := []*profitwell.Limiter{profitwell.NewSharedLimiter(limit, window, st), profitwell.NewSharedLimiter(limit, window, st)}
		first, _, err := st.ReserveRateSlot(ctx, "profitwell", 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, l := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					if err := l.Wait(ctx); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		// 10 more reservations after first: the next free slot is ≥ 11 gaps on.
		next, _, err := st.ReserveRateSlot(ctx, "profitwell", 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if d := next.Sub(first); d < 110*time.Millisecond {
			t.Fatalf("next slot %v after the first, want ≥ 110ms (every Wait reserved one)", d)
		}
	})
	t.Run("DatabaseAwayFallsBackToLocalSpacing", func(t *testing.T) {
		gone := pgtest.Open(t)
		gone.Close()
		l := profitwell.NewSharedLimiter(limit, window, gone)
		for i := 0; i < 3; i++ {
			if err := l.Wait(ctx); err != nil {
				t.Fatalf("Wait with the database away: %v", err)
			}
		}
	})
}

func TestWorkerRefusedTokenKeepsRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue(t, create(newRef(), newRef(), 1000, "active"))
	w := b.worker(t, func(w *profitwell.Worker) {
		w.Client = profitwell.NewClient(profitwell.ClientOptions{Base: b.fake.URL, Token: "wrong-token", Limiter: profitwell.NewLimiter(1000, time.Second)})
	})
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := b.rows(t, "pending")
	if len(rows) != 1 || rows[0].Attempts != 0 || rows[0].LastStatus == nil || *rows[0].LastStatus != 401 {
		t.Fatalf("rows after a refused token = %+v, want pending with no attempt spent and status 401", rows)
	}
}

func TestWorkerNetworkErrorRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.enqueue(t, create(newRef(), newRef(), 1000, "active"))
	w := b.worker(t, func(w *profitwell.Worker) {
		// Nothing listens on port 1: the connection is refused.
		w.Client = profitwell.NewClient(profitwell.ClientOptions{Base: "http://127.0.0.1:1", Token: profitwelltest.Token, Limiter: profitwell.NewLimiter(1000, time.Second)})
	})
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := b.rows(t, "pending")
	if len(rows) != 1 || rows[0].Attempts != 1 || rows[0].LastStatus != nil || rows[0].LastError == nil ||
		!strings.HasPrefix(*rows[0].LastError, "network error: ") || strings.Contains(*rows[0].LastError, "/v2/") {
		t.Fatalf("row after a refused connection = %+v, want pending on attempt 1 with a network error summary and no URL", rows)
	}
}
