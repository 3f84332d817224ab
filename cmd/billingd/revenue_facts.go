package main

import (
	"context"
	"sync"
	"time"

	"github.com/billingd/billingd/internal/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// factTiming: a replica looks for revenue facts other replicas queued
// every second; its own are derived soon after it commits them, once its
// event path has been quiet for 250 ms, or when they have waited 30 s
// (postgres.RunFactDeriver says why it yields to webhooks).
var factTiming = postgres.FactDeriverTiming{Poll: time.Second, Quiet: 250 * time.Millisecond, MaxDefer: 30 * time.Second}

// startFactDeriver runs the revenue facts deriver (segments, cohorts and
// trials are derived after each event's commit, on every replica) and
// exports its queue: billingd_revenue_facts_pending and
// billingd_revenue_facts_lag_seconds. stop waits for it to end.
func (e *env) startFactDeriver(ctx context.Context, st *postgres.Store, reg prometheus.Registerer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.RunFactDeriver(ctx, factTiming)
	}()
	queue := func() (int64, time.Duration) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		n, age, err := st.FactsQueue(qctx)
		if err != nil {
			return 0, 0
		}
		return n, age
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "billingd_revenue_facts_pending",
			Help: "Customers queued for their revenue facts (segments, cohorts, trials) to be derived (counted up to 10,000).",
		}, func() float64 { n, _ := queue(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "billingd_revenue_facts_lag_seconds",
			Help: "Age of the oldest queued revenue facts derivation: how far segment, cohort and trial reports may lag the ledger.",
		}, func() float64 { _, age := queue(); return age.Seconds() }),
	)
	return func() {
		cancel()
		wg.Wait()
	}
}
