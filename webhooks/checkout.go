package webhooks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// checkoutObject decodes checkout.session.completed; a client_reference_id
// is checked as of the event's creation.
var checkoutObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		cs, err := checkoutFromRaw(&rawCheckout{Object: o.Object, Customer: o.Customer, Subscription: o.Subscription,
			Livemode: o.Livemode, ClientReferenceID: o.ClientReferenceID}, in.links, in.created)
		ev.Checkout = &cs
		return ev, err
	},
	exact: func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
		cs, err := decodeCheckout(raw, in.links, in.created)
		ev.Checkout = &cs
		return ev, err
	},
}

// rawCheckout is the whitelist of a checkout session: customer_details
// (email, name, address, phone, tax IDs), custom_fields and the rest are
// never read.
type rawCheckout struct {
	Object            string `json:"object"`
	Customer          ref    `json:"customer"`
	Subscription      ref    `json:"subscription"`
	Livemode          bool   `json:"livemode"`
	ClientReferenceID string `json:"client_reference_id"`
}

func decodeCheckout(raw []byte, links *billing.LinkVerifier, at time.Time) (billing.CheckoutSession, error) {
	var rc rawCheckout
	if err := json.Unmarshal(raw, &rc); err != nil {
		return billing.CheckoutSession{}, fmt.Errorf("%w: checkout session: %w", billing.ErrInvalid, err)
	}
	return checkoutFromRaw(&rc, links, at)
}

// checkoutFromRaw validates and converts a decoded checkout session; at is
// the event's creation, when the checkout completed.
func checkoutFromRaw(rc *rawCheckout, links *billing.LinkVerifier, at time.Time) (billing.CheckoutSession, error) {
	if rc.Object != "" && rc.Object != objectCheckoutSes {
		return billing.CheckoutSession{}, invalid("object is not a checkout session")
	}
	cs := billing.CheckoutSession{Livemode: rc.Livemode}
	if c := string(rc.Customer); reCustomerID.MatchString(c) {
		cs.CustomerID = c
	} else if c != "" {
		return billing.CheckoutSession{}, invalid("checkout session customer")
	}
	if s := string(rc.Subscription); reSubscriptionID.MatchString(s) {
		cs.SubscriptionID = s
	}
	if rc.ClientReferenceID != "" {
		// An unsigned, forged or expired reference is dropped: the customer
		// is still recorded, just not linked from this hint.
		cs.AccountHint, cs.ReferenceRejected = links.Verify(rc.ClientReferenceID, at)
	}
	return cs, nil
}
