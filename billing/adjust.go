package billing

import (
	"cmp"
	"math/big"
	"slices"
	"time"
)

// What a subscription's own state does not say about its MRR: the
// customer's discount (Stripe applies it to every subscription of the
// customer without a discount of its own) and, for tax-inclusive prices
// under automatic tax, the tax share that only a paid invoice tells.

// Adjustments are the customer-level inputs of one subscription's MRR at
// one instant.
type Adjustments struct {
	// CustomerDiscounts are the customer's discounts at that instant; they
	// apply only when the subscription lists none of its own.
	CustomerDiscounts []Discount
	// NetOf returns the net (excluding tax) and gross amounts of a paid
	// invoice line of the price, for tax-inclusive prices under automatic
	// tax; ok false when no paid invoice told them.
	NetOf func(priceID string) (net, gross int64, ok bool)
}

// Listed reports whether the discount is on the subscription at t: in its
// window [Start, End), whatever its duration. A listed discount of the
// subscription, even a spent "once" coupon Stripe still shows, takes
// precedence over the customer's discount.
func (d Discount) Listed(t time.Time) bool {
	if d.Start != nil && t.Before(*d.Start) {
		return false
	}
	return d.End == nil || t.Before(*d.End)
}

// Unresolved reports whether the discount arrived as a bare ID whose
// amounts are not known yet.
func (d Discount) Unresolved() bool {
	return d.ID != "" && d.PercentOffBP == 0 && d.AmountOff == 0
}

// EffectiveDiscounts are the discounts that apply to s: its own when it
// lists one (listed says which count), else the customer's (Stripe's
// precedence).
func EffectiveDiscounts(s Subscription, customer []Discount, listed func(Discount) bool) []Discount {
	for _, d := range s.Discounts {
		if listed(d) {
			return s.Discounts
		}
	}
	return customer
}

// netFactor is the share of an item's amount that is not tax, or nil when
// all of it is revenue. Inclusive tax rates give it exactly (amount ÷ (1 +
// Σ rates)); under automatic tax an inclusive price's share comes from the
// latest paid invoice line of the price (adj.NetOf), and stays gross until
// one is known.
func netFactor(s Subscription, it Item, adj Adjustments) *big.Rat {
	if it.InclusiveTaxBP > 0 {
		return big.NewRat(10000, 10000+min(it.InclusiveTaxBP, 1_000_000))
	}
	if it.TaxBehavior != "inclusive" || !s.AutomaticTax || adj.NetOf == nil {
		return nil
	}
	net, gross, ok := adj.NetOf(it.PriceID)
	if !ok || gross <= 0 || net < 0 || net >= gross {
		return nil
	}
	return big.NewRat(net, gross)
}

// CustomerDiscountVersion is the customer-level discount state one
// customer or customer.discount.* event told: the discounts in force from
// At (none: the customer has no discount).
type CustomerDiscountVersion struct {
	At        time.Time
	Event     string
	Discounts []Discount
}

// compareCustomerDiscountVersions orders versions by time, then event ID.
func compareCustomerDiscountVersions(a, b CustomerDiscountVersion) int {
	return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Event, b.Event))
}

// TaxFact is one paid invoice line of a tax-inclusive price: its gross
// amount and its amount excluding tax, for the billing period starting At.
type TaxFact struct {
	PriceID string
	At      time.Time
	Gross   int64
	Net     int64
}

// CustomerHistory is everything one customer's ledger in one mode derives
// from: the versions of its subscriptions, its customer-level discounts and
// the tax facts of its paid invoices, each in any order.
type CustomerHistory struct {
	Versions          []SubscriptionVersion
	CustomerDiscounts []CustomerDiscountVersion
	TaxFacts          []TaxFact
}

// adjuster answers Adjustments at an instant from a customer's history.
type adjuster struct {
	discounts []CustomerDiscountVersion // oldest first
	tax       map[string][]TaxFact      // per price, oldest first
}

func newAdjuster(h CustomerHistory) *adjuster {
	a := &adjuster{discounts: slices.Clone(h.CustomerDiscounts), tax: map[string][]TaxFact{}}
	slices.SortFunc(a.discounts, compareCustomerDiscountVersions)
	for _, f := range h.TaxFacts {
		if f.Gross > 0 {
			a.tax[f.PriceID] = append(a.tax[f.PriceID], f)
		}
	}
	for _, fs := range a.tax {
		slices.SortFunc(fs, func(x, y TaxFact) int {
			return cmp.Or(x.At.Compare(y.At), cmp.Compare(x.Gross, y.Gross), cmp.Compare(x.Net, y.Net))
		})
	}
	return a
}

// at is the adjustments in force at t: the latest customer discount
// version at or before t, and per price the latest paid line whose period
// started at or before t (before the first, the first: the tax share of a
// price does not depend on when its first invoice was paid).
func (a *adjuster) at(t time.Time) Adjustments {
	var adj Adjustments
	for _, v := range a.discounts {
		if v.At.After(t) {
			break
		}
		adj.CustomerDiscounts = v.Discounts
	}
	if len(a.tax) > 0 {
		adj.NetOf = func(price string) (int64, int64, bool) {
			fs := a.tax[price]
			if len(fs) == 0 {
				return 0, 0, false
			}
			f := fs[0]
			for _, x := range fs[1:] {
				if x.At.After(t) {
					break
				}
				f = x
			}
			return f.Net, f.Gross, true
		}
	}
	return adj
}

// changePoints are the instants after the first at which the adjustments
// may change a subscription's MRR: customer discount versions and their
// discounts' starts and ends, and the periods of tax facts.
func (a *adjuster) changePoints() []time.Time {
	var out []time.Time
	for i, v := range a.discounts {
		out = append(out, v.At)
		var next *time.Time
		if i+1 < len(a.discounts) {
			next = &a.discounts[i+1].At
		}
		for _, d := range v.Discounts {
			for _, t := range []*time.Time{d.Start, d.End} {
				if t != nil && t.After(v.At) && (next == nil || t.Before(*next)) {
					out = append(out, *t)
				}
			}
		}
	}
	for _, fs := range a.tax {
		for _, f := range fs[1:] {
			out = append(out, f.At)
		}
	}
	return out
}

// DiscountResolution is what a Stripe job learned about a discount that
// arrived as a bare ID: its coupon's amounts, and its dates when the fetch
// told them.
type DiscountResolution struct {
	DiscountID   string
	PercentOffBP int64
	AmountOff    int64
	Currency     string
	Duration     string
	Start        *time.Time
	End          *time.Time
}

// Resolve fills the unresolved discounts of ds from the resolutions (by
// discount ID); dates the version already has win.
func Resolve(ds []Discount, res map[string]DiscountResolution) []Discount {
	var out []Discount
	for i, d := range ds {
		r, ok := res[d.ID]
		if !d.Unresolved() || !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(ds)
		}
		n := Discount{PercentOffBP: r.PercentOffBP, AmountOff: r.AmountOff, Currency: r.Currency,
			Duration: r.Duration, Start: d.Start, End: d.End}
		if n.Start == nil {
			n.Start = r.Start
		}
		if n.End == nil {
			n.End = r.End
		}
		out[i] = n
	}
	if out == nil {
		return ds
	}
	return out
}

// UnresolvedIDs lists the discount IDs of ds still waiting for amounts.
func UnresolvedIDs(ds []Discount) []string {
	var out []string
	for _, d := range ds {
		if d.Unresolved() {
			out = append(out, d.ID)
		}
	}
	return out
}
