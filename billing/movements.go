package billing

import (
	"cmp"
	"slices"
	"time"
)

// MovementKind classifies a change of one customer's MRR (metrics.md).
type MovementKind string

// The movement kinds, per customer and currency.
const (
	MovementNew          MovementKind = "new"          // 0 → >0 for the first time ever
	MovementExpansion    MovementKind = "expansion"    // >0 → more
	MovementContraction  MovementKind = "contraction"  // >0 → less, still >0
	MovementChurn        MovementKind = "churn"        // >0 → 0
	MovementReactivation MovementKind = "reactivation" // 0 → >0 after an earlier churn
)

// SubscriptionVersion is one version of a subscription in a customer's state
// history, keyed by the surrogate reference that stands in for the Stripe ID.
// Versions are ordered by (At, Rank, Event): Rank is the tie-break within
// one second that never moves a subscription backwards in its lifecycle.
type SubscriptionVersion struct {
	SubscriptionRef string
	At              time.Time
	Rank            int
	Event           string
	State           Subscription // Livemode, Currency, Status, Items, Discounts and cancellation fields are read
}

// Movement is one change of a customer's MRR in one currency and mode.
// Delta is signed (churn and contraction negative); Before and After are the
// customer's MRR around it. SubscriptionRef names the subscription that
// caused it, or is empty when several changed at the same instant.
type Movement struct {
	SubscriptionRef string
	Livemode        bool
	Currency        string
	At              time.Time
	Kind            MovementKind
	Delta           int64
	Before          int64
	After           int64
}

// mrrKey separates figures that are never added up: modes and currencies.
type mrrKey struct {
	livemode bool
	currency string
}

func (a mrrKey) compare(b mrrKey) int {
	if a.livemode != b.livemode {
		if a.livemode {
			return 1
		}
		return -1
	}
	return cmp.Compare(a.currency, b.currency)
}

// Activity is a subscription starting (+1) or stopping (-1) to contribute
// MRR in a mode and currency: summed up to a time, the active
// subscriptions then.
type Activity struct {
	SubscriptionRef string
	Livemode        bool
	Currency        string
	At              time.Time
	Delta           int
}

// Ledger is everything derived from one customer's state history.
type Ledger struct {
	Movements []Movement
	Activity  []Activity
}

// DeriveLedger turns one customer's state history (every version of
// every subscription of that customer, in any order) into its MRR
// movements, ordered by time, and its subscription activity, from one walk
// over the history. It is a pure function of the set of versions, so any
// delivery order of the same events yields the same ledger.
//
// At each instant each subscription is in its latest version so far;
// between versions its MRR can still change at a discount's end (expansion)
// or a scheduled cancellation (churn when it takes effect, not when it was
// scheduled). The customer's MRR per mode and currency is the sum over its
// subscriptions, and each change of that sum is one movement, classified
// per metrics.md.
func DeriveLedger(versions []SubscriptionVersion) Ledger {
	return DeriveCustomerLedger(CustomerHistory{Versions: versions})
}

// DeriveCustomerLedger is DeriveLedger over a customer's whole history:
// its subscriptions' versions, and the customer-level discounts and tax
// facts that change their MRR between versions (billing/adjust.go). Like
// DeriveLedger it is a pure function of the sets it is given.
func DeriveCustomerLedger(h CustomerHistory) Ledger {
	adj := newAdjuster(h)
	vs := slices.Clone(h.Versions)
	slices.SortFunc(vs, compareVersions)

	// Group per subscription, keeping the order.
	type track struct {
		ref      string
		versions []SubscriptionVersion
		pos      int // index of the version in force, -1 before the first
	}
	var tracks []*track
	byRef := map[string]*track{}
	for _, v := range vs {
		tr := byRef[v.SubscriptionRef]
		if tr == nil {
			tr = &track{ref: v.SubscriptionRef, pos: -1}
			byRef[v.SubscriptionRef] = tr
			tracks = append(tracks, tr)
		}
		tr.versions = append(tr.versions, v)
	}
	slices.SortFunc(tracks, func(a, b *track) int { return cmp.Compare(a.ref, b.ref) })

	// Every instant at which some subscription's MRR may change.
	var points []time.Time
	for _, tr := range tracks {
		for i, v := range tr.versions {
			points = append(points, v.At)
			var next *time.Time
			if i+1 < len(tr.versions) {
				next = &tr.versions[i+1].At
			}
			inside := func(t *time.Time) {
				if t != nil && t.After(v.At) && (next == nil || t.Before(*next)) {
					points = append(points, *t)
				}
			}
			for _, d := range v.State.Discounts {
				inside(d.Start)
				inside(d.End)
			}
			if end, ok := v.State.ScheduledEnd(); ok {
				inside(&end)
			}
		}
	}
	points = append(points, adj.changePoints()...)
	slices.SortFunc(points, func(a, b time.Time) int { return a.Compare(b) })
	points = slices.CompactFunc(points, func(a, b time.Time) bool { return a.Equal(b) })

	type contrib struct {
		key mrrKey
		mrr int64
	}
	prevSub := make([]contrib, len(tracks))
	totals := map[mrrKey]int64{}
	everPaid := map[mrrKey]bool{}
	var out []Movement
	var act []Activity
	for _, t := range points {
		cur := make([]contrib, len(tracks))
		next := map[mrrKey]int64{}
		at := adj.at(t)
		for i, tr := range tracks {
			for tr.pos+1 < len(tr.versions) && !tr.versions[tr.pos+1].At.After(t) {
				tr.pos++
			}
			if tr.pos < 0 {
				continue // not started yet: contributes nothing
			}
			st := tr.versions[tr.pos].State
			cur[i] = contrib{key: mrrKey{st.Livemode, st.Currency}, mrr: MRRAtWith(st, t, at)}
			// Saturating: a customer whose subscriptions add up beyond
			// int64 keeps the maximum rather than wrapping to a negative
			// MRR (reports then show it clamped, billing/clamp.go).
			next[cur[i].key] = satAdd(next[cur[i].key], cur[i].mrr)
		}
		for _, k := range changedKeys(next, totals, mrrKey.compare) {
			before, after := totals[k], next[k]
			if before == after {
				continue
			}
			m := Movement{Livemode: k.livemode, Currency: k.currency, At: t,
				Delta: after - before, Before: before, After: after}
			switch {
			case before == 0 && !everPaid[k]:
				m.Kind = MovementNew
			case before == 0:
				m.Kind = MovementReactivation
			case after == 0:
				m.Kind = MovementChurn
			case after > before:
				m.Kind = MovementExpansion
			default:
				m.Kind = MovementContraction
			}
			// Attribute to the one subscription whose share changed, if one.
			n := 0
			for i, tr := range tracks {
				was, is := int64(0), int64(0)
				if prevSub[i].key == k {
					was = prevSub[i].mrr
				}
				if cur[i].key == k {
					is = cur[i].mrr
				}
				if was != is {
					n++
					m.SubscriptionRef = tr.ref
				}
			}
			if n != 1 {
				m.SubscriptionRef = ""
			}
			if after > 0 {
				everPaid[k] = true
			}
			out = append(out, m)
		}
		for i, tr := range tracks {
			was, is := prevSub[i], cur[i]
			if was.mrr > 0 && (is.mrr == 0 || is.key != was.key) {
				act = append(act, Activity{tr.ref, was.key.livemode, was.key.currency, t, -1})
			}
			if is.mrr > 0 && (was.mrr == 0 || is.key != was.key) {
				act = append(act, Activity{tr.ref, is.key.livemode, is.key.currency, t, +1})
			}
		}
		totals = next
		prevSub = cur
	}
	return Ledger{Movements: out, Activity: act}
}

// compareVersions is the total order of versions: time, then the
// lifecycle tie-break, then the event ID and subscription reference so
// that equal keys still sort the same way every time.
func compareVersions(a, b SubscriptionVersion) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Event, b.Event); c != 0 {
		return c
	}
	return cmp.Compare(a.SubscriptionRef, b.SubscriptionRef)
}

// changedKeys is every key of next or before, sorted by cmp: the totals an
// instant may have moved (a key gone from next went to zero). Sorted, so
// the movements derived from them come out in one order whatever the maps'.
func changedKeys[K comparable](next, before map[K]int64, cmp func(K, K) int) []K {
	keys := make([]K, 0, len(next)+len(before))
	for k := range next {
		keys = append(keys, k)
	}
	for k := range before {
		if _, ok := next[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, cmp)
	return keys
}
