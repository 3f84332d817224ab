package billing

import (
	"math/big"
	"strconv"
	"time"
)

// SubscriptionMRR is the monthly recurring revenue of s in minor units of
// s.Currency, per docs/metrics.md (items × quantity after
// discounts, normalised to a month, rounded once half-even), and whether it
// is fixed (false when a metered or tiered item's amount is unknown ahead,
// or the item list is partial). Statuses that contribute nothing (trialing,
// incomplete, paused, canceled, unpaid, incomplete_expired) give 0.
//
// Every recurring discount listed on s counts: s is one version's state, and Stripe
// lists only discounts in force. MRRAt applies discount and cancellation
// dates as well.
func SubscriptionMRR(s Subscription) (minor int64, fixed bool) {
	if !s.Status.CountsForMRR() {
		return 0, true
	}
	return SubscriptionMRRWith(s, Adjustments{})
}

// SubscriptionMRRWith is SubscriptionMRR with the customer's discounts
// and the tax facts of adj.
func SubscriptionMRRWith(s Subscription, adj Adjustments) (minor int64, fixed bool) {
	if !s.Status.CountsForMRR() {
		return 0, true
	}
	r, fixed := monthlyRat(s, func(d Discount) bool { return d.Duration != "once" }, func(Discount) bool { return true }, adj)
	return roundHalfEven(r), fixed
}

// MRRAt is s's MRR at time t: SubscriptionMRR with only the discounts in
// force at t (a coupon ending is expansion) and 0 from the moment a
// scheduled cancellation (cancel_at, or cancel_at_period_end at the period
// end) takes effect, so churn lands when the subscription actually ends.
func MRRAt(s Subscription, t time.Time) int64 { return MRRAtWith(s, t, Adjustments{}) }

// MRRAtWith is MRRAt with the customer's discounts in force at t and the
// tax facts of adj.
func MRRAtWith(s Subscription, t time.Time, adj Adjustments) int64 {
	if !s.Status.CountsForMRR() {
		return 0
	}
	if end, ok := s.ScheduledEnd(); ok && !t.Before(end) {
		return 0
	}
	r, _ := monthlyRat(s, func(d Discount) bool { return d.InForce(t) }, func(d Discount) bool { return d.Listed(t) }, adj)
	return roundHalfEven(r)
}

// CountsForMRR reports whether a subscription in this status has MRR:
// active and past_due (dunning) do; trials, unpaid and ended ones do not.
func (s Status) CountsForMRR() bool {
	return s == StatusActive || s == StatusPastDue
}

// ScheduledEnd is when a scheduled cancellation takes effect: cancel_at, or
// the current period's end when cancel_at_period_end is set (the earlier
// of the two when both are).
func (s Subscription) ScheduledEnd() (time.Time, bool) {
	var end time.Time
	ok := false
	if s.CancelAt != nil {
		end, ok = *s.CancelAt, true
	}
	if s.CancelAtPeriodEnd && s.CurrentPeriodEnd != nil && (!ok || s.CurrentPeriodEnd.Before(end)) {
		end, ok = *s.CurrentPeriodEnd, true
	}
	return end, ok
}

// InForce reports whether the discount reduces MRR at t. A "once" coupon
// reduces a single invoice, not recurring revenue, and Stripe leaves it on
// the subscription without an end date, so it never counts.
func (d Discount) InForce(t time.Time) bool {
	if d.Duration == "once" {
		return false
	}
	if d.Start != nil && t.Before(*d.Start) {
		return false
	}
	return d.End == nil || t.Before(*d.End)
}

var (
	ratZero = new(big.Rat)
	bp100   = big.NewRat(10000, 1)
)

// monthlyRat is the exact monthly amount before rounding, with the
// discounts that keep() accepts applied in listed order: the
// subscription's own when it lists one (listed() says which count as
// listed), else the customer's (adj). Tax-inclusive items count net of tax
// (adj.NetOf for automatic tax). Discounts are taken off the gross total,
// as Stripe does before it computes inclusive tax, and the net total is
// scaled by the same fraction: exact when Stripe spreads an amount-off
// coupon over the lines in proportion to their amounts, as it does.
func monthlyRat(s Subscription, keep, listed func(Discount) bool, adj Adjustments) (*big.Rat, bool) {
	fixed := !s.ItemsIncomplete
	gross, net := new(big.Rat), new(big.Rat)
	for _, it := range s.Items {
		m, ok := itemMonthly(it)
		if !ok {
			fixed = false
			continue
		}
		gross.Add(gross, m)
		if f := netFactor(s, it, adj); f != nil {
			m = new(big.Rat).Mul(m, f)
		}
		net.Add(net, m)
	}
	if gross.Sign() == 0 {
		return gross, fixed
	}
	// Amount-off coupons take a fixed sum off each invoice; an invoice
	// covers the primary item's billing period.
	perInvoice := big.NewRat(1, 1)
	if p, ok := s.PrimaryItem(); ok {
		if f, ok := perMonth(p.Interval, p.IntervalCount); ok {
			perInvoice = f
		}
	}
	total := new(big.Rat).Set(gross)
	for _, d := range EffectiveDiscounts(s, adj.CustomerDiscounts, listed) {
		if !keep(d) {
			continue
		}
		switch {
		case d.PercentOffBP > 0:
			bp := min(d.PercentOffBP, 10000)
			f := new(big.Rat).Sub(big.NewRat(1, 1), new(big.Rat).Quo(big.NewRat(bp, 1), bp100))
			total.Mul(total, f)
		case d.AmountOff > 0 && (d.Currency == "" || d.Currency == s.Currency):
			off := new(big.Rat).Mul(big.NewRat(d.AmountOff, 1), perInvoice)
			total.Sub(total, off)
		}
		if total.Cmp(ratZero) < 0 {
			total.SetInt64(0) // a coupon larger than the invoice makes it free, not negative
		}
	}
	if net.Cmp(gross) == 0 {
		return total, fixed
	}
	return total.Mul(total, net.Quo(net, gross)), fixed
}

// itemMonthly is one licensed, per-unit item's monthly amount in minor
// units; ok is false for metered or tiered items, whose amount is not
// known ahead, and for an unknown interval.
func itemMonthly(it Item) (*big.Rat, bool) {
	if it.Metered() || it.Tiered() {
		return nil, false
	}
	f, ok := perMonth(it.Interval, it.IntervalCount)
	if !ok {
		return nil, false
	}
	unit := big.NewRat(it.UnitAmount, 1)
	if it.UnitAmountDec != "" && validDecimal(it.UnitAmountDec) {
		// Most decimals are whole numbers; ParseInt reads those exactly
		// and far cheaper than Rat.SetString (this runs several times per
		// subscription version on the event path).
		if n, err := strconv.ParseInt(it.UnitAmountDec, 10, 64); err == nil {
			unit.SetInt64(n)
		} else if u, ok := new(big.Rat).SetString(it.UnitAmountDec); ok {
			unit = u
		}
	}
	q := billedQuantity(it)
	m := new(big.Rat).Mul(unit, big.NewRat(q, 1))
	return m.Mul(m, f), true
}

// billedQuantity applies price.transform_quantity: quantity ÷ divide_by,
// rounded up or down as the price says (down when unset).
func billedQuantity(it Item) int64 {
	q := it.Quantity
	if q < 0 {
		q = 0
	}
	if it.TransformDivideBy <= 0 {
		return q
	}
	n := q / it.TransformDivideBy
	if it.TransformRound == "up" && q%it.TransformDivideBy != 0 {
		n++
	}
	return n
}

// perMonth is the factor turning one billing period's amount into a
// month's: month 1, year 1/12, week 52/12, day 365/12, each ÷ interval_count.
func perMonth(iv Interval, count int64) (*big.Rat, bool) {
	if count <= 0 {
		count = 1
	}
	var num, den int64
	switch iv {
	case IntervalMonth:
		num, den = 1, 1
	case IntervalYear:
		num, den = 1, 12
	case IntervalWeek:
		num, den = 52, 12
	case IntervalDay:
		num, den = 365, 12
	default:
		return nil, false
	}
	return big.NewRat(num, den*count), true
}

// validDecimal accepts what Stripe sends as unit_amount_decimal: digits
// with at most one dot. big.Rat would also take fractions and exponents.
func validDecimal(s string) bool {
	dot := false
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && len(s) <= 40
}

// roundHalfEven rounds a non-negative rational to the nearest integer, ties
// to even; values beyond int64 saturate (no real price gets there).
func roundHalfEven(r *big.Rat) int64 {
	num, den := r.Num(), r.Denom()
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	twice := new(big.Int).Mul(m, big.NewInt(2))
	switch c := twice.CmpAbs(den); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		if q.Sign() < 0 {
			return -1 << 63
		}
		return 1<<63 - 1
	}
	return q.Int64()
}
