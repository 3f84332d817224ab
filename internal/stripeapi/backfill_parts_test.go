package stripeapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
)

// partsFixture is a fake Stripe with 60 customers and 400 subscriptions
// over three years, dense towards now, listed 10 a page: 46 pages, so
// parts and splits have something to share.
func partsFixture(t *testing.T) *stripefake.Server {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	fake.Seed("P", 60, 400, time.Now().Add(-time.Hour), 3*365*24*time.Hour)
	return fake
}

func syncer(t *testing.T, fake *stripefake.Server, st *postgres.Store, parallel int, rate float64) *stripeapi.Syncer {
	t.Helper()
	c, err := stripeapi.New(stripeapi.Config{Key: stripefake.Key, Base: fake.URL, PageSize: 10, RateLimitBackoff: time.Millisecond, ReadRate: rate})
	if err != nil {
		t.Fatal(err)
	}
	return &stripeapi.Syncer{Client: c, Store: st, Parallel: parallel}
}

// syncState is what a backfill stores, keyed by Stripe IDs (customer
// references are random per database).
func syncState(t *testing.T, st *postgres.Store) map[string]string {
	t.Helper()
	queries := map[string]string{
		"customers": `SELECT stripe_customer_id || ' ' || livemode || ' ' || deleted || ' ' || coalesce(account_id, '-') FROM customers`,
		"subscriptions": `SELECT concat_ws(' ', stripe_subscription_id, stripe_customer_id, status, items::text, mrr_minor,
		                  current_period_end, canceled_at, trial_end) FROM subscriptions`,
		"versions": `SELECT concat_ws(' ', s.stripe_subscription_id, v.status, v.mrr_minor)
		             FROM subscription_versions v JOIN subscriptions s USING (subscription_ref)`,
		// Movements are stamped with when Stripe answered each page, so
		// their split into rows depends on which pages shared a second;
		// each customer's MRR they add up to does not.
		"mrr": `SELECT c.stripe_customer_id || ' ' || sum(m.delta_minor)
		        FROM mrr_movements m JOIN customers c USING (customer_ref) GROUP BY c.stripe_customer_id`,
	}
	out := map[string]string{}
	for name, q := range queries {
		var rows []string
		if err := st.DB().Select(&rows, q+` ORDER BY 1`); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = strings.Join(rows, "\n")
	}
	return out
}

func sameBackfillState(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(strings.Split(want["subscriptions"], "\n")) != 400 {
		t.Fatalf("reference holds %d subscriptions, want 400", len(strings.Split(want["subscriptions"], "\n")))
	}
	for name, w := range want {
		if got[name] != w {
			g := strings.Split(got[name], "\n")
			wl := strings.Split(w, "\n")
			t.Errorf("%s differ from the single-cursor run: %d rows, want %d", name, len(g), len(wl))
		}
	}
}

// singleCursor is the reference: the same fake walked by one cursor.
func singleCursor(t *testing.T, fake *stripefake.Server) map[string]string {
	t.Helper()
	ref := pgtest.Open(t)
	if _, err := syncer(t, fake, ref, 0, 1000).Backfill(context.Background()); err != nil {
		t.Fatal(err)
	}
	return syncState(t, ref)
}

// A partitioned backfill stores exactly what a single cursor does, and
// its parts were really walked at once (several made by splitting).
func TestPartitionedBackfillEqualsSingleCursor(t *testing.T) {
	t.Parallel()
	fake := partsFixture(t)
	want := singleCursor(t, fake)

	st := pgtest.Open(t)
	fake.ResetRequests()
	var progress strings.Builder
	s := syncer(t, fake, st, 8, 1000)
	s.Progress = &progress
	sum, err := s.Backfill(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Subscriptions.Listed != 400 || sum.Customers.Listed != 60 || sum.Subscriptions.Failed != 0 {
		t.Errorf("summary %+v, want 400 subscriptions and 60 customers listed", sum)
	}
	sameBackfillState(t, syncState(t, st), want)
	// Parts: requests with a creation window other than the whole list.
	windows := map[string]bool{}
	pages, thin := 0, 0
	for _, r := range fake.Requests() {
		if r.Path == "/v1/subscriptions" {
			windows[r.Query.Get("created[gte]")+".."+r.Query.Get("created[lte]")] = true
			pages++
			if r.Objects < 5 {
				thin++
			}
		}
	}
	// Every part costs a request or more of its own (its last page is
	// seldom full), but splitting only parts seen to be dense keeps that
	// small: 40 full pages hold the list. Splitting every part in sight
	// took 68 to 110 requests, half of them nearly empty.
	if pages > 60 || thin > 12 {
		t.Errorf("subscriptions listed in %d requests, %d with under 5 objects: want at most 60 and 12 (40 pages hold them)", pages, thin)
	}
	if len(windows) < 4 {
		t.Errorf("subscriptions listed in %d creation windows, want the list split in several parts", len(windows))
	}
	if !strings.Contains(progress.String(), "subscriptions: 400 objects") || !strings.Contains(progress.String(), "left") {
		t.Errorf("progress lines: %q", progress.String())
	}
	if n := countRows(t, st, `SELECT count(*) FROM backfill_partitions`); n != 0 {
		t.Errorf("%d part rows left after a complete run", n)
	}
	// A second run changes nothing.
	sum, err = s.Backfill(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Subscriptions.Applied != 0 || sum.Customers.Applied != 0 || sum.Subscriptions.Unchanged != 400 {
		t.Errorf("second run %+v, want everything unchanged", sum)
	}
}

func countRows(t *testing.T, st *postgres.Store, q string) int {
	t.Helper()
	var n int
	if err := st.DB().Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

// A run killed while several parts are half walked resumes each part
// where it stopped: nothing is missed, the parts done are not listed
// again, and the result equals a single cursor's.
func TestPartitionedBackfillResumesAfterKill(t *testing.T) {
	t.Parallel()
	fake := partsFixture(t)
	want := singleCursor(t, fake)

	st := pgtest.Open(t)
	fake.ResetRequests()
	fake.SetLatency(20 * time.Millisecond) // pages in flight when the kill comes
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	go func() {
		// Kill once at least three subscription parts are half done.
		for ctx.Err() == nil {
			var n int
			if err := st.DB().Get(&n, `SELECT count(*) FROM backfill_partitions WHERE list = 'subscriptions' AND NOT done AND objects > 0`); err == nil && n >= 3 {
				kill()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if _, err := syncer(t, fake, st, 6, 1000).Backfill(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: err %v, want it cancelled", err)
	}
	var parts []struct {
		Done    bool  `db:"done"`
		Objects int64 `db:"objects"`
	}
	if err := st.DB().Select(&parts, `SELECT done, objects FROM backfill_partitions WHERE list = 'subscriptions'`); err != nil {
		t.Fatal(err)
	}
	half, stored := 0, int64(0)
	for _, p := range parts {
		if !p.Done && p.Objects > 0 {
			half++
		}
		stored += p.Objects
	}
	if half < 3 {
		t.Fatalf("%d parts half done at the kill, want several: %+v", half, parts)
	}
	first := len(fake.Requests())

	fake.SetLatency(0)
	sum, err := syncer(t, fake, st, 6, 1000).Backfill(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.Customers.Listed != 0 {
		t.Errorf("resumed summary %+v: want resumed, customers not listed again", sum)
	}
	// The resumed run lists what was left (plus each part's resume
	// second), not the whole list again.
	if sum.Subscriptions.Listed >= 400 || int64(sum.Subscriptions.Listed) < 400-stored {
		t.Errorf("resumed run listed %d subscriptions; %d were applied before the kill", sum.Subscriptions.Listed, stored)
	}
	for _, r := range fake.Requests()[first:] {
		if r.Path == "/v1/customers" {
			t.Fatalf("resumed run listed customers again: %+v", r)
		}
	}
	sameBackfillState(t, syncState(t, st), want)
}

// Stripe's 429s, with and without Retry-After, are waited out by every
// walker, and nothing is lost or applied twice.
func TestPartitionedBackfillHonours429(t *testing.T) {
	t.Parallel()
	fake := partsFixture(t)
	want := singleCursor(t, fake)

	st := pgtest.Open(t)
	fake.ResetRequests()
	// The client asks for 400/s; the fake allows 50/s (bursts of 2) and
	// answers the rest 429 with Retry-After; 4 are injected first with a
	// Retry-After of 0.2 s.
	fake.SetRateLimit(50, 2)
	fake.RateLimit(4)
	fake.RetryAfter("0.2")
	s := syncer(t, fake, st, 8, 400)
	sum, err := s.Backfill(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Subscriptions.Failed != 0 || sum.Subscriptions.Listed < 400 {
		t.Errorf("summary %+v", sum)
	}
	limited := 0
	for _, r := range fake.Requests() {
		if r.Status == 429 {
			limited++
		}
	}
	// The client counts every 429 it receives; an answer to the next
	// page a walker was prefetching when its part ended is never
	// received (the request is cancelled), so it may see a few fewer
	// than the fake sent, never more.
	stats := s.Client.ReadStats()
	if limited < 4 || stats.RateLimited < 4 || stats.RateLimited > int64(limited) {
		t.Errorf("%d requests answered 429, client saw %d: want at least the injected 4, and no more than were sent", limited, stats.RateLimited)
	}
	sameBackfillState(t, syncState(t, st), want)
}
