package webhooks

import (
	"encoding/json"
	"fmt"

	"github.com/billingd/billingd/billing"
)

// customerObject decodes customer.* events. customer.deleted sets Deleted
// whatever the object says.
var customerObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		c, err := customerFromRaw(&rawCustomer{ID: o.ID, Object: o.Object, Livemode: o.Livemode, Deleted: o.Deleted, Metadata: o.Metadata,
			TestClock: o.TestClock, Discount: o.Discount})
		return setCustomer(ev, in, c, err)
	},
	exact: func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
		c, err := DecodeCustomer(raw)
		return setCustomer(ev, in, c, err)
	},
}

// setCustomer puts a decoded customer into ev.
func setCustomer(ev billing.Event, in objectInput, c billing.Customer, err error) (billing.Event, error) {
	c.Deleted = c.Deleted || in.eventType == TypeCustomerDeleted
	ev.Customer = &c
	return ev, err
}

// rawCustomer is the whitelist of a customer object.
type rawCustomer struct {
	ID        string    `json:"id"`
	Object    string    `json:"object"`
	Livemode  bool      `json:"livemode"`
	Deleted   bool      `json:"deleted"`
	Created   int64     `json:"created"`
	Metadata  *metadata `json:"metadata"`
	TestClock ref       `json:"test_clock"`
	// Discount is the customer-level discount (coupon amounts only).
	Discount optDiscount `json:"discount"`
}

// DecodeCustomer reads a bare Stripe customer object (an event's
// data.object or an API response, any API version) into a billing.Customer:
// ID, livemode, deleted and metadata.account_id as a hint. Errors wrap
// billing.ErrInvalid.
func DecodeCustomer(raw []byte) (billing.Customer, error) {
	var rc rawCustomer
	if err := json.Unmarshal(raw, &rc); err != nil {
		return billing.Customer{}, customerJSONError(err)
	}
	return customerFromRaw(&rc)
}

// customerJSONError is the error of a customer whose bytes did not
// decode, the same whether it came alone or in a list page.
func customerJSONError(err error) error {
	return fmt.Errorf("%w: customer: %w", billing.ErrInvalid, err)
}

// customerFromRaw validates and converts a decoded customer.
func customerFromRaw(rc *rawCustomer) (billing.Customer, error) {
	if rc.Object != "" && rc.Object != objectCustomer {
		return billing.Customer{}, invalid("object is not a customer")
	}
	if !reCustomerID.MatchString(rc.ID) {
		return billing.Customer{}, invalid("customer id")
	}
	c := billing.Customer{ID: rc.ID, Livemode: rc.Livemode, Deleted: rc.Deleted, AccountHint: rc.Metadata.hint(),
		TestClock: testClockOf(rc.TestClock, rc.Livemode)}
	if rc.Discount.present && !rc.Deleted {
		if err := setCustomerDiscount(&c, rc.Discount.d); err != nil {
			return billing.Customer{}, err
		}
	}
	return c, nil
}

// setCustomerDiscount records on c that its discount is rd (nil: none).
func setCustomerDiscount(c *billing.Customer, rd *rawDiscount) error {
	c.DiscountsKnown, c.Discounts = true, []billing.Discount{}
	if rd == nil {
		return nil
	}
	d, ok, err := toDiscount(rd)
	if err != nil || !ok {
		return err
	}
	c.Discounts = append(c.Discounts, d)
	if d.Unresolved() {
		c.DiscountCoupons = map[string]string{d.ID: rd.Source.Coupon.id}
	}
	return nil
}
