package stripeapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/billingd/billingd/webhooks"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/webhook"
)

const sweepSecret = "whsec_sweep_test"

// sweepWorld is a fake Stripe whose Events API holds a history of events,
// a webhook endpoint on a store that received only some of them, and a
// syncer that sweeps into the same store.
type sweepWorld struct {
	fake    *stripefake.Server
	store   *postgres.Store
	syncer  *stripeapi.Syncer
	handler http.Handler
	events  []sweptEvent
	url     string
}

func openStore(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type sweptEvent struct {
	id  string
	raw []byte
}

func newSweepWorld(t *testing.T) *sweepWorld {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	url := pgtest.URL(t)
	w := &sweepWorld{fake: fake, store: openStore(t, url), url: url}
	client, err := stripeapi.New(stripeapi.Config{Key: stripefake.Key, Base: fake.URL, PageSize: 3, RateLimitBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.syncer = &stripeapi.Syncer{Client: client, Store: w.store}
	w.handler = webhookHandler(t, w.store)
	return w
}

func webhookHandler(t *testing.T, st billing.EventApplier) http.Handler {
	t.Helper()
	h, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{sweepSecret}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// deliver posts one event to a webhook endpoint, signed, and wants 200.
func deliver(t *testing.T, h http.Handler, raw []byte) {
	t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: raw, Secret: sweepSecret, Timestamp: time.Now()})
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sp.Header)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("webhook delivery: %d %s", rec.Code, rec.Body)
	}
}

// history renders the life of n customers and their subscriptions as
// events, one minute apart from start: customer created, subscription
// created (trialing), updated (active, next period), and for every third
// one deleted. Odd subscriptions are in the 2025-03-31 (basil) shape,
// even ones in the 2023-10-16 shape, in the event envelope and the object.
func history(t *testing.T, prefix string, n int, start time.Time) []sweptEvent {
	t.Helper()
	var out []sweptEvent
	at := start
	add := func(typ, version string, obj map[string]any) {
		id := fmt.Sprintf("evt_%s%03d", prefix, len(out))
		raw, err := stripefake.EventVersion(id, typ, version, at, false, obj)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sweptEvent{id: id, raw: raw})
		at = at.Add(time.Minute)
	}
	for i := range n {
		version := stripefake.Version20231016
		if i%2 == 1 {
			version = stripefake.Version20250331
		}
		cus := stripefake.Customer{ID: fmt.Sprintf("cus_%s%02d", prefix, i), Created: at, AccountID: fmt.Sprintf("acct_%s%02d", prefix, i)}
		add("customer.created", version, cus.JSON())
		trialEnd := at.Add(14 * 24 * time.Hour)
		created := at
		sub := stripefake.Subscription{
			ID: fmt.Sprintf("sub_%s%02d", prefix, i), CustomerID: cus.ID, Status: "trialing", Created: created, Currency: "eur",
			PeriodStart: created, PeriodEnd: trialEnd, TrialStart: &created, TrialEnd: &trialEnd, APIVersion: version,
			Items: []stripefake.Item{{PriceID: "price_pro", ProductID: "prod_app", UnitAmount: 2000 + int64(i), Interval: "month", Quantity: 1}},
		}
		add("customer.subscription.created", version, sub.JSON(nil))
		sub.Status, sub.PeriodStart, sub.PeriodEnd = "active", trialEnd, trialEnd.AddDate(0, 1, 0)
		add("customer.subscription.updated", version, sub.JSON(nil))
		if i%3 == 2 {
			ended := at
			sub.Status, sub.CanceledAt, sub.EndedAt = "canceled", &ended, &ended
			add("customer.subscription.deleted", version, sub.JSON(nil))
		}
	}
	return out
}

// publish puts events in the Events API, and delivers to the webhook
// endpoint those for which delivered says so.
func (w *sweepWorld) publish(t *testing.T, events []sweptEvent, delivered func(i int) bool) (missed int) {
	t.Helper()
	for i, e := range events {
		if err := w.fake.PutEvent(e.raw); err != nil {
			t.Fatal(err)
		}
		if delivered(i) {
			deliver(t, w.handler, e.raw)
		} else {
			missed++
		}
		w.events = append(w.events, e)
	}
	return missed
}

// reference applies every event through a webhook endpoint of a fresh
// database, in order: the state a sweep must reach.
func reference(t *testing.T, events []sweptEvent) *postgres.Store {
	t.Helper()
	st := pgtest.Open(t)
	h := webhookHandler(t, st)
	for _, e := range events {
		deliver(t, h, e.raw)
	}
	return st
}

// sameState compares every subscription and customer of the events in two
// stores, and the recorded event IDs.
func sameState(t *testing.T, got, want *postgres.Store, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	var subIDs, cusIDs []string
	for i := range n {
		subIDs = append(subIDs, fmt.Sprintf("sub_%s%02d", prefix, i))
		cusIDs = append(cusIDs, fmt.Sprintf("cus_%s%02d", prefix, i))
	}
	gs, err := got.SubscriptionStates(ctx, subIDs)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := want.SubscriptionStates(ctx, subIDs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != n || len(gs) != n {
		t.Fatalf("subscriptions: swept store has %d, reference %d, want %d", len(gs), len(ws), n)
	}
	for id, w := range ws {
		if d := billing.SubscriptionDiff(gs[id], w); d != nil {
			t.Errorf("subscription %s differs from full delivery: %v", id, d)
		}
	}
	gc, err := got.CustomerStates(ctx, cusIDs)
	if err != nil {
		t.Fatal(err)
	}
	wc, err := want.CustomerStates(ctx, cusIDs)
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range wc {
		if g := gc[id]; g.Linked != w.Linked || g.Deleted != w.Deleted {
			t.Errorf("customer %s: swept %+v, full delivery %+v", id, g, w)
		}
	}
	q := `SELECT count(*) FROM stripe_events WHERE event_id LIKE $1`
	var g, wn int
	if err := got.DB().Get(&g, q, "evt_"+prefix+"%"); err != nil {
		t.Fatal(err)
	}
	if err := want.DB().Get(&wn, q, "evt_"+prefix+"%"); err != nil {
		t.Fatal(err)
	}
	if g != wn {
		t.Errorf("stripe_events: swept store recorded %d, full delivery %d", g, wn)
	}
}

func TestSweepRecoversMissedEvents(t *testing.T) {
	w := newSweepWorld(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := stripeapi.NewSweepMetrics(reg)
	const n = 6
	events := history(t, "A", n, time.Now().UTC().Add(-48*time.Hour).Truncate(time.Second))
	// Every third event never reached the endpoint, interleaved with the
	// ones that did, in both API shapes.
	missed := w.publish(t, events, func(i int) bool { return i%3 != 1 })
	if missed == 0 || missed == len(events) {
		t.Fatalf("test needs both delivered and missed events (%d of %d missed)", missed, len(events))
	}
	sum, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{Metrics: m})
	if err != nil {
		t.Fatalf("sweep: %v (%+v)", err, sum)
	}
	if sum.Listed != len(events) || sum.Recovered != missed || sum.Delivered != len(events)-missed {
		t.Fatalf("sweep: listed %d recovered %d delivered %d; want %d, %d, %d", sum.Listed, sum.Recovered, sum.Delivered,
			len(events), missed, len(events)-missed)
	}
	if got := counter(t, reg, "billingd_sweep_recovered_total", ""); got != float64(missed) {
		t.Errorf("billingd_sweep_recovered_total = %v, want %d", got, missed)
	}
	sameState(t, w.store, reference(t, events), "A", n)

	t.Run("SecondSweepFindsNothing", func(t *testing.T) {
		w.fake.ResetRequests()
		sum, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{Metrics: m})
		if err != nil || sum.Listed != 0 || sum.Recovered != 0 {
			t.Fatalf("second sweep: %+v, %v; want nothing listed", sum, err)
		}
		// From the cursor: one request per type group, none re-reading history.
		if got, groups := w.fake.Count(http.MethodGet, "/v1/events"), len(billing.SweepGroups(webhooks.HandledTypes())); got != groups {
			t.Errorf("second sweep made %d Events API requests, want %d (one per type group)", got, groups)
		}
		// Only the handled types are asked for, by types[].
		for _, r := range w.fake.Requests() {
			var types []string
			for k, v := range r.Query {
				if strings.HasPrefix(k, "types[") {
					types = append(types, v...)
				}
			}
			slices.Sort(types)
			groups := billing.SweepGroups(webhooks.HandledTypes())
			if !slices.ContainsFunc(groups, func(g []string) bool { return slices.Equal(types, g) }) {
				t.Errorf("Events API asked for types %v, want one of the type groups %v", types, groups)
			}
		}
	})
	t.Run("OnlyNewMissedEvents", func(t *testing.T) {
		more := history(t, "B", 4, time.Now().UTC().Add(-time.Hour).Truncate(time.Second))
		missed := w.publish(t, more, func(i int) bool { return i%2 == 0 })
		sum, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{Metrics: m})
		if err != nil || sum.Listed != len(more) || sum.Recovered != missed {
			t.Fatalf("sweep after new events: %+v, %v; want %d listed, %d recovered", sum, err, len(more), missed)
		}
		sameState(t, w.store, reference(t, more), "B", 4)
	})
	t.Run("SinceRereadsAsDuplicates", func(t *testing.T) {
		sum, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{Since: 72 * time.Hour, Metrics: m})
		if err != nil || sum.Listed != len(w.events) || sum.Recovered != 0 || sum.Delivered != len(w.events) {
			t.Fatalf("--since sweep: %+v, %v; want all %d listed as delivered", sum, err, len(w.events))
		}
	})
	t.Run("NoPersonalData", func(t *testing.T) {
		dump := (&bundle{store: w.store}).dump(t)
		for _, p := range stripefake.PersonalStrings() {
			if strings.Contains(dump, p) {
				t.Errorf("the database holds personal data %q after a sweep", p)
			}
		}
	})
}

// A sweep and webhook deliveries of the same events at the same time, on
// two stores of one database (two replicas): each event is applied once.
func TestSweepRacesWebhooks(t *testing.T) {
	w := newSweepWorld(t)
	ctx := context.Background()
	events := history(t, "R", 8, time.Now().UTC().Add(-24*time.Hour).Truncate(time.Second))
	w.publish(t, events, func(int) bool { return false })
	h := webhookHandler(t, openStore(t, w.url))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, e := range events {
			deliver(t, h, e.raw)
		}
	}()
	sum, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Recovered+sum.Delivered != len(events) {
		t.Fatalf("recovered %d + delivered %d != %d events", sum.Recovered, sum.Delivered, len(events))
	}
	var recorded int
	if err := w.store.DB().Get(&recorded, `SELECT count(*) FROM stripe_events WHERE event_id LIKE 'evt_R%'`); err != nil {
		t.Fatal(err)
	}
	if recorded != len(events) {
		t.Fatalf("stripe_events holds %d of the %d events", recorded, len(events))
	}
	sameState(t, w.store, reference(t, events), "R", 8)
}

func TestSweepLockAndCursor(t *testing.T) {
	w := newSweepWorld(t)
	ctx := context.Background()
	events := history(t, "L", 3, time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second))
	w.publish(t, events, func(int) bool { return false })

	t.Run("ErrBusy", func(t *testing.T) {
		release, ok, err := w.store.TryStripeSyncLock(ctx)
		if err != nil || !ok {
			t.Fatal(err)
		}
		defer release()
		if _, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{}); !errors.Is(err, stripeapi.ErrBusy) {
			t.Fatalf("sweep while another run holds the lock: %v, want ErrBusy", err)
		}
	})
	t.Run("ResumesAfterFailure", func(t *testing.T) {
		// The fake fails after the first page's worth of requests: the
		// run stops, the cursor keeps what was applied, and the next run
		// applies the rest exactly once.
		// 10 events, 3 a page: 4 requests find the oldest page, the 5th
		// is the first page walking back up, the 6th fails.
		w.fake.FailAfter(5)
		first, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{})
		if err == nil {
			t.Fatal("sweep cut off by the fake succeeded")
		}
		if first.Recovered == 0 || first.Recovered >= len(events) {
			t.Fatalf("cut-off sweep recovered %d of %d: want some, not all", first.Recovered, len(events))
		}
		w.fake.FailAfter(-1)
		second, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if first.Recovered+second.Recovered != len(events) || second.Delivered != 0 {
			t.Fatalf("first run recovered %d, second %d (delivered %d): want %d in all, none twice",
				first.Recovered, second.Recovered, second.Delivered, len(events))
		}
		at, ok, err := w.store.LastSweep(ctx, false)
		if err != nil || !ok || time.Since(at) > time.Minute {
			t.Fatalf("LastSweep = %v, %v, %v; want a moment ago", at, ok, err)
		}
	})
	t.Run("ExpiredCursorReportsGap", func(t *testing.T) {
		old := time.Now().UTC().Add(-40 * 24 * time.Hour)
		for _, g := range billing.SweepGroups(webhooks.HandledTypes()) {
			if err := w.store.SaveSweepCursor(ctx, billing.SweepCursor{Types: billing.TypeGroupKey(g), EventID: "evt_gone", EventCreated: &old}); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := w.syncer.Sweep(ctx, stripeapi.SweepOptions{})
		if err != nil || !sum.Gap || sum.Listed != len(events) {
			t.Fatalf("sweep from an expired cursor: %+v, %v; want a gap and every kept event listed again", sum, err)
		}
	})
}

func TestSweepGroups(t *testing.T) {
	types := make([]string, 45)
	for i := range types {
		types[i] = fmt.Sprintf("t.%02d", 44-i)
	}
	groups := billing.SweepGroups(append(types, "t.00"))
	if len(groups) != 3 || len(groups[0]) != 20 || len(groups[2]) != 5 || groups[0][0] != "t.00" || groups[2][4] != "t.44" {
		t.Fatalf("SweepGroups: %v", groups)
	}
}

// Two replicas schedule the sweeper on one database: the missed events are
// recovered once, the replica that skipped learns when the sweep completed
// (its age metric), and the recovered counter of the two together equals
// the events missed.
func TestSweepSchedule(t *testing.T) {
	w := newSweepWorld(t)
	events := history(t, "S", 4, time.Now().UTC().Add(-3*time.Hour).Truncate(time.Second))
	missed := w.publish(t, events, func(i int) bool { return i%2 == 0 })
	other := &stripeapi.Syncer{Client: w.syncer.Client, Store: openStore(t, w.url)}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, s := range []*stripeapi.Syncer{w.syncer, other} {
		m := stripeapi.NewSweepMetrics(regs[i])
		wg.Add(1)
		go func() { defer wg.Done(); s.SweepSchedule(ctx, 15*time.Millisecond, m) }()
	}
	total := func() float64 {
		return counter(t, regs[0], "billingd_sweep_recovered_total", "") + counter(t, regs[1], "billingd_sweep_recovered_total", "")
	}
	waitFor(t, func() bool {
		return total() == float64(missed) && counter(t, regs[0], "billingd_sweep_runs_total", "ok")+counter(t, regs[1], "billingd_sweep_runs_total", "ok") >= 3
	})
	cancel()
	wg.Wait()
	if total() != float64(missed) {
		t.Fatalf("recovered %v in all, want %d", total(), missed)
	}
	for i, reg := range regs {
		if age := gauge(t, reg, "billingd_sweep_last_complete_age_seconds"); age < 0 || age > 60 {
			t.Errorf("replica %d: billingd_sweep_last_complete_age_seconds = %v, want a moment", i, age)
		}
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
