package billing

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Dimension is a way to split revenue: by plan (price ID), product or
// billing interval, and the customer cohorts (first-paid month).
type Dimension string

// The dimensions a revenue report may be grouped by, and the cohorts.
const (
	DimensionPlan     Dimension = "plan"
	DimensionProduct  Dimension = "product"
	DimensionInterval Dimension = "interval"
	DimensionCohort   Dimension = "cohort"
)

// GroupBy reports whether d is a dimension a revenue series may be grouped
// by (the cohorts have their own report).
func (d Dimension) GroupBy() bool {
	return d == DimensionPlan || d == DimensionProduct || d == DimensionInterval
}

// segmentDims are the dimensions a subscription's MRR is split over.
var segmentDims = [...]Dimension{DimensionPlan, DimensionProduct, DimensionInterval}

// NoSegment names a segment whose key Stripe did not send (an item
// without a product ID).
const NoSegment = "(none)"

// TrialConversionWindow is how long after its trial's end a subscription
// may start paying and still count as a converted trial: the first
// invoice's payment retries (metrics.md, "Trials").
const TrialConversionWindow = 14 * 24 * time.Hour

// Fact is one change of a segment or cohort of one customer, derived with
// its movements (DeriveLedger): the rows the segment, cohort and trial
// reports sum. Derivation is causal in At, like the movements.
type Fact struct {
	Dimension Dimension
	Segment   string // price ID, product ID, interval ("month", "3 months") or cohort month ("2026-01")
	Livemode  bool
	Currency  string
	At        time.Time
	// Day is the UTC day the reports file the fact under: At's, except for
	// a trial conversion, filed under its trial's start day so that a
	// period's conversion rate is that of the trials started in it.
	Day time.Time
	// Kind and Delta are a movement of the customer's MRR within the
	// segment (or, for a cohort, of the customer's whole MRR), classified
	// as metrics.md classifies a customer's; Kind is empty otherwise.
	Kind  MovementKind
	Delta int64
	// ActiveDelta is +1/-1 as a subscription starts or stops contributing
	// MRR to the segment.
	ActiveDelta int
	// RetainedDelta (cohorts) is the change of min(MRR, first MRR): summed,
	// the MRR a cohort kept without counting expansion (gross retention).
	RetainedDelta int64
	// TrialStart is 1 when a subscription's trial starts; TrialConversion
	// 1 when it starts paying within TrialConversionWindow after it.
	TrialStart      int
	TrialConversion int
}

// IntervalSegment names a billing interval: "month", or "3 months" when
// the interval count is not 1.
func IntervalSegment(iv Interval, count int64) string {
	if iv == "" {
		return NoSegment
	}
	if count <= 1 {
		return string(iv)
	}
	return fmt.Sprintf("%d %ss", count, iv)
}

// itemSegment is the item's segment in dimension d.
func itemSegment(it Item, d Dimension) string {
	var s string
	switch d {
	case DimensionPlan:
		s = it.PriceID
		if s == "" {
			s = it.ProductID
		}
	case DimensionProduct:
		s = it.ProductID
	case DimensionInterval:
		s = IntervalSegment(it.Interval, it.IntervalCount)
	}
	if s == "" {
		return NoSegment
	}
	return s
}

// CohortSegment is a cohort's name: the month its customers first paid.
func CohortSegment(t time.Time) string { return t.UTC().Format("2006-01") }

// ItemShares splits MRRAt(s, t) over s's items in proportion to each
// item's monthly amount before discounts (the discounts apply to the whole
// subscription), by largest remainder, so the shares are integers that add
// up to the subscription's MRR exactly. Items without a fixed amount
// (metered, tiered) get 0.
func ItemShares(s Subscription, t time.Time) []int64 { return ItemSharesWith(s, t, Adjustments{}) }

// ItemSharesWith is ItemShares with the customer's adjustments at t: the
// shares add up to MRRAtWith(s, t, adj), the subscription's MRR in the
// ledger, and each item weighs its amount net of tax (a tax-inclusive
// plan's revenue is its net share, not its gross one).
func ItemSharesWith(s Subscription, t time.Time, adj Adjustments) []int64 {
	shares := make([]int64, len(s.Items))
	total := MRRAtWith(s, t, adj)
	if total <= 0 {
		return shares
	}
	if len(s.Items) == 1 { // the common case: nothing to split
		shares[0] = total
		return shares
	}
	weights := make([]*big.Rat, len(s.Items))
	sum := new(big.Rat)
	for i, it := range s.Items {
		if m, ok := itemMonthly(it); ok && m.Sign() > 0 {
			if f := netFactor(s, it, adj); f != nil {
				m.Mul(m, f)
			}
			weights[i] = m
			sum.Add(sum, m)
		}
	}
	if sum.Sign() == 0 {
		// A fixed MRR with no weighted item cannot happen; keep the total
		// on the primary item rather than lose it.
		shares[0] = total
		return shares
	}
	type rem struct {
		i int
		r *big.Rat
	}
	var rems []rem
	var given int64
	for i, w := range weights {
		if w == nil {
			continue
		}
		exact := new(big.Rat).Quo(new(big.Rat).Mul(w, big.NewRat(total, 1)), sum)
		q := new(big.Int).Quo(exact.Num(), exact.Denom())
		shares[i] = q.Int64()
		given += shares[i]
		rems = append(rems, rem{i, new(big.Rat).Sub(exact, new(big.Rat).SetInt(q))})
	}
	slices.SortStableFunc(rems, func(a, b rem) int { return b.r.Cmp(a.r) })
	for k := 0; given < total && k < len(rems); k++ {
		shares[rems[k].i]++
		given++
	}
	return shares
}

// segKey is one segment of one mode and currency.
type segKey struct {
	mrrKey
	dim Dimension
	seg string
}

func (a segKey) compare(b segKey) int {
	if c := a.mrrKey.compare(b.mrrKey); c != 0 {
		return c
	}
	if c := cmp.Compare(a.dim, b.dim); c != 0 {
		return c
	}
	return cmp.Compare(a.seg, b.seg)
}

// segVals is one subscription's MRR per segment: a few entries (items ×
// dimensions), so a slice beats a map.
type segVals []struct {
	k segKey
	v int64
}

func (s segVals) add(k segKey, v int64) segVals {
	for i := range s {
		if s[i].k == k {
			s[i].v = satAdd(s[i].v, v)
			return s
		}
	}
	return append(s, struct {
		k segKey
		v int64
	}{k, v})
}

func (s segVals) get(k segKey) int64 {
	for _, e := range s {
		if e.k == k {
			return e.v
		}
	}
	return 0
}

// trialState follows one subscription's trial.
type trialState struct {
	started  bool      // a trial was seen (only a subscription's first counts)
	pending  bool      // trialing, or ended and may still convert
	day      time.Time // the trial's start day
	deadline time.Time // the last instant a conversion counts
	key      mrrKey
	segs     [len(segmentDims)]string
}

// DeriveFacts splits one customer's history (in any order) by plan,
// product, interval and cohort, and counts its trials: a pure function of
// the history, as DeriveCustomerLedger is, from the same inputs (the
// subscriptions' versions, the customer's discounts and tax facts) and
// causal in the same way. Each subscription's MRR at each instant is the
// ledger's (MRRAtWith with the adjuster's adjustments then), split over
// its items, so a customer's segments of a dimension add up to its ledger
// MRR at every instant. It is kept apart from DeriveCustomerLedger because
// the event path derives only the ledger; the facts are derived after the
// event's commit (internal/postgres/revenue_facts_deriver.go).
func DeriveFacts(h CustomerHistory) []Fact {
	vs := slices.Clone(h.Versions)
	slices.SortFunc(vs, compareVersions)
	return deriveFacts(vs, newAdjuster(h))
}

// deriveFacts walks the same instants as DeriveCustomerLedger and derives
// the segment, cohort and trial facts of one customer. vs is sorted.
func deriveFacts(vs []SubscriptionVersion, adj *adjuster) []Fact {
	type track struct {
		ref      string
		versions []SubscriptionVersion
		pos      int
		trial    trialState
		// shares of the version at pos, kept while they cannot change
		// (no discount and no scheduled end): most instants move one
		// subscription, not all of a customer's.
		shares    []int64
		sharesPos int
	}
	var tracks []*track
	byRef := map[string]*track{}
	for _, v := range vs {
		tr := byRef[v.SubscriptionRef]
		if tr == nil {
			tr = &track{ref: v.SubscriptionRef, pos: -1, sharesPos: -1}
			byRef[v.SubscriptionRef] = tr
			tracks = append(tracks, tr)
		}
		tr.versions = append(tr.versions, v)
	}
	slices.SortFunc(tracks, func(a, b *track) int { return cmp.Compare(a.ref, b.ref) })
	var points []time.Time
	for _, tr := range tracks {
		points = append(points, changePoints(tr.versions)...)
	}
	points = append(points, adj.changePoints()...)
	// Shares are kept across instants only while the adjustments cannot
	// change them.
	steady := adj.constant()
	slices.SortFunc(points, func(a, b time.Time) int { return a.Compare(b) })
	points = slices.CompactFunc(points, func(a, b time.Time) bool { return a.Equal(b) })

	var out []Fact
	segTotals := map[segKey]int64{}
	segEverPaid := map[segKey]bool{}
	prevSubSeg := make([]segVals, len(tracks))
	custTotals := map[mrrKey]int64{}
	custEverPaid := map[mrrKey]bool{}
	cohort := map[mrrKey]string{}
	initial := map[mrrKey]int64{}
	day := func(t time.Time) time.Time { return BucketDay.Truncate(t) }
	for _, t := range points {
		nextSeg := make(map[segKey]int64, len(segTotals))
		nextCust := make(map[mrrKey]int64, len(custTotals))
		curSubSeg := make([]segVals, len(tracks))
		at := adj.at(t)
		for i, tr := range tracks {
			moved := false
			for tr.pos+1 < len(tr.versions) && !tr.versions[tr.pos+1].At.After(t) {
				tr.pos++
				moved = true
			}
			if tr.pos < 0 {
				continue
			}
			st := tr.versions[tr.pos].State
			k := mrrKey{st.Livemode, st.Currency}
			shares := tr.shares
			if tr.sharesPos != tr.pos {
				shares = ItemSharesWith(st, t, at)
				tr.shares, tr.sharesPos = shares, -1
				if _, scheduled := st.ScheduledEnd(); steady && len(st.Discounts) == 0 && !scheduled {
					tr.sharesPos = tr.pos
				}
			}
			m := make(segVals, 0, len(st.Items)*len(segmentDims))
			var subTotal int64
			for j, it := range st.Items {
				for _, d := range segmentDims {
					m = m.add(segKey{k, d, itemSegment(it, d)}, shares[j])
				}
				subTotal = satAdd(subTotal, shares[j])
			}
			curSubSeg[i] = m
			for _, sv := range m {
				nextSeg[sv.k] = satAdd(nextSeg[sv.k], sv.v)
			}
			nextCust[k] = satAdd(nextCust[k], subTotal)
			out = append(out, trialFacts(&tr.trial, st, k, t, moved, subTotal)...)
		}
		// Segment movements.
		for _, k := range changedKeys(nextSeg, segTotals, segKey.compare) {
			before, after := segTotals[k], nextSeg[k]
			if before == after {
				continue
			}
			kind := classify(before, after, segEverPaid[k])
			if after > 0 {
				segEverPaid[k] = true
			}
			out = append(out, Fact{Dimension: k.dim, Segment: k.seg, Livemode: k.livemode, Currency: k.currency,
				At: t, Day: day(t), Kind: kind, Delta: after - before})
		}
		// Active subscriptions per segment.
		for i := range tracks {
			was, is := prevSubSeg[i], curSubSeg[i]
			var aks []segKey
			for _, sv := range was {
				if sv.v > 0 && is.get(sv.k) <= 0 {
					aks = append(aks, sv.k)
				}
			}
			for _, sv := range is {
				if sv.v > 0 && was.get(sv.k) <= 0 {
					aks = append(aks, sv.k)
				}
			}
			slices.SortFunc(aks, segKey.compare)
			for _, k := range aks {
				d := 1
				if was.get(k) > 0 {
					d = -1
				}
				out = append(out, Fact{Dimension: k.dim, Segment: k.seg, Livemode: k.livemode, Currency: k.currency,
					At: t, Day: day(t), ActiveDelta: d})
			}
		}
		// Cohorts: the customer's whole MRR, filed under its first-paid month.
		for _, k := range changedKeys(nextCust, custTotals, mrrKey.compare) {
			before, after := custTotals[k], nextCust[k]
			if before == after {
				continue
			}
			kind := classify(before, after, custEverPaid[k])
			if kind == MovementNew {
				cohort[k], initial[k] = CohortSegment(t), after
			}
			if after > 0 {
				custEverPaid[k] = true
			}
			first := initial[k]
			out = append(out, Fact{Dimension: DimensionCohort, Segment: cohort[k], Livemode: k.livemode, Currency: k.currency,
				At: t, Day: day(t), Kind: kind, Delta: after - before, RetainedDelta: min(after, first) - min(before, first)})
		}
		segTotals, custTotals, prevSubSeg = nextSeg, nextCust, curSubSeg
	}
	return out
}

// classify is metrics.md's movement kind of a change from before to after.
func classify(before, after int64, everPaid bool) MovementKind {
	switch {
	case before == 0 && !everPaid:
		return MovementNew
	case before == 0:
		return MovementReactivation
	case after == 0:
		return MovementChurn
	case after > before:
		return MovementExpansion
	}
	return MovementContraction
}

// trialFacts follows one subscription's trial at instant t: a start when
// it is first seen trialing (at that version's time), a conversion when it
// first has MRR afterwards, no later than TrialConversionWindow after the
// trial's end and before it is canceled. A subscription's first trial only
// counts.
func trialFacts(tr *trialState, st Subscription, k mrrKey, t time.Time, moved bool, mrr int64) []Fact {
	var out []Fact
	if st.Status == StatusTrialing {
		if !tr.started && moved {
			tr.started, tr.pending, tr.key, tr.day = true, true, k, BucketDay.Truncate(t)
			p, _ := st.PrimaryItem()
			for i, d := range segmentDims {
				tr.segs[i] = itemSegment(p, d)
			}
			for i, d := range segmentDims {
				out = append(out, Fact{Dimension: d, Segment: tr.segs[i], Livemode: k.livemode, Currency: k.currency,
					At: t, Day: tr.day, TrialStart: 1})
			}
		}
		if tr.pending {
			end := t
			if st.TrialEnd != nil && st.TrialEnd.After(end) {
				end = *st.TrialEnd
			}
			tr.deadline = end.Add(TrialConversionWindow)
		}
		return out
	}
	if !tr.pending {
		return out
	}
	if t.After(tr.deadline) || st.Status == StatusCanceled || st.Status == StatusIncompleteExpired {
		tr.pending = false // too late, or ended without paying
		return out
	}
	if mrr > 0 {
		tr.pending = false
		for i, d := range segmentDims {
			out = append(out, Fact{Dimension: d, Segment: tr.segs[i], Livemode: tr.key.livemode, Currency: tr.key.currency,
				At: t, Day: tr.day, TrialConversion: 1})
		}
	}
	return out
}

// changePoints are the instants at which one subscription's MRR may
// change: its versions, its discounts' starts and ends and its scheduled
// end while each version is in force (as DeriveLedger walks them). A
// trial can only convert at one of them (MRR goes above 0), so its
// deadline needs no instant of its own.
func changePoints(versions []SubscriptionVersion) []time.Time {
	var points []time.Time
	for i, v := range versions {
		points = append(points, v.At)
		var next *time.Time
		if i+1 < len(versions) {
			next = &versions[i+1].At
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
	return points
}
