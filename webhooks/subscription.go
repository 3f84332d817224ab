package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/billingd/billingd/billing"
)

// rawSubscription is the whitelist of a subscription object in both API
// shapes: up to 2025-02-24 the current period sits on the subscription and
// a single "discount" object is present; from 2025-03-31 the period moved
// onto each item and only "discounts" (IDs, or objects when expanded)
// remain. description, default_payment_method, metadata other than
// account_id and every other field are never read. pending_update is read
// for the scheduled change only (its expiry, prices and quantities): it is
// not in force until paid, so entitlement and revenue ignore it.
type rawSubscription struct {
	ID                 string    `json:"id"`
	Object             string    `json:"object"`
	Customer           ref       `json:"customer"`
	Livemode           bool      `json:"livemode"`
	Status             string    `json:"status"`
	Currency           string    `json:"currency"`
	Created            *int64    `json:"created"`
	StartDate          *int64    `json:"start_date"`
	CurrentPeriodStart *int64    `json:"current_period_start"`
	CurrentPeriodEnd   *int64    `json:"current_period_end"`
	TrialStart         *int64    `json:"trial_start"`
	TrialEnd           *int64    `json:"trial_end"`
	CancelAt           *int64    `json:"cancel_at"`
	CancelAtPeriodEnd  bool      `json:"cancel_at_period_end"`
	CanceledAt         *int64    `json:"canceled_at"`
	EndedAt            *int64    `json:"ended_at"`
	PauseCollection    *struct{} `json:"pause_collection"`
	Metadata           *metadata `json:"metadata"`
	Items              struct {
		Data    []rawItem `json:"data"`
		HasMore bool      `json:"has_more"`
	} `json:"items"`
	Discount        optDiscount       `json:"discount"`
	Discounts       []discountEntry   `json:"discounts"`
	PendingUpdate   *rawPendingUpdate `json:"pending_update"`
	TestClock       ref               `json:"test_clock"` // also a customer's
	DefaultTaxRates []rawTaxRate      `json:"default_tax_rates"`
	AutomaticTax    *struct {
		Enabled bool `json:"enabled"`
	} `json:"automatic_tax"`
}

// rawTaxRate is a tax rate object as amounts only (its display name,
// jurisdiction and description are merchant text and are not read). An
// element that is not an object (an unexpanded ID) is skipped.
type rawTaxRate struct {
	Percentage *float64
	Inclusive  bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *rawTaxRate) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var o struct {
		Percentage *float64 `json:"percentage"`
		Inclusive  bool     `json:"inclusive"`
	}
	if json.Unmarshal(b, &o) == nil {
		r.Percentage, r.Inclusive = o.Percentage, o.Inclusive
	}
	return nil
}

// inclusiveBP sums the inclusive rates of a list, in hundredths of a
// percent; absurd percentages are ignored.
func inclusiveBP(rates []rawTaxRate) int64 {
	var bp int64
	for _, r := range rates {
		if r.Inclusive && r.Percentage != nil && *r.Percentage > 0 && *r.Percentage <= 100 {
			bp += int64(math.Round(*r.Percentage * 100))
		}
	}
	return bp
}

// optDiscount is a "discount" field that tells whether it was present:
// null says "no discount", absent says nothing.
type optDiscount struct {
	present bool
	d       *rawDiscount
}

// UnmarshalJSON implements json.Unmarshaler (called for null too).
func (o *optDiscount) UnmarshalJSON(b []byte) error {
	o.present, o.d = true, nil
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var d rawDiscount
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	o.d = &d
	return nil
}

type rawRecurring struct {
	Interval      string `json:"interval"`
	IntervalCount int64  `json:"interval_count"`
	UsageType     string `json:"usage_type"`
}

type rawTransform struct {
	DivideBy int64  `json:"divide_by"`
	Round    string `json:"round"`
}

type rawPrice struct {
	ID                string        `json:"id"`
	Product           ref           `json:"product"`
	Currency          string        `json:"currency"`
	UnitAmount        *int64        `json:"unit_amount"`
	UnitAmountDecimal *string       `json:"unit_amount_decimal"`
	BillingScheme     string        `json:"billing_scheme"`
	Recurring         *rawRecurring `json:"recurring"`
	TransformQuantity *rawTransform `json:"transform_quantity"`
	TaxBehavior       string        `json:"tax_behavior"`
}

// rawPlan is the legacy plan on an item, read only when price is absent.
type rawPlan struct {
	ID             string        `json:"id"`
	Product        ref           `json:"product"`
	Currency       string        `json:"currency"`
	Amount         *int64        `json:"amount"`
	AmountDecimal  *string       `json:"amount_decimal"`
	BillingScheme  string        `json:"billing_scheme"`
	Interval       string        `json:"interval"`
	IntervalCount  int64         `json:"interval_count"`
	UsageType      string        `json:"usage_type"`
	TransformUsage *rawTransform `json:"transform_usage"`
}

type rawItem struct {
	Quantity           *int64       `json:"quantity"`
	Price              *rawPrice    `json:"price"`
	Plan               *rawPlan     `json:"plan"`
	CurrentPeriodStart *int64       `json:"current_period_start"`
	CurrentPeriodEnd   *int64       `json:"current_period_end"`
	TaxRates           []rawTaxRate `json:"tax_rates"`
}

type rawCoupon struct {
	PercentOff *float64 `json:"percent_off"`
	AmountOff  *int64   `json:"amount_off"`
	Currency   string   `json:"currency"`
	Duration   string   `json:"duration"`
}

// rawDiscount reads the coupon (2023-10-16: "coupon"; 2025-03-31+:
// "source.coupon", expanded) as amounts only; its name and ID are merchant
// free text and are not kept.
type rawDiscount struct {
	ID     string     `json:"id"`
	Coupon *rawCoupon `json:"coupon"`
	Source *struct {
		Coupon couponRef `json:"coupon"`
	} `json:"source"`
	Start *int64 `json:"start"`
	End   *int64 `json:"end"`
}

// subscriptionObject decodes customer.subscription.* events.
var subscriptionObject = objectDecoder{
	union: func(o *rawObject, _ objectInput, ev billing.Event) (billing.Event, error) {
		s, err := subscriptionFromRaw(&o.rawSubscription)
		ev.Subscription = &s
		return ev, err
	},
	exact: func(raw []byte, _ objectInput, ev billing.Event) (billing.Event, error) {
		s, err := DecodeSubscription(raw)
		ev.Subscription = &s
		return ev, err
	},
}

// DecodeSubscription reads a bare Stripe subscription object (an event's
// data.object or an API response, 2023-10-16 or 2025-03-31+ shape) into a
// billing.Subscription, through each item's price. Errors wrap
// billing.ErrInvalid. The account hint (metadata.account_id) is returned in
// AccountHint and nothing else from metadata is read.
//
// Discounts: the 2023-10-16 "discount" object is read; "discounts" entries
// are read when expanded into objects. Unexpanded discount IDs carry no
// amounts and are skipped: such a subscription's MRR ignores the coupon
// until reconcile fetches it with expand[]=discounts.
func DecodeSubscription(raw []byte) (billing.Subscription, error) {
	var rs rawSubscription
	if err := json.Unmarshal(raw, &rs); err != nil {
		return billing.Subscription{}, subscriptionJSONError(err)
	}
	return subscriptionFromRaw(&rs)
}

// subscriptionJSONError is the error of a subscription whose bytes did not
// decode, the same whether it came alone or in a list page.
func subscriptionJSONError(err error) error {
	if oor := numberTooLarge(err); oor != nil {
		return fmt.Errorf("subscription: %w", oor)
	}
	return fmt.Errorf("%w: subscription: %w", billing.ErrInvalid, err)
}

// subscriptionFromRaw validates and converts a decoded subscription.
func subscriptionFromRaw(rs *rawSubscription) (billing.Subscription, error) {
	if rs.Object != "" && rs.Object != objectSub {
		return billing.Subscription{}, invalid("object is not a subscription")
	}
	if !reSubscriptionID.MatchString(rs.ID) {
		return billing.Subscription{}, invalid("subscription id")
	}
	if !reCustomerID.MatchString(string(rs.Customer)) {
		return billing.Subscription{}, invalid("subscription customer")
	}
	s := billing.Subscription{
		ID:                 rs.ID,
		CustomerID:         string(rs.Customer),
		Livemode:           rs.Livemode,
		Status:             billing.Status(rs.Status),
		Currency:           strings.ToLower(rs.Currency),
		ItemsIncomplete:    rs.Items.HasMore,
		Created:            unixPtr(rs.Created),
		StartDate:          unixPtr(rs.StartDate),
		CurrentPeriodStart: unixPtr(rs.CurrentPeriodStart),
		CurrentPeriodEnd:   unixPtr(rs.CurrentPeriodEnd),
		TrialStart:         unixPtr(rs.TrialStart),
		TrialEnd:           unixPtr(rs.TrialEnd),
		CancelAt:           unixPtr(rs.CancelAt),
		CancelAtPeriodEnd:  rs.CancelAtPeriodEnd,
		CanceledAt:         unixPtr(rs.CanceledAt),
		EndedAt:            unixPtr(rs.EndedAt),
		CollectionPaused:   rs.PauseCollection != nil,
		AutomaticTax:       rs.AutomaticTax != nil && rs.AutomaticTax.Enabled,
		AccountHint:        rs.Metadata.hint(),
		TestClock:          testClockOf(rs.TestClock, rs.Livemode),
		Items:              make([]billing.Item, 0, len(rs.Items.Data)),
		Discounts:          []billing.Discount{},
	}
	if !s.Status.Valid() {
		return billing.Subscription{}, invalid("subscription status")
	}
	for i := range rs.Items.Data {
		it, cur, err := decodeItem(&rs.Items.Data[i])
		if err != nil {
			return billing.Subscription{}, err
		}
		// Stripe: an item's own tax rates replace the subscription's
		// default ones.
		if rates := rs.Items.Data[i].TaxRates; len(rates) > 0 {
			it.InclusiveTaxBP = inclusiveBP(rates)
		} else {
			it.InclusiveTaxBP = inclusiveBP(rs.DefaultTaxRates)
		}
		if s.Currency == "" {
			s.Currency = cur
		}
		s.Items = append(s.Items, it)
		// 2025-03-31+: the period lives on the items. They share one
		// billing cycle; take the widest span in case they do not.
		ri := &rs.Items.Data[i]
		if rs.CurrentPeriodStart == nil {
			if t := unixPtr(ri.CurrentPeriodStart); t != nil && (s.CurrentPeriodStart == nil || t.Before(*s.CurrentPeriodStart)) {
				s.CurrentPeriodStart = t
			}
		}
		if rs.CurrentPeriodEnd == nil {
			if t := unixPtr(ri.CurrentPeriodEnd); t != nil && (s.CurrentPeriodEnd == nil || t.After(*s.CurrentPeriodEnd)) {
				s.CurrentPeriodEnd = t
			}
		}
	}
	if !reCurrency.MatchString(s.Currency) {
		return billing.Subscription{}, invalid("subscription currency")
	}
	ds, err := decodeDiscounts(rs.Discount.d, rs.Discounts)
	if err != nil {
		return billing.Subscription{}, err
	}
	s.Discounts = ds
	if s.PendingUpdate, err = pendingFromRaw(rs.PendingUpdate); err != nil {
		return billing.Subscription{}, err
	}
	return s, nil
}

// decodeItem reads one item through its price (the legacy plan only when
// the price is absent) and returns the price's currency.
func decodeItem(ri *rawItem) (billing.Item, string, error) {
	var it billing.Item
	if ri.Quantity != nil {
		if *ri.Quantity > maxQuantity {
			return it, "", outOfRange("item quantity")
		}
		it.Quantity = max(*ri.Quantity, 0)
	}
	var (
		cur       string
		amount    *int64
		dec       *string
		transform *rawTransform
	)
	switch {
	case ri.Price != nil:
		p := ri.Price
		it.PriceID, it.ProductID = p.ID, string(p.Product)
		it.BillingScheme = p.BillingScheme
		switch p.TaxBehavior {
		case "inclusive", "exclusive", "unspecified":
			it.TaxBehavior = p.TaxBehavior
		}
		if p.Recurring != nil {
			it.Interval = billing.Interval(p.Recurring.Interval)
			it.IntervalCount = p.Recurring.IntervalCount
			it.UsageType = p.Recurring.UsageType
		}
		cur, amount, dec, transform = p.Currency, p.UnitAmount, p.UnitAmountDecimal, p.TransformQuantity
	case ri.Plan != nil:
		p := ri.Plan
		it.PriceID, it.ProductID = p.ID, string(p.Product)
		it.BillingScheme = p.BillingScheme
		it.Interval, it.IntervalCount, it.UsageType = billing.Interval(p.Interval), p.IntervalCount, p.UsageType
		cur, amount, dec, transform = p.Currency, p.Amount, p.AmountDecimal, p.TransformUsage
	default:
		return it, "", invalid("subscription item without price")
	}
	if !reObjectID.MatchString(it.PriceID) {
		it.PriceID = ""
	}
	if !reObjectID.MatchString(it.ProductID) {
		it.ProductID = ""
	}
	if amount != nil {
		if *amount > maxAmount {
			return it, "", outOfRange("item unit_amount")
		}
		it.UnitAmount = max(*amount, 0)
	}
	if dec != nil && decimalTooLarge(*dec) {
		return it, "", outOfRange("item unit_amount_decimal")
	}
	if dec != nil && len(*dec) <= maxDecimalLen && reDecimal.MatchString(*dec) {
		it.UnitAmountDec = *dec
	}
	switch it.Interval {
	case billing.IntervalDay, billing.IntervalWeek, billing.IntervalMonth, billing.IntervalYear, "":
	default:
		return it, "", invalid("item interval")
	}
	if it.IntervalCount < 0 || it.IntervalCount > 1000 {
		return it, "", invalid("item interval_count")
	}
	switch it.UsageType {
	case "", "licensed", "metered":
	default:
		it.UsageType = "" // a future usage type: keep the item, value it as licensed
	}
	switch it.BillingScheme {
	case "", "per_unit", "tiered":
	default:
		it.BillingScheme = ""
	}
	if transform != nil && transform.DivideBy > maxQuantity {
		return it, "", outOfRange("item transform_quantity.divide_by")
	}
	if transform != nil && transform.DivideBy > 0 {
		it.TransformDivideBy = transform.DivideBy
		if transform.Round == "up" || transform.Round == "down" {
			it.TransformRound = transform.Round
		}
	}
	return it, strings.ToLower(cur), nil
}

// discountEntry is one element of "discounts": a discount ID (no amounts
// to read: id is kept so that a Stripe job can resolve it) or an expanded
// discount object. An element of any other shape (checkout sessions list
// {coupon: ID} pairs) is skipped rather than failing the event.
type discountEntry struct {
	d  *rawDiscount
	id string
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *discountEntry) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var id string
		if json.Unmarshal(b, &id) == nil && reDiscountID.MatchString(id) {
			e.id = id
		}
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var d rawDiscount
	if json.Unmarshal(b, &d) == nil {
		e.d = &d
	}
	return nil
}

// couponRef is discount.source.coupon (2025-03-31+): an ID, or the coupon
// when expanded. The ID is only handed to the Stripe job that fetches the
// coupon, never stored.
type couponRef struct {
	c  *rawCoupon
	id string
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *couponRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var id string
		if json.Unmarshal(b, &id) == nil && reObjectID.MatchString(id) {
			r.id = id
		}
		return nil
	}
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	var c rawCoupon
	if json.Unmarshal(b, &c) == nil {
		r.c = &c
	}
	return nil
}

// decodeDiscounts prefers the expanded "discounts" list (every discount in
// force); otherwise the single legacy "discount" (shapes that carry both
// list the same discount as a bare ID); otherwise the bare IDs, as
// unresolved discounts that a Stripe job resolves.
func decodeDiscounts(single *rawDiscount, list []discountEntry) ([]billing.Discount, error) {
	out := []billing.Discount{}
	expanded := false
	var bare []billing.Discount
	for _, e := range list {
		if e.d == nil {
			if e.id != "" {
				bare = append(bare, billing.Discount{ID: e.id})
			}
			continue
		}
		expanded = true
		d, ok, err := toDiscount(e.d)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	}
	switch {
	case expanded:
	case single != nil:
		d, ok, err := toDiscount(single)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d)
		}
	default:
		out = append(out, bare...)
	}
	return out, nil
}

func toDiscount(rd *rawDiscount) (billing.Discount, bool, error) {
	c := rd.Coupon
	if c == nil && rd.Source != nil {
		c = rd.Source.Coupon.c
	}
	if c == nil {
		if reDiscountID.MatchString(rd.ID) && rd.Source != nil && rd.Source.Coupon.id != "" {
			// The coupon arrived as a bare ID: resolved later by ID.
			return billing.Discount{ID: rd.ID, Start: unixPtr(rd.Start), End: unixPtr(rd.End)}, true, nil
		}
		return billing.Discount{}, false, nil
	}
	if c.AmountOff != nil && *c.AmountOff > maxAmount {
		return billing.Discount{}, false, outOfRange("coupon amount_off")
	}
	d := billing.Discount{Start: unixPtr(rd.Start), End: unixPtr(rd.End)}
	switch c.Duration {
	case "once", "repeating", "forever":
		d.Duration = c.Duration
	}
	switch {
	case c.PercentOff != nil && *c.PercentOff > 0 && *c.PercentOff <= 100:
		d.PercentOffBP = int64(math.Round(*c.PercentOff * 100))
	case c.AmountOff != nil && *c.AmountOff > 0:
		d.AmountOff = *c.AmountOff
		if cur := strings.ToLower(c.Currency); reCurrency.MatchString(cur) {
			d.Currency = cur
		}
	default:
		return billing.Discount{}, false, nil
	}
	return d, true, nil
}
