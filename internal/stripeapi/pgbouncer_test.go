package stripeapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
)

// The Stripe jobs through PgBouncer 1.18 in transaction mode, as serve and
// the stripe commands run on a pooler (no named statements, binary
// parameters, session locks on the direct session pool): a partitioned
// backfill stores what a single cursor does directly and a second run
// writes nothing, reconcile --fix repairs drift, a sweep runs, and erasure
// jobs are sent and scrubbed.
func TestSyncJobsThroughPgBouncer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := partsFixture(t)
	want := singleCursor(t, fake)

	st := pgtest.OpenThroughPgBouncer(t)
	s := syncer(t, fake, st, 8, 1000)
	sum, err := s.Backfill(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Subscriptions.Listed != 400 || sum.Subscriptions.Failed != 0 {
		t.Fatalf("backfill %+v", sum)
	}
	sameBackfillState(t, syncState(t, st), want)
	if sum, err = s.Backfill(ctx); err != nil || sum.Subscriptions.Applied != 0 || sum.Customers.Applied != 0 {
		t.Fatalf("second backfill %+v (err %v), want nothing applied", sum, err)
	}

	fake.UpdateSubscription("sub_P000007", func(sub *stripefake.Subscription) { sub.Items[0].Quantity += 5 })
	// Stripe answers after the backfill's second: an API fetch's version
	// is the second Stripe answered in, and the change would otherwise
	// tie with the backfilled version (as in reconcile_test.go; it failed
	// four runs in ten when the backfills and the reconcile shared one).
	fake.Advance(time.Second)
	rep, err := s.Reconcile(ctx, stripeapi.ReconcileOptions{Fix: true})
	if err != nil || len(rep.Failures) != 0 || rep.Fixed() != 1 {
		t.Fatalf("reconcile --fix: fixed %d, failures %v, err %v; want the one drift fixed", rep.Fixed(), rep.Failures, err)
	}
	if _, err := s.Sweep(ctx, stripeapi.SweepOptions{}); err != nil {
		t.Fatalf("sweep: %v", err)
	}

	customers := []string{"cus_PBerase1"}
	jobs := newFake(t, customers...)
	seedErased(t, st, "acct_pb_erase", customers, billing.ErasureRequest{DeleteCustomer: true})
	drain(t, newWorker(t, st, jobs.URL))
	if n := count(jobs, "DELETE /v1/customers/cus_PBerase1"); n != 1 {
		t.Errorf("DELETE called %d times, want once", n)
	}
	rows := stripeRows(t, st)
	if len(rows) != 1 {
		t.Fatalf("%d Stripe jobs, want 1", len(rows))
	}
	assertScrubbed(t, rows, "sent")
	if strings.Contains(dumpAll(t, st), "acct_pb_erase") {
		t.Error("the erased account is still stored")
	}
}
