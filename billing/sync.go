package billing

import (
	"math/big"
	"time"
)

// SyncKind is what an outside revenue tracker (ProfitWell) must be told
// about one subscription.
type SyncKind string

// The sync actions. SyncEraseUser is never produced by SyncActions: the
// erasure path enqueues it when an account is deleted.
const (
	SyncCreate    SyncKind = "create"     // a subscription starts (or is first seen)
	SyncUpdate    SyncKind = "update"     // plan, value or trial status changed
	SyncChurn     SyncKind = "churn"      // the subscription ended
	SyncUnchurn   SyncKind = "unchurn"    // an ended subscription is live again
	SyncEraseUser SyncKind = "erase_user" // forget the customer and its history
)

// Valid reports whether k is a known sync action.
func (k SyncKind) Valid() bool {
	switch k {
	case SyncCreate, SyncUpdate, SyncChurn, SyncUnchurn, SyncEraseUser:
		return true
	}
	return false
}

// ChurnType says why a subscription ended.
type ChurnType string

// The churn types ProfitWell distinguishes.
const (
	ChurnVoluntary  ChurnType = "voluntary"  // the customer cancelled
	ChurnDelinquent ChurnType = "delinquent" // it ended because payment failed
)

// SyncPlan is what a tracker knows about a live subscription: its plan, the
// value per billing period and whether it is still in trial.
type SyncPlan struct {
	PlanID   string // the primary item's price ID (product ID when no price)
	Interval string // "month" or "year": the only intervals ProfitWell knows
	Currency string // lowercase ISO 4217
	Value    int64  // minor units per Interval, after the discounts in force
	Status   string // "active" or "trialing"
}

// SyncAction is one call a tracker needs, in order.
type SyncAction struct {
	Kind          SyncKind
	Plan          SyncPlan  // create and update
	EffectiveDate time.Time // create, update and churn
	ChurnType     ChurnType // churn
}

// syncPhase is where a Stripe status leaves a subscription in the
// tracker: not there yet, live (counted), or ended (churned).
type syncPhase int

const (
	phaseNone  syncPhase = iota // incomplete: never paid, never sent
	phaseLive                   // active, past_due (dunning still counts), trialing
	phaseEnded                  // canceled, unpaid, paused, incomplete_expired
)

func phaseOf(s Status) syncPhase {
	switch s {
	case StatusActive, StatusPastDue, StatusTrialing:
		return phaseLive
	case StatusCanceled, StatusUnpaid, StatusPaused, StatusIncompleteExpired:
		return phaseEnded
	}
	return phaseNone
}

// SyncActions maps a change of a subscription's current state (prev nil for
// a first-seen subscription) to the tracker calls that make it agree, in
// order. at is the version's time, the effective date of updates and of
// churn when Stripe gives no end date. Test-mode subscriptions need nothing.
//
// A first-seen subscription that has already ended is created and then
// churned, so the tracker's history holds its revenue (backfill relies on
// this), except incomplete_expired ones, which never had revenue.
func SyncActions(prev *Subscription, next Subscription, at time.Time) []SyncAction {
	if !next.Livemode {
		return nil
	}
	pp := phaseNone
	if prev != nil {
		pp = phaseOf(prev.Status)
	}
	plan := SyncPlanOf(next, at)
	switch phaseOf(next.Status) {
	case phaseLive:
		switch pp {
		case phaseNone:
			eff := at
			if prev == nil {
				eff = startOf(next, at)
			}
			return []SyncAction{{Kind: SyncCreate, Plan: plan, EffectiveDate: eff}}
		case phaseLive:
			if SyncPlanOf(*prev, at) != plan {
				return []SyncAction{{Kind: SyncUpdate, Plan: plan, EffectiveDate: at}}
			}
			return nil
		case phaseEnded:
			// The tracker still holds the plan it had when it churned.
			out := []SyncAction{{Kind: SyncUnchurn}}
			if SyncPlanOf(*prev, at) != plan {
				out = append(out, SyncAction{Kind: SyncUpdate, Plan: plan, EffectiveDate: at})
			}
			return out
		}
	case phaseEnded:
		churn := SyncAction{Kind: SyncChurn, EffectiveDate: endOf(next, at), ChurnType: churnTypeOf(prev, next)}
		switch {
		case pp == phaseLive:
			return []SyncAction{churn}
		case prev == nil && next.Status != StatusIncompleteExpired:
			return []SyncAction{{Kind: SyncCreate, Plan: plan, EffectiveDate: startOf(next, at)}, churn}
		}
	}
	return nil
}

// BackfillActions is what sending a subscription's current state from
// scratch takes: the actions for a first-seen subscription. Sends are
// idempotent (create of a known alias becomes an update, churn of a churned
// one is done), so running it again is harmless.
func BackfillActions(s Subscription, at time.Time) []SyncAction {
	return SyncActions(nil, s, at)
}

// churnTypeOf is delinquent when the subscription ended through failed
// payment: it is unpaid or incomplete_expired, or it was cancelled while
// past_due or unpaid (Stripe's dunning cancels it); voluntary otherwise.
func churnTypeOf(prev *Subscription, next Subscription) ChurnType {
	switch next.Status {
	case StatusUnpaid, StatusIncompleteExpired:
		return ChurnDelinquent
	}
	if prev != nil && (prev.Status == StatusPastDue || prev.Status == StatusUnpaid) {
		return ChurnDelinquent
	}
	return ChurnVoluntary
}

func startOf(s Subscription, at time.Time) time.Time {
	for _, t := range []*time.Time{s.StartDate, s.Created} {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return at
}

func endOf(s Subscription, at time.Time) time.Time {
	for _, t := range []*time.Time{s.EndedAt, s.CanceledAt} {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return at
}

// SyncPlanOf is the plan a tracker should hold for s at time at, whatever
// its status: the value a trial will bill, or an ended subscription billed.
// ProfitWell knows only monthly and yearly plans: a plan billed every year
// sends its yearly amount; every other interval (weekly, daily, quarterly,
// every two years) sends "month" with the monthly-normalised value, the
// same figure as MRR. Discounts count while in force at `at`.
func SyncPlanOf(s Subscription, at time.Time) SyncPlan {
	p := SyncPlan{Currency: s.Currency, Interval: "month", Status: "active"}
	if s.Status == StatusTrialing {
		p.Status = "trialing"
	}
	item, ok := s.PrimaryItem()
	if !ok {
		return p
	}
	p.PlanID = item.PriceID
	if p.PlanID == "" {
		p.PlanID = item.ProductID
	}
	monthly, _ := monthlyRat(s, func(d Discount) bool { return d.InForce(at) }, func(d Discount) bool { return d.Listed(at) }, Adjustments{})
	count := item.IntervalCount
	if count <= 0 {
		count = 1
	}
	if item.Interval == IntervalYear && count == 1 {
		p.Interval = "year"
		// Exact: ×12 before rounding, so a yearly price comes back whole.
		p.Value = roundHalfEven(new(big.Rat).Mul(monthly, big.NewRat(12, 1)))
		return p
	}
	p.Value = roundHalfEven(monthly)
	return p
}
