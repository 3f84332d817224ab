package webhooks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// rawInvoice is the whitelist of an invoice: customer_email, customer_name,
// customer_address, customer_phone, customer_shipping, customer_tax_ids,
// lines and every other field are never read. The subscription sits at
// "subscription" up to 2025-02-24 and at
// "parent.subscription_details.subscription" from 2025-03-31.
type rawInvoice struct {
	Object             string     `json:"object"`
	Customer           ref        `json:"customer"`
	Subscription       ref        `json:"subscription"`
	Livemode           bool       `json:"livemode"`
	AttemptCount       int64      `json:"attempt_count"`
	NextPaymentAttempt *int64     `json:"next_payment_attempt"`
	Parent             *rawParent `json:"parent"`
}

// rawParent is invoice.parent (2025-03-31+).
type rawParent struct {
	SubscriptionDetails *struct {
		Subscription ref `json:"subscription"`
	} `json:"subscription_details"`
}

// maxAttempts bounds attempt_count (an integer column); Stripe retries a
// handful of times.
const maxAttempts = 1_000_000

func decodeInvoice(raw []byte, eventType string) (billing.Invoice, error) {
	var ri rawInvoice
	if err := json.Unmarshal(raw, &ri); err != nil {
		if oor := numberTooLarge(err); oor != nil {
			return billing.Invoice{}, fmt.Errorf("invoice: %w", oor)
		}
		return billing.Invoice{}, fmt.Errorf("%w: invoice: %w", billing.ErrInvalid, err)
	}
	return invoiceFromRaw(&ri, eventType)
}

// invoiceFromRaw validates and converts a decoded invoice.
func invoiceFromRaw(ri *rawInvoice, eventType string) (billing.Invoice, error) {
	if ri.Object != "" && ri.Object != objectInvoice {
		return billing.Invoice{}, invalid("object is not an invoice")
	}
	if ri.AttemptCount < 0 || ri.AttemptCount > maxAttempts {
		return billing.Invoice{}, outOfRange("invoice attempt_count")
	}
	inv := billing.Invoice{
		Livemode:           ri.Livemode,
		AttemptCount:       ri.AttemptCount,
		NextPaymentAttempt: unixPtr(ri.NextPaymentAttempt),
		Status:             billing.InvoicePaid,
	}
	if eventType == TypeInvoicePaymentFailed {
		inv.Status = billing.InvoicePaymentFailed
	}
	sub := string(ri.Subscription)
	if sub == "" && ri.Parent != nil && ri.Parent.SubscriptionDetails != nil {
		sub = string(ri.Parent.SubscriptionDetails.Subscription)
	}
	// A one-off invoice or a guest without customer carries nothing we
	// keep: IDs stay empty and the store ignores it.
	if reSubscriptionID.MatchString(sub) {
		inv.SubscriptionID = sub
	} else if sub != "" {
		return billing.Invoice{}, invalid("invoice subscription")
	}
	if c := string(ri.Customer); reCustomerID.MatchString(c) {
		inv.CustomerID = c
	} else if c != "" {
		return billing.Invoice{}, invalid("invoice customer")
	}
	return inv, nil
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
