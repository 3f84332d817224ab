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
	c := billing.Customer{ID: string(rd.Customer), Livemode: rd.Livemode}
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
