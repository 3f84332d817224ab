package webhooks

import (
	"encoding/json"
	"fmt"

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

// invoiceObject decodes invoice.paid and invoice.payment_failed: the
// event type says which fact the invoice records.
var invoiceObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		inv, err := invoiceFromRaw(&rawInvoice{Object: o.Object, Customer: o.Customer, Subscription: o.Subscription,
			Livemode: o.Livemode, AttemptCount: o.AttemptCount, NextPaymentAttempt: o.NextPaymentAttempt, Parent: o.Parent}, in.eventType)
		ev.Invoice = &inv
		return ev, err
	},
	exact: func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
		inv, err := decodeInvoice(raw, in.eventType)
		ev.Invoice = &inv
		return ev, err
	},
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
