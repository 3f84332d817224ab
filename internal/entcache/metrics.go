package entcache

import "github.com/prometheus/client_golang/prometheus"

const (
	kindEntitlement = "entitlement"
	kindToken       = "token"
)

// metrics of the cache; labels are bounded (the two kinds).
type metrics struct {
	hits          *prometheus.CounterVec
	misses        *prometheus.CounterVec
	invalidations prometheus.Counter
	flushes       prometheus.Counter
	listening     prometheus.Gauge
	reconnects    prometheus.Counter

	hitEnt, hitTok, missEnt, missTok prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_cache_hits_total", Help: "Reads answered from the in-process cache, by kind (entitlement, token).",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_cache_misses_total", Help: "Reads that went to the database, by kind (entitlement, token).",
		}, []string{"kind"}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_cache_invalidations_total", Help: "Account buckets or token sets invalidated (feed or local).",
		}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_cache_flushes_total", Help: "Whole-cache flushes (first feed read, and after a failed one).",
		}),
		listening: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "billingd_cache_listener_up", Help: "1 while feed polls succeed within the staleness bound.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_cache_listener_connects_total", Help: "Feed reads that (re)started the cache from a flush.",
		}),
	}
	// Resolved once: WithLabelValues hashes its labels on every call, and
	// hits are counted on the hot path.
	m.hitEnt, m.hitTok = m.hits.WithLabelValues(kindEntitlement), m.hits.WithLabelValues(kindToken)
	m.missEnt, m.missTok = m.misses.WithLabelValues(kindEntitlement), m.misses.WithLabelValues(kindToken)
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.invalidations, m.flushes, m.listening, m.reconnects)
	}
	return m
}

func (m *metrics) hit(kind string) {
	if kind == kindToken {
		m.hitTok.Inc()
		return
	}
	m.hitEnt.Inc()
}

func (m *metrics) miss(kind string) {
	if kind == kindToken {
		m.missTok.Inc()
		return
	}
	m.missEnt.Inc()
}
