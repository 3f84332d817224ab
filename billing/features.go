package billing

import "time"

// FeatureGrant is one granted feature in an entitlement answer. Limit nil
// means on with no numeric limit.
type FeatureGrant struct {
	Limit *int64
}

// ScheduledChange is the next change Stripe will make to the deciding
// subscription: a schedule's next phase, a pending update, or a
// cancellation.
type ScheduledChange struct {
	// At is when it takes effect; nil for a pending update, which takes
	// effect once its invoice is paid.
	At *time.Time
	// Plan and Quantity are the primary item's price and quantity after the
	// change ("" and nil for a cancellation).
	Plan     string
	Quantity *int64
	Cancel   bool
}

// PhaseItem is one item of a schedule phase or a pending update.
type PhaseItem struct {
	PriceID  string `json:"price_id"`
	Quantity int64  `json:"quantity"`
}

// PendingUpdate is a subscription's pending_update: changes that take
// effect once the invoice they created is paid, unless they expire first.
type PendingUpdate struct {
	ExpiresAt *time.Time  `json:"expires_at,omitempty"`
	Items     []PhaseItem `json:"items"`
}

// ResolveInput is what an account's full entitlement answer is computed
// from, in one mode.
type ResolveInput struct {
	Subscriptions []AccountSubscription
	// Schedules of the account's customers (any mode; those of another
	// mode are skipped).
	Schedules []Schedule
	// Summaries are the Stripe Entitlements summaries of the account's
	// customers (deleted customers' excluded by the reader).
	Summaries []EntitlementSummary
	// Override is the account's override, nil when none.
	Override *Override
	// Catalog is the features catalog; nil: none configured.
	Catalog *Catalog
}

// ResolveEntitlement is the full answer for an account in one mode at
// time now: AccountEntitlement's verdict, and
//   - Features: the union over every entitled subscription of the
//     catalog's grants of each item (a price's entry overrides its
//     product's; per-unit grants are n × the item's quantity), the largest
//     limit winning (no numeric limit beats any number); then each feature
//     of the Stripe Entitlements summaries not granted yet, as on (Stripe's
//     features carry no limit, so they never lift a catalog limit); then
//     the override's entries replace what was computed (false removes a
//     feature), unless it expired;
//   - Quantity (primary item), Trial, InGrace and CancelAtPeriodEnd of the
//     deciding subscription, and its ScheduledChange (NextChange);
//   - RecheckAt also when an override expires or a scheduled change
//     passes.
func ResolveEntitlement(in ResolveInput, livemode bool, now time.Time, grace time.Duration) Entitlement {
	e, best := accountEntitlement(in.Subscriptions, livemode, now, grace)
	e.Features = map[string]FeatureGrant{}
	if best >= 0 {
		s := in.Subscriptions[best].Subscription
		if it, ok := s.PrimaryItem(); ok {
			e.Quantity = it.Quantity
		}
		e.Trial = e.Entitled && s.Status == StatusTrialing
		e.InGrace = e.Entitled && s.Status == StatusPastDue
		e.CancelAtPeriodEnd = s.CancelAtPeriodEnd
		e.ScheduledChange = NextChange(s, in.Schedules, now)
		if c := e.ScheduledChange; c != nil && c.At != nil && c.At.After(now) {
			e.RecheckAt = earliest(e.RecheckAt, *c.At)
		}
	}
	if in.Catalog != nil {
		for _, as := range in.Subscriptions {
			s := as.Subscription
			if s.Livemode != livemode || as.CustomerDeleted || !SubscriptionEntitlement(s, now, grace).Entitled {
				continue
			}
			for _, it := range s.Items {
				in.Catalog.itemGrants(it, func(key string, g Grant) {
					if lim, on := g.resolve(it.Quantity); on {
						mergeFeature(e.Features, key, lim)
					}
				})
			}
		}
	}
	for _, sum := range in.Summaries {
		if sum.Livemode != livemode {
			continue
		}
		for _, k := range sum.Features {
			if _, ok := e.Features[k]; !ok {
				e.Features[k] = FeatureGrant{}
			}
		}
		if !sum.Complete {
			e.FeaturesIncomplete = true
		}
	}
	if o := in.Override; o != nil && (o.ExpiresAt == nil || now.Before(*o.ExpiresAt)) {
		for k, g := range o.Features {
			if lim, on := g.resolve(0); on {
				e.Features[k] = FeatureGrant{Limit: lim}
			} else {
				delete(e.Features, k)
			}
		}
		if o.ExpiresAt != nil {
			e.RecheckAt = earliest(e.RecheckAt, *o.ExpiresAt)
		}
	}
	return e
}

// resolve turns a grant into a limit for an item of quantity q: on is
// false for GrantOff; lim nil for no numeric limit.
func (g Grant) resolve(q int64) (lim *int64, on bool) {
	switch g.Kind {
	case GrantOn, GrantUnlimited:
		return nil, true
	case GrantLimit:
		n := g.N
		return &n, true
	case GrantPerUnit:
		n := satMul(g.N, max(q, 0))
		return &n, true
	}
	return nil, false
}

// satMul multiplies two non-negative numbers, saturating at MaxLimit.
func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > MaxLimit/b {
		return MaxLimit
	}
	return min(a*b, MaxLimit)
}

// mergeFeature adds a grant to fs: the largest limit wins, no numeric
// limit (nil) beating any number.
func mergeFeature(fs map[string]FeatureGrant, key string, lim *int64) {
	cur, ok := fs[key]
	switch {
	case !ok:
		fs[key] = FeatureGrant{Limit: lim}
	case cur.Limit == nil:
	case lim == nil || *lim > *cur.Limit:
		fs[key] = FeatureGrant{Limit: lim}
	}
}

func earliest(cur, t time.Time) time.Time {
	if cur.IsZero() || t.Before(cur) {
		return t
	}
	return cur
}

// NextChange is the next change Stripe will make to subscription s at time
// now, or nil:
//   - a pending update (not expired) with items comes first: it takes
//     effect as soon as its invoice is paid;
//   - otherwise the earliest of a scheduled cancellation (cancel_at, or the
//     period end with cancel_at_period_end) and the next phase of an
//     active or not-started schedule of s (the first phase starting after
//     now; after the last phase, a schedule whose end behaviour is cancel
//     cancels at its end).
//
// Subscriptions that ended have no scheduled change.
func NextChange(s Subscription, schedules []Schedule, now time.Time) *ScheduledChange {
	switch s.Status {
	case StatusCanceled, StatusIncompleteExpired:
		return nil
	}
	if pu := s.PendingUpdate; pu != nil && len(pu.Items) > 0 && (pu.ExpiresAt == nil || now.Before(*pu.ExpiresAt)) {
		q := pu.Items[0].Quantity
		return &ScheduledChange{Plan: pu.Items[0].PriceID, Quantity: &q}
	}
	var next *ScheduledChange
	consider := func(c *ScheduledChange) {
		if c != nil && c.At != nil && c.At.After(now) && (next == nil || c.At.Before(*next.At)) {
			next = c
		}
	}
	if end, ok := s.ScheduledEnd(); ok {
		consider(&ScheduledChange{At: utcPtr(end), Cancel: true})
	}
	for _, sc := range schedules {
		if sc.SubscriptionID == s.ID && sc.Livemode == s.Livemode {
			consider(sc.nextPhase(now))
		}
	}
	return next
}

// nextPhase is the schedule's next change after now: the start of the
// first phase that has not started, or its end when it then cancels.
func (sc Schedule) nextPhase(now time.Time) *ScheduledChange {
	if sc.Status != ScheduleActive && sc.Status != ScheduleNotStarted {
		return nil
	}
	for _, p := range sc.Phases {
		if p.Start != nil && p.Start.After(now) {
			c := &ScheduledChange{At: utcPtr(*p.Start)}
			if len(p.Items) > 0 {
				q := p.Items[0].Quantity
				c.Plan, c.Quantity = p.Items[0].PriceID, &q
			}
			return c
		}
	}
	if sc.EndBehavior == "cancel" && len(sc.Phases) > 0 {
		if last := sc.Phases[len(sc.Phases)-1]; last.End != nil && last.End.After(now) {
			return &ScheduledChange{At: utcPtr(*last.End), Cancel: true}
		}
	}
	return nil
}

// EntitlementSummary is a Stripe customer's active entitlements
// (entitlements.active_entitlement_summary.updated, or the full list
// fetched from the API): feature lookup keys, the merchant's catalog.
type EntitlementSummary struct {
	CustomerID string
	Livemode   bool
	// Features are the lookup keys of the active features.
	Features []string
	// Complete is false when the event's list had more pages: a Stripe job
	// fetches the whole list (and applies it as an API fetch).
	Complete bool
}

// Subjects implements EventObject: the customer.
func (s *EntitlementSummary) Subjects() []string { return []string{s.CustomerID} }

// LinkHint implements EventObject: a summary carries no hint.
func (s *EntitlementSummary) LinkHint() string { return "" }

// MaxSummaryFeatures bounds a customer's stored features.
const MaxSummaryFeatures = 10_000

// Override is an account's per-account feature override (sales deals,
// support). Features take the place of what the plan grants (GrantOff
// removes a feature); an expired override is ignored.
type Override struct {
	AccountID string
	Features  map[string]Grant
	ExpiresAt *time.Time
	UpdatedAt time.Time
	UpdatedBy string
}

// MaxOverrideFeatures bounds one override.
const MaxOverrideFeatures = 500
