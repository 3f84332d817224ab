package billing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Drift between billingd's stored state and Stripe's (reconcile).
//
// Webhooks get lost: an endpoint down longer than Stripe retries, a
// rotated secret, a bug fixed later. Reconcile lists Stripe's current
// objects, compares them with current state here, and (with --fix) applies
// Stripe's truth through the same event path as webhooks.

// DriftKind names one kind of disagreement.
type DriftKind string

// The kinds of drift reconcile reports.
const (
	// DriftMissing: Stripe has the subscription, billingd does not.
	DriftMissing DriftKind = "missing"
	// DriftExtra: billingd has the subscription, Stripe does not list it.
	DriftExtra DriftKind = "extra"
	// DriftChanged: both have it, with different status, price, quantity
	// or other billing facts.
	DriftChanged DriftKind = "changed"
	// DriftCustomerDeleted: Stripe deleted the customer (or answers 404
	// for it) but billingd still holds it as live.
	DriftCustomerDeleted DriftKind = "customer_deleted"
)

// Difference is one field that differs. Values are billing facts
// (statuses, price IDs, counts, dates), never personal data.
type Difference struct {
	Field  string // status, price, quantity, amount, currency, period, trial, cancel, ended, discounts, livemode, customer
	Stored string
	Stripe string
}

// String renders "status: active → canceled".
func (d Difference) String() string { return fmt.Sprintf("%s: %s → %s", d.Field, d.Stored, d.Stripe) }

// Drift is one disagreement and, after a fix, what became of it.
type Drift struct {
	Kind           DriftKind
	CustomerID     string
	SubscriptionID string // empty for DriftCustomerDeleted
	Diffs          []Difference
	// Fixed is set once Stripe's truth was applied; Err says why a fix
	// failed or was not possible.
	Fixed bool
	Err   string
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func driftSameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func joinItems(items []Item, f func(Item) string) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = f(it)
	}
	return strings.Join(parts, ",")
}

// SubscriptionDiff lists what differs between the stored state of a
// subscription and Stripe's, in a fixed field order; nil when they agree.
// The account hint is ignored (it is not stored).
func SubscriptionDiff(stored, stripe Subscription) []Difference {
	var out []Difference
	add := func(field, a, b string) {
		if a != b {
			out = append(out, Difference{field, a, b})
		}
	}
	add("status", string(stored.Status), string(stripe.Status))
	add("customer", stored.CustomerID, stripe.CustomerID)
	add("livemode", fmt.Sprint(stored.Livemode), fmt.Sprint(stripe.Livemode))
	add("currency", stored.Currency, stripe.Currency)
	add("price", joinItems(stored.Items, func(it Item) string { return it.PriceID }),
		joinItems(stripe.Items, func(it Item) string { return it.PriceID }))
	add("quantity", joinItems(stored.Items, func(it Item) string { return fmt.Sprint(it.Quantity) }),
		joinItems(stripe.Items, func(it Item) string { return fmt.Sprint(it.Quantity) }))
	if itemsDifferBeyondPriceQuantity(stored.Items, stripe.Items) {
		add("amount", joinItems(stored.Items, itemTerms), joinItems(stripe.Items, itemTerms))
	}
	add("items_incomplete", fmt.Sprint(stored.ItemsIncomplete), fmt.Sprint(stripe.ItemsIncomplete))
	if !driftSameTime(stored.CurrentPeriodStart, stripe.CurrentPeriodStart) || !driftSameTime(stored.CurrentPeriodEnd, stripe.CurrentPeriodEnd) {
		out = append(out, Difference{"period", fmtTime(stored.CurrentPeriodStart) + ".." + fmtTime(stored.CurrentPeriodEnd),
			fmtTime(stripe.CurrentPeriodStart) + ".." + fmtTime(stripe.CurrentPeriodEnd)})
	}
	if !driftSameTime(stored.TrialStart, stripe.TrialStart) || !driftSameTime(stored.TrialEnd, stripe.TrialEnd) {
		out = append(out, Difference{"trial", fmtTime(stored.TrialStart) + ".." + fmtTime(stored.TrialEnd),
			fmtTime(stripe.TrialStart) + ".." + fmtTime(stripe.TrialEnd)})
	}
	if !driftSameTime(stored.CancelAt, stripe.CancelAt) || !driftSameTime(stored.CanceledAt, stripe.CanceledAt) ||
		stored.CancelAtPeriodEnd != stripe.CancelAtPeriodEnd {
		out = append(out, Difference{"cancel", cancelTerms(stored), cancelTerms(stripe)})
	}
	if !driftSameTime(stored.EndedAt, stripe.EndedAt) {
		add("ended", fmtTime(stored.EndedAt), fmtTime(stripe.EndedAt))
	}
	if !driftSameTime(stored.Created, stripe.Created) || !driftSameTime(stored.StartDate, stripe.StartDate) {
		out = append(out, Difference{"created", fmtTime(stored.Created) + "/" + fmtTime(stored.StartDate),
			fmtTime(stripe.Created) + "/" + fmtTime(stripe.StartDate)})
	}
	add("collection_paused", fmt.Sprint(stored.CollectionPaused), fmt.Sprint(stripe.CollectionPaused))
	if !sameDiscounts(stored.Discounts, stripe.Discounts) {
		out = append(out, Difference{"discounts", discountTerms(stored.Discounts), discountTerms(stripe.Discounts)})
	}
	return out
}

// itemTerms renders an item's pricing terms, for the amount difference.
func itemTerms(it Item) string {
	return fmt.Sprintf("%s %d/%d%s", it.PriceID, it.UnitAmount, it.IntervalCount, it.Interval)
}

// itemsDifferBeyondPriceQuantity reports whether items differ in anything
// but price ID and quantity (amounts, intervals, usage, transforms).
func itemsDifferBeyondPriceQuantity(a, b []Item) bool {
	if len(a) != len(b) {
		return false // the price difference already says so
	}
	for i := range a {
		x, y := a[i], b[i]
		x.PriceID, x.Quantity, y.PriceID, y.Quantity = "", 0, "", 0
		if x != y {
			return true
		}
	}
	return false
}

func cancelTerms(s Subscription) string {
	return fmt.Sprintf("at_period_end=%t cancel_at=%s canceled_at=%s", s.CancelAtPeriodEnd, fmtTime(s.CancelAt), fmtTime(s.CanceledAt))
}

func discountTerms(ds []Discount) string {
	if len(ds) == 0 {
		return "-"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		if d.PercentOffBP > 0 {
			parts[i] = fmt.Sprintf("%d.%02d%%", d.PercentOffBP/100, d.PercentOffBP%100)
		} else {
			parts[i] = fmt.Sprintf("%d%s", d.AmountOff, d.Currency)
		}
		parts[i] += "/" + cmp.Or(d.Duration, "?") + " " + fmtTime(d.Start) + ".." + fmtTime(d.End)
	}
	return strings.Join(parts, ",")
}

func sameDiscounts(a, b []Discount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.PercentOffBP != y.PercentOffBP || x.AmountOff != y.AmountOff || x.Currency != y.Currency ||
			x.Duration != y.Duration || !driftSameTime(x.Start, y.Start) || !driftSameTime(x.End, y.End) {
			return false
		}
	}
	return true
}

// CompareSubscriptions compares stored subscriptions with Stripe's and
// returns the drift: missing, extra and changed subscriptions, ordered by
// kind (missing, changed, extra) and then subscription ID, so a report
// reads the same on every run.
func CompareSubscriptions(stored, stripe []Subscription) []Drift {
	have := make(map[string]Subscription, len(stored))
	for _, s := range stored {
		have[s.ID] = s
	}
	seen := make(map[string]bool, len(stripe))
	var out []Drift
	for _, st := range stripe {
		seen[st.ID] = true
		cur, ok := have[st.ID]
		if !ok {
			out = append(out, Drift{Kind: DriftMissing, CustomerID: st.CustomerID, SubscriptionID: st.ID,
				Diffs: []Difference{{"status", "-", string(st.Status)}}})
			continue
		}
		if d := SubscriptionDiff(cur, st); d != nil {
			out = append(out, Drift{Kind: DriftChanged, CustomerID: st.CustomerID, SubscriptionID: st.ID, Diffs: d})
		}
	}
	for _, s := range stored {
		if !seen[s.ID] {
			out = append(out, Drift{Kind: DriftExtra, CustomerID: s.CustomerID, SubscriptionID: s.ID,
				Diffs: []Difference{{"status", string(s.Status), "-"}}})
		}
	}
	SortDrift(out)
	return out
}

var driftOrder = map[DriftKind]int{DriftMissing: 0, DriftChanged: 1, DriftExtra: 2, DriftCustomerDeleted: 3}

// SortDrift orders drift by kind, then customer and subscription ID.
func SortDrift(d []Drift) {
	slices.SortStableFunc(d, func(a, b Drift) int {
		if c := cmp.Compare(driftOrder[a.Kind], driftOrder[b.Kind]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.SubscriptionID, b.SubscriptionID); c != 0 {
			return c
		}
		return cmp.Compare(a.CustomerID, b.CustomerID)
	})
}
