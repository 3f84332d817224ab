package profitwell_test

import (
	"testing"

	"github.com/billingd/billingd/profitwell"
	"github.com/billingd/billingd/profitwell/profitwelltest"
	"github.com/prometheus/client_golang/prometheus"
)

// gather returns every sample of reg as "name{label=value,...}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName() + "{"
			for i, l := range m.GetLabel() {
				if i > 0 {
					key += ","
				}
				key += l.GetName() + "=" + l.GetValue()
			}
			key += "}"
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := prometheus.NewRegistry()
	m := profitwell.NewMetrics(reg, b.st)
	b.enqueue(t, create(newRef(), newRef(), 1000, "active"))
	b.enqueue(t, create(newRef(), newRef(), 2000, "active"))
	t.Run("DepthBeforeDelivery", func(t *testing.T) {
		g := gather(t, reg)
		want := map[string]float64{
			"billingd_outbox_depth{kind=profitwell,state=pending}": 2,
			"billingd_outbox_depth{kind=profitwell,state=dead}":    0,
			"billingd_outbox_depth{kind=stripe,state=pending}":     0,
		}
		for k, v := range want {
			if got, ok := g[k]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
			}
		}
		if age, ok := g["billingd_outbox_oldest_pending_age_seconds{kind=profitwell}"]; !ok || age < 0 {
			t.Errorf("oldest pending age = %v (present %v)", age, ok)
		}
	})
	b.fake.FailNext(profitwelltest.Fault{Status: 400}, profitwelltest.Fault{Status: 500})
	b.drain(t, b.worker(t, func(w *profitwell.Worker) { w.Metrics = m }))
	t.Run("CountsAfterDelivery", func(t *testing.T) {
		g := gather(t, reg)
		want := map[string]float64{
			"billingd_outbox_depth{kind=profitwell,state=pending}":          0,
			"billingd_outbox_depth{kind=profitwell,state=dead}":             1,
			"billingd_outbox_oldest_pending_age_seconds{kind=profitwell}":   0,
			"billingd_profitwell_sent_total{action=create}":                 1,
			"billingd_profitwell_dead_total{action=create}":                 1,
			"billingd_profitwell_failed_total{action=create,reason=server}": 1,
		}
		for k, v := range want {
			if got, ok := g[k]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
			}
		}
	})
}
