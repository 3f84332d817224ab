package billing

import (
	"context"
	"slices"
	"time"
)

// How the movers list names an account it cannot name by ID.
const (
	AccountErased    = "erased account"    // erasure removed the link; the amounts stay
	AccountUnlinked  = "unlinked customer" // no account linked (yet)
	AccountDeleted   = "deleted customer"  // deleted in Stripe, so its link was removed
	MaxMoversPage    = 500
	MaxMoversCSVPage = 10000
)

// MoverQuery selects a page of the movers list: the movements behind the
// revenue figures, newest first, effective in [From, To) and before AsOf.
type MoverQuery struct {
	Livemode bool
	Currency string       // empty: every currency
	Kind     MovementKind // empty: every kind
	From     time.Time
	To       time.Time
	AsOf     time.Time
	Limit    int
	// After continues a listing after this row (the previous page's
	// last); nil starts at the newest.
	After *MoverCursor
}

// MoverCursor is a position in the movers list, newest first.
type MoverCursor struct {
	At time.Time
	ID int64
}

// Mover is one movement with the account behind it (the app's own account
// ID, never a Stripe ID) and the plans (price IDs of the customer's
// subscriptions that contributed MRR) just before and after it.
type Mover struct {
	ID          int64
	At          time.Time
	Kind        MovementKind
	Currency    string
	Delta       int64
	MRRBefore   int64
	MRRAfter    int64
	AccountID   string // empty unless the customer is linked to an account
	Account     string // AccountID, or AccountErased, AccountUnlinked, AccountDeleted
	PlansBefore []string
	PlansAfter  []string
}

// MoverReader is what the movers endpoint reads. The page has at most
// q.Limit rows; more reports whether rows follow.
type MoverReader interface {
	Movers(ctx context.Context, q MoverQuery) (page []Mover, more bool, err error)
}

// PlansAround are the plans (price IDs, or product IDs for items without
// one) of one customer's subscriptions of a mode and currency that have MRR
// just before t and at t, from the customer's history (any order): the
// ledger's inputs, so a plan a customer discount makes free has none.
func PlansAround(h CustomerHistory, livemode bool, currency string, t time.Time) (before, after []string) {
	adj := newAdjuster(h)
	vs := slices.Clone(h.Versions)
	slices.SortFunc(vs, compareVersions)
	type state struct {
		before, after *Subscription
	}
	subs := map[string]*state{}
	var order []string
	for i := range vs {
		v := &vs[i]
		if v.State.Livemode != livemode || v.State.Currency != currency || v.At.After(t) {
			continue
		}
		s := subs[v.SubscriptionRef]
		if s == nil {
			s = &state{}
			subs[v.SubscriptionRef] = s
			order = append(order, v.SubscriptionRef)
		}
		if v.At.Before(t) {
			s.before = &v.State
		}
		s.after = &v.State
	}
	eps := t.Add(-time.Nanosecond)
	plans := func(st *Subscription, at time.Time, into []string) []string {
		if st == nil {
			return into
		}
		for i, share := range ItemSharesWith(*st, at, adj.at(at)) {
			if share > 0 {
				into = append(into, itemSegment(st.Items[i], DimensionPlan))
			}
		}
		return into
	}
	before, after = []string{}, []string{}
	for _, ref := range order {
		before = plans(subs[ref].before, eps, before)
		after = plans(subs[ref].after, t, after)
	}
	slices.Sort(before)
	slices.Sort(after)
	return slices.Compact(before), slices.Compact(after)
}
