package webhooks

import (
	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts webhook traffic. Labels are bounded: event types are the
// handled ones or "other", outcomes and reasons are fixed sets.
type metrics struct {
	events    *prometheus.CounterVec
	sigFails  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	reading   prometheus.Gauge
	refs      *prometheus.CounterVec
	partial   *prometheus.CounterVec
	byOutcome map[string]map[billing.Outcome]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_webhook_events_total",
			Help: "Verified Stripe webhook events by type (handled types, else other) and outcome.",
		}, []string{"type", "outcome"}),
		sigFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_webhook_signature_failures_total",
			Help: "Webhook requests rejected for their Stripe-Signature, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_webhook_rejected_total",
			Help: "Webhook requests rejected before applying, by reason (too_large, bad_method, bad_content_type, read, body_timeout, body_busy, empty, invalid_payload, out_of_range, overloaded, deadline, unavailable, internal).",
		}, []string{"reason"}),
		reading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "billingd_webhook_bodies_reading",
			Help: "Webhook request bodies being read now (at most WEBHOOK_MAX_BODY_READS); slow clients show here.",
		}),
		refs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_link_references_rejected_total",
			Help: "Checkout client_reference_ids that did not link, by reason (unsigned, malformed, unknown_key, bad_signature, expired, legacy).",
		}, []string{"reason"}),
		partial: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "billingd_webhook_decode_incomplete_total",
			Help: "Events of an API version newer than billingd knows whose needed fields decoded absent: acknowledged, nothing applied, by type.",
		}, []string{"type"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.sigFails, m.rejected, m.reading, m.refs, m.partial)
	}
	for _, t := range HandledTypes() {
		m.partial.WithLabelValues(t)
	}
	for _, r := range billing.LinkRejections() {
		m.refs.WithLabelValues(string(r)) // present at 0, so alerts can use rate()
	}
	// Resolve every (type, outcome) counter once: the hot path then does a
	// map lookup instead of hashing label values.
	outcomes := []billing.Outcome{billing.OutcomeApplied, billing.OutcomeStale, billing.OutcomeIgnored,
		billing.OutcomeLinkConflict, billing.OutcomeLinkErased, billing.OutcomeTombstoned, billing.OutcomeDuplicate, billing.OutcomeUnhandled,
		billing.OutcomeFutureDated}
	m.byOutcome = map[string]map[billing.Outcome]prometheus.Counter{}
	for _, t := range append(HandledTypes(), typeOther) {
		m.byOutcome[t] = map[billing.Outcome]prometheus.Counter{}
		for _, o := range outcomes {
			m.byOutcome[t][o] = m.events.WithLabelValues(t, string(o))
		}
	}
	return m
}

func (m *metrics) event(eventType string, o billing.Outcome) {
	byT, ok := m.byOutcome[eventType]
	if !ok {
		byT = m.byOutcome[typeOther]
	}
	if c, ok := byT[o]; ok {
		c.Inc()
		return
	}
	m.events.WithLabelValues(typeOther, "other").Inc()
}

func (m *metrics) reference(why billing.LinkRejection) { m.refs.WithLabelValues(string(why)).Inc() }
