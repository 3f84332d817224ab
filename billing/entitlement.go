package billing

import (
	"strings"
	"time"
)

// StatusNone is the status an entitlement answer reports when the account
// has no subscription in the asked mode: a free account, or one billingd
// has never heard of.
const StatusNone Status = "none"

// Entitlement is the answer to "may this account use the product, on which
// plan, until when?".
type Entitlement struct {
	Entitled bool
	// Status is the status of the subscription that decided the answer, or
	// StatusNone.
	Status Status
	// Plan is the deciding subscription's primary price ID (its product ID
	// when the item has no price ID); empty with StatusNone.
	Plan string
	// ValidUntil is when the entitlement ends unless Stripe reports a
	// renewal or payment first: the trial end, the current period end, a
	// scheduled cancellation, or the end of the past_due grace period.
	// Nil when not entitled or when no end is known.
	ValidUntil *time.Time
	Livemode   bool
	// RecheckAt is the first moment the answer changes by time alone (a
	// grace period or a scheduled cancellation ends), so a cache must not
	// serve it from then on. Zero: only a change of state changes it.
	RecheckAt time.Time

	// The answer's detail (ResolveEntitlement; AccountEntitlement leaves
	// them zero). Features are the granted features by key; Quantity, Trial,
	// InGrace, CancelAtPeriodEnd and ScheduledChange describe the deciding
	// subscription.
	Features map[string]FeatureGrant
	// FeaturesIncomplete: a Stripe Entitlements summary had more than one
	// page and the complete list has not been fetched yet, so Features may
	// lack some of Stripe's.
	FeaturesIncomplete bool
	Quantity           int64
	Trial              bool
	InGrace            bool
	CancelAtPeriodEnd  bool
	ScheduledChange    *ScheduledChange
}

// AccountSubscription is one subscription of an account's customer, with
// what entitlement needs to know about that customer.
type AccountSubscription struct {
	Subscription Subscription
	// CustomerDeleted is customers.deleted: a deleted Stripe customer's
	// subscriptions grant nothing, whatever status they were last seen in.
	CustomerDeleted bool
	// ClockTime is the frozen time of the test clock the customer is on
	// (nil for none, or a clock billingd has heard nothing of yet): the
	// subscription is judged at that time (JudgedAt).
	ClockTime *time.Time
}

// AccountEntitlement decides an account's entitlement in one mode from all
// its subscriptions at time now (a subscription whose customer is on a
// Stripe test clock at the clock's time instead): each subscription is judged by
// SubscriptionEntitlement and the best one wins (entitled before not;
// then active, trialing, past_due; then the later end; then the lower ID,
// so the answer never depends on row order). grace is how long past_due
// stays entitled (ENTITLEMENT_GRACE_PERIOD).
func AccountEntitlement(subs []AccountSubscription, livemode bool, now time.Time, grace time.Duration) Entitlement {
	e, _ := accountEntitlement(subs, livemode, now, grace)
	return e
}

// accountEntitlement is AccountEntitlement and the index in subs of the
// deciding subscription (-1: none).
func accountEntitlement(subs []AccountSubscription, livemode bool, now time.Time, grace time.Duration) (Entitlement, int) {
	best := Entitlement{Status: StatusNone, Livemode: livemode}
	bestIdx := -1
	bestID := ""
	var recheck time.Time
	for i, as := range subs {
		s := as.Subscription
		if s.Livemode != livemode || as.CustomerDeleted {
			continue
		}
		e := SubscriptionEntitlement(s, as.JudgedAt(now), grace)
		if as.ClockTime != nil {
			// Simulated time moves only when the clock is advanced, and
			// that event invalidates the answer: no wall-clock recheck.
			e.RecheckAt = time.Time{}
		}
		// Any subscription's clock can change the account's answer, not
		// only the current winner's: a losing past_due one never overtakes
		// by time, but the winner may lose its entitlement.
		if !e.RecheckAt.IsZero() && (recheck.IsZero() || e.RecheckAt.Before(recheck)) {
			recheck = e.RecheckAt
		}
		if bestID == "" || better(e, s.ID, best, bestID) {
			best, bestID, bestIdx = e, s.ID, i
		}
	}
	best.RecheckAt = recheck
	return best, bestIdx
}

// better reports whether a (subscription aID) beats b (bID).
func better(a Entitlement, aID string, b Entitlement, bID string) bool {
	if a.Entitled != b.Entitled {
		return a.Entitled
	}
	if ra, rb := entitlementRank(a.Status), entitlementRank(b.Status); ra != rb {
		return ra > rb
	}
	if c := compareEnd(a.ValidUntil, b.ValidUntil); c != 0 {
		return c > 0
	}
	return strings.Compare(aID, bID) < 0
}

// entitlementRank orders statuses from the most to the least useful to
// report: the paying states first, then those a customer can still fix by
// paying (past_due beyond grace, unpaid), then the ended ones.
func entitlementRank(s Status) int {
	switch s {
	case StatusActive:
		return 8
	case StatusTrialing:
		return 7
	case StatusPastDue:
		return 6
	case StatusUnpaid:
		return 5
	case StatusPaused:
		return 4
	case StatusIncomplete:
		return 3
	case StatusCanceled:
		return 2
	case StatusIncompleteExpired:
		return 1
	}
	return 0
}

// compareEnd orders ends with "no known end" as the latest.
func compareEnd(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return a.Compare(*b)
}

// SubscriptionEntitlement judges one subscription at time now:
//   - active and trialing are entitled until a scheduled cancellation
//     (cancel_at, or cancel_at_period_end at the period end) has passed;
//     an ended period or trial alone does not end them, because Stripe
//     renews or converts them and says so in the next event.
//   - past_due is entitled for grace after the current period started
//     (when the renewal invoice failed); without a known period start it
//     is not.
//   - incomplete, incomplete_expired, canceled, unpaid and paused are not.
func SubscriptionEntitlement(s Subscription, now time.Time, grace time.Duration) Entitlement {
	e := Entitlement{Status: s.Status, Plan: planOf(s), Livemode: s.Livemode}
	end, scheduled := s.ScheduledEnd()
	switch s.Status {
	case StatusActive, StatusTrialing:
		if scheduled && !now.Before(end) {
			return e
		}
		e.Entitled = true
		switch {
		case scheduled:
			e.ValidUntil, e.RecheckAt = utcPtr(end), end
		case s.Status == StatusTrialing && s.TrialEnd != nil:
			e.ValidUntil = utcPtr(*s.TrialEnd)
		case s.CurrentPeriodEnd != nil:
			e.ValidUntil = utcPtr(*s.CurrentPeriodEnd)
		}
	case StatusPastDue:
		if s.CurrentPeriodStart == nil {
			return e
		}
		until := s.CurrentPeriodStart.Add(grace)
		if scheduled && end.Before(until) {
			until = end
		}
		if !now.Before(until) {
			return e
		}
		e.Entitled, e.ValidUntil, e.RecheckAt = true, utcPtr(until), until
	}
	return e
}

// planOf names the plan: the primary item's price ID, or its product ID.
func planOf(s Subscription) string {
	it, ok := s.PrimaryItem()
	if !ok {
		return ""
	}
	if it.PriceID != "" {
		return it.PriceID
	}
	return it.ProductID
}

func utcPtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}
