package billing

import (
	"encoding/json"
	"time"
)

// Outbox kinds: who delivers a row.
const (
	OutboxProfitWell = "profitwell" // ProfitWell sync (profitwell/ worker)
	OutboxStripe     = "stripe"     // Stripe jobs (erasure)
)

// OutboxJob is one claimed outbox row, handed to the worker of its kind.
// Attempts counts this attempt (it is incremented by the claim).
type OutboxJob struct {
	ID          int64
	Kind        string
	OrderingKey string
	Action      string
	Payload     json.RawMessage
	Attempts    int
	CreatedAt   time.Time
}

// OutboxStats is the state of one kind's queue, for metrics and commands.
type OutboxStats struct {
	Pending       int64         // waiting or retrying
	Dead          int64         // given up; `billingd profitwell retry` re-queues
	OldestPending time.Duration // age of the oldest pending row (0 when none)
}

// SyncPayload is the payload of a ProfitWell outbox row: surrogate
// references (random UUIDs, never Stripe or account IDs) and billing facts.
// The worker turns the references into keyed aliases at send time, so the
// outbox can be written with no key configured and a row never holds a
// value that identifies anyone outside billingd.
//
// Shapes by action:
//   - create, update: customer_ref, subscription_ref, plan_id,
//     plan_interval, plan_currency, status, value, effective_date
//   - churn: customer_ref, subscription_ref, effective_date, churn_type
//   - unchurn: customer_ref, subscription_ref
//   - erase_user: customer_ref
type SyncPayload struct {
	CustomerRef     string    `json:"customer_ref"`
	SubscriptionRef string    `json:"subscription_ref,omitempty"`
	PlanID          string    `json:"plan_id,omitempty"`
	PlanInterval    string    `json:"plan_interval,omitempty"`
	PlanCurrency    string    `json:"plan_currency,omitempty"`
	Status          string    `json:"status,omitempty"`
	Value           int64     `json:"value"`
	EffectiveDate   int64     `json:"effective_date,omitempty"` // Unix seconds
	ChurnType       ChurnType `json:"churn_type,omitempty"`
}

// Payload is the outbox payload of a for the given references.
func (a SyncAction) Payload(customerRef, subscriptionRef string) SyncPayload {
	p := SyncPayload{CustomerRef: customerRef, SubscriptionRef: subscriptionRef}
	switch a.Kind {
	case SyncCreate, SyncUpdate:
		p.PlanID = a.Plan.PlanID
		p.PlanInterval = a.Plan.Interval
		p.PlanCurrency = a.Plan.Currency
		p.Status = a.Plan.Status
		p.Value = a.Plan.Value
		p.EffectiveDate = a.EffectiveDate.Unix()
	case SyncChurn:
		p.EffectiveDate = a.EffectiveDate.Unix()
		p.ChurnType = a.ChurnType
	}
	return p
}
