package webhooks

import (
	"encoding/json"
	"fmt"
	"strings"

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
	Currency           string     `json:"currency"`
	Lines              *rawLines  `json:"lines"`
}

// rawLines is invoice.lines: the first page of the invoice's lines.
type rawLines struct {
	Data    []rawLine `json:"data"`
	HasMore bool      `json:"has_more"`
}

// rawLine is the whitelist of an invoice line in both API shapes:
// amounts, period and the price's ID and kind. description, metadata,
// discounts' names and everything else are never read. Up to 2025-02-24 a
// subscription line has type "subscription", its price expanded, and
// amount_excluding_tax or tax_amounts; from 2025-03-31 it has parent
// subscription_item_details, pricing.price_details.price (an ID) and
// taxes.
type rawLine struct {
	Type               string `json:"type"`
	Amount             *int64 `json:"amount"`
	AmountExcludingTax *int64 `json:"amount_excluding_tax"`
	Period             *struct {
		Start *int64 `json:"start"`
		End   *int64 `json:"end"`
	} `json:"period"`
	Price   *rawPrice `json:"price"`
	Pricing *struct {
		PriceDetails *struct {
			Price ref `json:"price"`
		} `json:"price_details"`
	} `json:"pricing"`
	Parent *struct {
		Type string `json:"type"`
	} `json:"parent"`
	TaxAmounts []struct {
		Amount    int64 `json:"amount"`
		Inclusive bool  `json:"inclusive"`
	} `json:"tax_amounts"`
	Taxes []struct {
		Amount      int64  `json:"amount"`
		TaxBehavior string `json:"tax_behavior"`
	} `json:"taxes"`
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
			Livemode: o.Livemode, AttemptCount: o.AttemptCount, NextPaymentAttempt: o.NextPaymentAttempt, Parent: o.Parent,
			Currency: o.Currency, Lines: o.Lines}, in.eventType)
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
	if inv.Status == billing.InvoicePaid && inv.SubscriptionID != "" && ri.Lines != nil {
		if err := readLines(&inv, ri); err != nil {
			return billing.Invoice{}, err
		}
	}
	return inv, nil
}

// maxLines bounds the lines kept of one invoice (Stripe lists at most 10
// in an event, more when fetched).
const maxLines = 1000

// readLines keeps the subscription lines of a paid invoice: price,
// kind, period and amounts with and without tax.
func readLines(inv *billing.Invoice, ri *rawInvoice) error {
	cur := strings.ToLower(ri.Currency)
	if !reCurrency.MatchString(cur) {
		return nil // no currency: the amounts mean nothing
	}
	inv.Currency = cur
	inv.LinesIncomplete = ri.Lines.HasMore
	for i := range ri.Lines.Data {
		l := &ri.Lines.Data[i]
		sub := l.Type == "subscription" || (l.Parent != nil && l.Parent.Type == "subscription_item_details")
		if !sub || l.Amount == nil || l.Period == nil || len(inv.Lines) >= maxLines {
			continue
		}
		start, end := unixPtr(l.Period.Start), unixPtr(l.Period.End)
		if start == nil || end == nil || end.Before(*start) {
			continue
		}
		if *l.Amount > maxAmount || *l.Amount < -maxAmount {
			return outOfRange("invoice line amount")
		}
		line := billing.InvoiceLine{PeriodStart: *start, PeriodEnd: *end, Amount: *l.Amount, Net: *l.Amount}
		switch {
		case l.Price != nil:
			line.PriceID = l.Price.ID
			switch {
			case l.Price.Recurring != nil && l.Price.Recurring.UsageType == "metered":
				line.Usage = billing.UsageMetered
			case l.Price.BillingScheme == "tiered":
				line.Usage = billing.UsageTiered
			case l.Price.BillingScheme != "" || l.Price.Recurring != nil:
				line.Usage = billing.UsageFixed
			}
		case l.Pricing != nil && l.Pricing.PriceDetails != nil:
			line.PriceID = string(l.Pricing.PriceDetails.Price)
		}
		if !reObjectID.MatchString(line.PriceID) {
			continue
		}
		switch {
		case l.AmountExcludingTax != nil:
			if *l.AmountExcludingTax > maxAmount || *l.AmountExcludingTax < -maxAmount {
				return outOfRange("invoice line amount_excluding_tax")
			}
			line.Net = *l.AmountExcludingTax
		default:
			for _, t := range l.TaxAmounts {
				if t.Inclusive && t.Amount > 0 && t.Amount <= maxAmount {
					line.Net -= t.Amount
				}
			}
			for _, t := range l.Taxes {
				if t.TaxBehavior == "inclusive" && t.Amount > 0 && t.Amount <= maxAmount {
					line.Net -= t.Amount
				}
			}
		}
		inv.Lines = append(inv.Lines, line)
	}
	return nil
}
