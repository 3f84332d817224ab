package stripeapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
)

// TestSyncAgainstStripeMock runs backfill and reconcile against stripe-mock,
// which validates every request against Stripe's OpenAPI spec and answers
// with fixtures of the real API version: it proves the real client's
// requests (status=all, limit, created ranges, retrieve by ID) and that
// the decoder reads what Stripe sends. stripe-mock is stateless and lists
// one fixture object, so this checks shapes, not pagination.
func TestSyncAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripefake.StartStripeMock(t)

	st := pgtest.Open(t)
	client, err := stripeapi.New(stripeapi.Config{Key: "sk_test_123", Base: base})
	if err != nil {
		t.Fatal(err)
	}
	s := &stripeapi.Syncer{Client: client, Store: st}
	sum, err := s.Backfill(context.Background())
	if err != nil {
		t.Fatalf("backfill against stripe-mock: %v (%+v)", err, sum)
	}
	if sum.Customers.Listed == 0 || sum.Subscriptions.Listed == 0 || sum.Subscriptions.Applied == 0 {
		t.Fatalf("summary %+v: want stripe-mock's customer and subscription listed and applied", sum)
	}
	var n int
	if err := st.DB().Get(&n, `SELECT count(*) FROM subscriptions`); err != nil || n == 0 {
		t.Fatalf("%d subscriptions stored (%v)", n, err)
	}
	rep, err := s.Reconcile(context.Background(), stripeapi.ReconcileOptions{})
	if err != nil {
		t.Fatalf("reconcile against stripe-mock: %v", err)
	}
	if len(rep.Failures) != 0 || len(rep.Drift) != 0 {
		t.Errorf("reconcile right after backfill: drift %+v, failures %+v; want none", rep.Drift, rep.Failures)
	}
	// --since sends created[gte]; stripe-mock rejects parameters the spec
	// does not allow.
	if _, err := s.Reconcile(context.Background(), stripeapi.ReconcileOptions{Since: 24 * time.Hour}); err != nil {
		t.Fatalf("reconcile --since against stripe-mock: %v", err)
	}
}
