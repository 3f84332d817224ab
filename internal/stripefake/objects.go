package stripefake

import (
	"encoding/json"
	"fmt"
	"time"
)

// API versions whose object shapes the fake renders.
const (
	// Version20231016 carries current_period_start/end on the subscription
	// and a single "discount".
	Version20231016 = "2023-10-16"
	// Version20250331 carries current_period_start/end on each item and a
	// "discounts" list only.
	Version20250331 = "2025-03-31.basil"
)

// The fake personal data every object carries, so a test can dump the
// database and prove none of it was stored. Keep each value distinctive:
// a test searches for it as a substring of every stored row.
const (
	PersonalName        = "Ada Lovelace-Byron"
	PersonalEmail       = "ada.lovelace@analytical.example"
	PersonalPhone       = "+44 20 7946 0958"
	PersonalLine1       = "12 Analytical Engine Row"
	PersonalCity        = "Marylebone-upon-Thames"
	PersonalPostalCode  = "NW1 6XE"
	PersonalTaxID       = "GB987654321"
	PersonalCardLast4   = "4917"
	PersonalFingerprint = "Fp8yLovelaceQx2Z"
	PersonalDescription = "Ada's analytical subscription (call before renewal)"
	PersonalNote        = "VIP: prefers calls after 6pm, wife Annabella"
	PersonalIP          = "203.0.113.77"
)

// PersonalStrings lists the fake personal values the fake's objects carry
// that a search of stored rows can find. The card's last four digits are
// planted too but not listed: four digits occur by chance in UUIDs and
// timestamps (as in webhooks/testdata/pii.txt).
func PersonalStrings() []string {
	return []string{PersonalName, PersonalEmail, PersonalPhone, PersonalLine1, PersonalCity,
		PersonalPostalCode, PersonalTaxID, PersonalFingerprint,
		PersonalDescription, PersonalNote, PersonalIP}
}

// Customer is a fake Stripe customer. Personal fields are always filled
// with the Personal* values.
type Customer struct {
	ID        string
	Created   time.Time
	Livemode  bool
	AccountID string // metadata.account_id ("" for none)
	// Deleted customers answer GET with {"deleted": true} and leave lists.
	Deleted bool
	// TestClock is the test clock (clock_...) the customer is on; "" for none.
	TestClock string
}

// Item is one subscription item of a fake subscription.
type Item struct {
	PriceID    string
	ProductID  string
	UnitAmount int64
	Interval   string // month, year, ...
	Quantity   int64
}

// Subscription is a fake Stripe subscription.
type Subscription struct {
	ID                string
	CustomerID        string
	Status            string
	Created           time.Time
	Livemode          bool
	Currency          string
	Items             []Item
	PeriodStart       time.Time
	PeriodEnd         time.Time
	TrialStart        *time.Time
	TrialEnd          *time.Time
	CancelAtPeriodEnd bool
	CanceledAt        *time.Time
	EndedAt           *time.Time
	AccountID         string // metadata.account_id ("" for none)
	// APIVersion picks the object shape: Version20231016 (the default) or
	// Version20250331.
	APIVersion string
	// ExpandCustomer renders "customer" as an expanded customer object
	// (with its personal fields) instead of an ID.
	ExpandCustomer bool
	// TestClock is the test clock of the subscription's customer; "" for none.
	TestClock string
	// Discounts are listed as bare IDs in "discounts", expanded (with
	// their coupons, and the coupon's name as fake personal data) when the
	// request says expand[]=discounts.
	Discounts []Discount
}

// Discount is a discount on a fake subscription.
type Discount struct {
	ID       string
	Coupon   Coupon
	Start    time.Time
	End      *time.Time
	Livemode bool
}

// Coupon is a fake coupon; GET /v1/coupons/{id} answers it.
type Coupon struct {
	ID         string
	PercentOff float64 // 0: none
	AmountOff  int64   // 0: none
	Currency   string
	Duration   string
}

// JSON renders the coupon, its name a piece of fake personal data.
func (c Coupon) JSON() map[string]any {
	o := map[string]any{"id": c.ID, "object": "coupon", "duration": c.Duration, "name": PersonalName + " coupon",
		"percent_off": nil, "amount_off": nil, "currency": nil, "valid": true, "metadata": metadata("")}
	if c.PercentOff > 0 {
		o["percent_off"] = c.PercentOff
	}
	if c.AmountOff > 0 {
		o["amount_off"], o["currency"] = c.AmountOff, c.Currency
	}
	return o
}

// JSON renders the discount in the 2023-10-16 shape (coupon expanded).
func (d Discount) JSON(customerID, subscriptionID string) map[string]any {
	return map[string]any{"id": d.ID, "object": "discount", "coupon": d.Coupon.JSON(), "customer": customerID,
		"subscription": subscriptionID, "start": unix(d.Start), "end": unixPtr(d.End), "invoice": nil,
		"promotion_code": nil}
}

func clockRef(id string) any {
	if id == "" {
		return nil
	}
	return id
}

func unix(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

func unixPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return unix(*t)
}

func address() map[string]any {
	return map[string]any{"line1": PersonalLine1, "line2": nil, "city": PersonalCity,
		"postal_code": PersonalPostalCode, "state": nil, "country": "GB"}
}

func metadata(accountID string) map[string]any {
	m := map[string]any{"note": PersonalNote, "contact": PersonalEmail}
	if accountID != "" {
		m["account_id"] = accountID
	}
	return m
}

func paymentMethod(id string) map[string]any {
	return map[string]any{
		"id": "pm_" + id, "object": "payment_method", "type": "card",
		"billing_details": map[string]any{"name": PersonalName, "email": PersonalEmail,
			"phone": PersonalPhone, "address": address()},
		"card": map[string]any{"brand": "visa", "last4": PersonalCardLast4, "fingerprint": PersonalFingerprint,
			"exp_month": 12, "exp_year": 2031, "country": "GB"},
	}
}

// JSON renders the customer as the API answers it.
func (c Customer) JSON() map[string]any {
	if c.Deleted {
		return map[string]any{"id": c.ID, "object": "customer", "deleted": true}
	}
	return map[string]any{
		"id": c.ID, "object": "customer", "created": unix(c.Created), "livemode": c.Livemode,
		"email": PersonalEmail, "name": PersonalName, "phone": PersonalPhone,
		"description": PersonalDescription, "address": address(),
		"shipping":          map[string]any{"name": PersonalName, "phone": PersonalPhone, "address": address()},
		"metadata":          metadata(c.AccountID),
		"preferred_locales": []string{"en-GB"},
		"currency":          "gbp", "balance": 0, "delinquent": false,
		"invoice_settings": map[string]any{"default_payment_method": nil, "footer": PersonalNote, "custom_fields": nil},
		"tax_exempt":       "none",
		"tax_ids": map[string]any{"object": "list", "has_more": false, "url": "/v1/customers/" + c.ID + "/tax_ids",
			"data": []any{map[string]any{"id": "txi_" + c.ID[4:], "object": "tax_id", "type": "gb_vat", "value": PersonalTaxID}}},
		"invoice_prefix": "ADA0001",
		"test_clock":     clockRef(c.TestClock),
	}
}

// JSON renders the subscription in its API version's shape. cust is the
// customer object to expand when ExpandCustomer is set.
func (s Subscription) JSON(cust *Customer) map[string]any {
	v := s.APIVersion
	if v == "" {
		v = Version20231016
	}
	items := make([]any, 0, len(s.Items))
	for i, it := range s.Items {
		price := map[string]any{
			"id": it.PriceID, "object": "price", "active": true, "currency": s.Currency,
			"product": it.ProductID, "unit_amount": it.UnitAmount,
			"unit_amount_decimal": fmt.Sprint(it.UnitAmount), "billing_scheme": "per_unit",
			"recurring": map[string]any{"interval": it.Interval, "interval_count": 1, "usage_type": "licensed"},
			"type":      "recurring", "nickname": nil, "metadata": map[string]any{},
		}
		item := map[string]any{
			"id": fmt.Sprintf("si_%s%d", s.ID[4:], i), "object": "subscription_item", "created": unix(s.Created),
			"quantity": it.Quantity, "price": price, "subscription": s.ID, "metadata": map[string]any{},
		}
		if v == Version20231016 {
			item["plan"] = map[string]any{"id": it.PriceID, "object": "plan", "amount": it.UnitAmount,
				"currency": s.Currency, "interval": it.Interval, "interval_count": 1, "product": it.ProductID,
				"usage_type": "licensed", "billing_scheme": "per_unit"}
		} else {
			item["current_period_start"] = unix(s.PeriodStart)
			item["current_period_end"] = unix(s.PeriodEnd)
		}
		items = append(items, item)
	}
	var customer any = s.CustomerID
	if s.ExpandCustomer && cust != nil {
		customer = cust.JSON()
	}
	o := map[string]any{
		"id": s.ID, "object": "subscription", "customer": customer, "status": s.Status,
		"created": unix(s.Created), "start_date": unix(s.Created), "livemode": s.Livemode, "currency": s.Currency,
		"items":       map[string]any{"object": "list", "has_more": false, "url": "/v1/subscription_items?subscription=" + s.ID, "data": items},
		"trial_start": unixPtr(s.TrialStart), "trial_end": unixPtr(s.TrialEnd),
		"cancel_at_period_end": s.CancelAtPeriodEnd, "cancel_at": nil,
		"canceled_at": unixPtr(s.CanceledAt), "ended_at": unixPtr(s.EndedAt),
		"description": PersonalDescription, "metadata": metadata(s.AccountID),
		"default_payment_method": paymentMethod(s.ID[4:]), "collection_method": "charge_automatically",
		"pause_collection": nil, "discounts": discountIDs(s.Discounts), "billing_cycle_anchor": unix(s.PeriodStart),
		"latest_invoice": nil, "pending_update": nil,
		"shipping_details": map[string]any{"name": PersonalName, "address": address()},
		"client_ip":        PersonalIP,
		"test_clock":       clockRef(s.TestClock),
	}
	if v == Version20231016 {
		o["current_period_start"] = unix(s.PeriodStart)
		o["current_period_end"] = unix(s.PeriodEnd)
		o["discount"] = nil
	}
	return o
}

// Event renders a Stripe event envelope around obj, as a webhook delivers
// it (simulate uses it; the fake API itself serves no events).
func Event(id, typ string, created time.Time, livemode bool, obj map[string]any) ([]byte, error) {
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created.Unix(), "livemode": livemode,
		"api_version": Version20231016, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": obj},
	})
	if err != nil {
		return nil, fmt.Errorf("render event: %w", err)
	}
	return b, nil
}

// TestClockJSON renders a test clock (test_helpers.test_clock) as its
// events carry it; its name is fake personal data, as a team's clock
// names often are. While advancing, frozen_time is still the time the
// clock left and target the time it advances to (status_details), as
// Stripe answers; target is ignored otherwise.
func TestClockJSON(id, status string, created, frozen, target time.Time) map[string]any {
	details := map[string]any{}
	if status == "advancing" {
		details["advancing"] = map[string]any{"target_frozen_time": target.Unix()}
	}
	return map[string]any{"id": id, "object": "test_helpers.test_clock", "created": created.Unix(),
		"deletes_after": created.Add(30 * 24 * time.Hour).Unix(), "frozen_time": frozen.Unix(), "livemode": false,
		"name": PersonalName + "'s renewal rehearsal", "status": status, "status_details": details}
}

// InvoiceJSON renders a subscription's invoice in the 2025-03-31 shape
// (the subscription under parent.subscription_details), with the fake
// personal data invoices carry.
func InvoiceJSON(id, customerID, subscriptionID, status string, attempts int64, nextAttempt *time.Time, clock string) map[string]any {
	return map[string]any{"id": id, "object": "invoice", "customer": customerID, "livemode": false, "status": status,
		"attempt_count": attempts, "next_payment_attempt": unixPtr(nextAttempt), "currency": "eur",
		"customer_email": PersonalEmail, "customer_name": PersonalName, "customer_phone": PersonalPhone,
		"customer_address": address(), "description": PersonalDescription,
		"parent": map[string]any{"type": "subscription_details",
			"subscription_details": map[string]any{"subscription": subscriptionID, "metadata": metadata("")}},
		"test_clock": clockRef(clock)}
}

func discountIDs(ds []Discount) []any {
	out := []any{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// ExpandedJSON is JSON with "discounts" expanded.
func (s Subscription) ExpandedJSON(cust *Customer) map[string]any {
	o := s.JSON(cust)
	ds := []any{}
	for _, d := range s.Discounts {
		ds = append(ds, d.JSON(s.CustomerID, s.ID))
	}
	o["discounts"] = ds
	return o
}
