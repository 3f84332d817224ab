package webhooks

import (
	"encoding/json"
	"fmt"

	"github.com/billingd/billingd/billing"
)

// The customer.discount.* events: a discount object. Stripe sends them for
// discounts on a customer and on a subscription; only a customer's own
// discount (no subscription, item or invoice) is read, as that customer's
// discount from the event on (none after .deleted). A subscription's
// discount arrives with its subscription's events too, which are read
// instead: such an event records only the customer's row.
const (
	TypeCustomerDiscountCreated = "customer.discount.created"
	TypeCustomerDiscountUpdated = "customer.discount.updated"
	TypeCustomerDiscountDeleted = "customer.discount.deleted"
	objectDiscount              = "discount"
)

// rawDiscountObject is the whitelist of a discount object: IDs, coupon
// amounts and dates. The coupon's name and the promotion code are never
// read.
type rawDiscountObject struct {
	rawDiscount
	Object           string  `json:"object"`
	Customer         ref     `json:"customer"`
	Livemode         bool    `json:"livemode"`
	Subscription     ref     `json:"subscription"`
	SubscriptionItem *string `json:"subscription_item"`
	Invoice          *string `json:"invoice"`
}

// discountObject decodes customer.discount.* events into a Customer that
// carries its discount.
var discountObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		rd := rawDiscountObject{Object: o.Object, Customer: o.Customer, Livemode: o.Livemode, Subscription: o.Subscription,
			SubscriptionItem: o.SubscriptionItem, Invoice: o.InvoiceID}
		rd.ID, rd.Coupon, rd.Source, rd.Start, rd.End = o.ID, o.Coupon, o.Source, o.Start, o.End
		return discountEvent(&rd, in, ev)
	},
	exact: func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
		var rd rawDiscountObject
		if err := json.Unmarshal(raw, &rd); err != nil {
			if oor := numberTooLarge(err); oor != nil {
				return ev, fmt.Errorf("discount: %w", oor)
			}
			return ev, fmt.Errorf("%w: discount: %w", billing.ErrInvalid, err)
		}
		return discountEvent(&rd, in, ev)
	},
}

func discountEvent(rd *rawDiscountObject, in objectInput, ev billing.Event) (billing.Event, error) {
	if rd.Object != "" && rd.Object != objectDiscount {
		return ev, invalid("object is not a discount")
	}
	if !reCustomerID.MatchString(string(rd.Customer)) {
		return ev, invalid("discount customer")
	}
	// A discount object may not say its mode; the event does.
	c := billing.Customer{ID: string(rd.Customer), Livemode: rd.Livemode || ev.Livemode}
	own := rd.Subscription == "" && rd.SubscriptionItem == nil && rd.Invoice == nil
	if !own {
		ev.Customer = &c
		return ev, nil
	}
	var err error
	if in.eventType == TypeCustomerDiscountDeleted {
		err = setCustomerDiscount(&c, nil)
	} else {
		err = setCustomerDiscount(&c, &rd.rawDiscount)
	}
	ev.Customer = &c
	return ev, err
}

// DecodeDiscountResolutions reads a subscription fetched with its
// discounts expanded (any API version) into the amounts of each discount,
// by discount ID: what a Stripe job learns about discounts that arrived
// as bare IDs. Discounts without a readable coupon are left out.
func DecodeDiscountResolutions(raw []byte) ([]billing.DiscountResolution, error) {
	var rs struct {
		Discounts []discountEntry `json:"discounts"`
	}
	if err := json.Unmarshal(raw, &rs); err != nil {
		if oor := numberTooLarge(err); oor != nil {
			return nil, fmt.Errorf("subscription discounts: %w", oor)
		}
		return nil, fmt.Errorf("%w: subscription discounts: %w", billing.ErrInvalid, err)
	}
	var out []billing.DiscountResolution
	for _, e := range rs.Discounts {
		if e.d == nil || !reDiscountID.MatchString(e.d.ID) {
			continue
		}
		d, ok, err := toDiscount(e.d)
		if err != nil {
			return nil, err
		}
		if !ok || d.Unresolved() {
			continue
		}
		out = append(out, billing.DiscountResolution{DiscountID: e.d.ID, PercentOffBP: d.PercentOffBP,
			AmountOff: d.AmountOff, Currency: d.Currency, Duration: d.Duration, Start: d.Start, End: d.End})
	}
	return out, nil
}

// DecodeCouponResolution reads a fetched coupon as the amounts of the
// discount discountID (its dates stay those of the event that listed it).
// ok is false for a coupon that takes nothing off.
func DecodeCouponResolution(raw []byte, discountID string) (billing.DiscountResolution, bool, error) {
	var c rawCoupon
	if err := json.Unmarshal(raw, &c); err != nil {
		if oor := numberTooLarge(err); oor != nil {
			return billing.DiscountResolution{}, false, fmt.Errorf("coupon: %w", oor)
		}
		return billing.DiscountResolution{}, false, fmt.Errorf("%w: coupon: %w", billing.ErrInvalid, err)
	}
	if !reDiscountID.MatchString(discountID) {
		return billing.DiscountResolution{}, false, invalid("discount id")
	}
	d, ok, err := toDiscount(&rawDiscount{Coupon: &c})
	if err != nil || !ok {
		return billing.DiscountResolution{}, false, err
	}
	return billing.DiscountResolution{DiscountID: discountID, PercentOffBP: d.PercentOffBP, AmountOff: d.AmountOff,
		Currency: d.Currency, Duration: d.Duration}, true, nil
}
