package stripeapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSchedule(t *testing.T) {
	t.Parallel()
	t.Run("RepairsDriftAndCounts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.backfill(t)
		b.fake.Advance(time.Second)
		b.fake.UpdateSubscription("sub_T01", func(s *stripefake.Subscription) { s.Status = "active"; s.TrialStart, s.TrialEnd = nil, nil })
		reg := prometheus.NewRegistry()
		m := stripeapi.NewReconcileMetrics(reg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.syncer.Schedule(ctx, 20*time.Millisecond, m); close(done) }()
		waitFor(t, func() bool {
			return b.count(t, `SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_T01' AND status = 'active'`) == 1
		})
		cancel()
		<-done
		if fixed := counter(t, reg, "billingd_reconcile_fixed_total", ""); fixed != 1 {
			t.Errorf("billingd_reconcile_fixed_total = %v, want 1", fixed)
		}
	})
	t.Run("SkipsWhileAnotherReplicaRuns", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		release, ok, err := b.store.TryStripeSyncLock(context.Background())
		if err != nil || !ok {
			t.Fatalf("lock: %v %v", ok, err)
		}
		defer release()
		reg := prometheus.NewRegistry()
		m := stripeapi.NewReconcileMetrics(reg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.syncer.Schedule(ctx, 10*time.Millisecond, m); close(done) }()
		waitFor(t, func() bool {
			return counter(t, reg, "billingd_reconcile_runs_total", "skipped") >= 1
		})
		cancel()
		<-done
		if len(b.fake.Requests()) != 0 {
			t.Errorf("a skipped run called Stripe %d times", len(b.fake.Requests()))
		}
	})
}

// counter returns the value of counter name (with a label of value label,
// when label is set).
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// waitFor polls cond until it holds, failing after a generous deadline
// (a liveness bound, not a timing assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
