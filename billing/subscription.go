package billing

import "time"

// Status is a Stripe subscription status.
type Status string

// The subscription statuses Stripe documents.
const (
	StatusIncomplete        Status = "incomplete"
	StatusIncompleteExpired Status = "incomplete_expired"
	StatusTrialing          Status = "trialing"
	StatusActive            Status = "active"
	StatusPastDue           Status = "past_due"
	StatusCanceled          Status = "canceled"
	StatusUnpaid            Status = "unpaid"
	StatusPaused            Status = "paused"
)

// Valid reports whether s is a status Stripe documents.
func (s Status) Valid() bool {
	switch s {
	case StatusIncomplete, StatusIncompleteExpired, StatusTrialing, StatusActive,
		StatusPastDue, StatusCanceled, StatusUnpaid, StatusPaused:
		return true
	}
	return false
}

// Interval is a recurring price's billing interval.
type Interval string

// The intervals Stripe documents.
const (
	IntervalDay   Interval = "day"
	IntervalWeek  Interval = "week"
	IntervalMonth Interval = "month"
	IntervalYear  Interval = "year"
)

// Item is one subscription item, read through its price. Only IDs, integers,
// enums and the decimal amount string are kept: nothing a person typed.
type Item struct {
	PriceID       string   `json:"price_id"`
	ProductID     string   `json:"product_id,omitempty"`
	Quantity      int64    `json:"quantity"`
	UnitAmount    int64    `json:"unit_amount"`                   // minor units
	UnitAmountDec string   `json:"unit_amount_decimal,omitempty"` // minor units, may be fractional ("12.5"); digits and one dot only
	Interval      Interval `json:"interval"`
	IntervalCount int64    `json:"interval_count"`
	UsageType     string   `json:"usage_type,omitempty"`     // licensed | metered
	BillingScheme string   `json:"billing_scheme,omitempty"` // per_unit | tiered
	// TransformDivideBy/TransformRound are price.transform_quantity: the billed
	// quantity is quantity / divide_by rounded "up" or "down".
	TransformDivideBy int64  `json:"transform_divide_by,omitempty"`
	TransformRound    string `json:"transform_round,omitempty"`
	// TaxBehavior is price.tax_behavior (inclusive | exclusive |
	// unspecified): an inclusive price's amount holds the tax.
	TaxBehavior string `json:"tax_behavior,omitempty"`
	// InclusiveTaxBP is the sum of the inclusive tax rates that apply to
	// the item (its own tax_rates, else the subscription's
	// default_tax_rates), in hundredths of a percent: 19% = 1900.
	InclusiveTaxBP int64 `json:"inclusive_tax_bp,omitempty"`
}

// Metered reports whether the item bills usage and so has no fixed MRR.
func (it Item) Metered() bool { return it.UsageType == "metered" }

// Tiered reports whether the item's price is tiered (no fixed unit amount).
func (it Item) Tiered() bool { return it.BillingScheme == "tiered" }

// Discount is a coupon in force on a subscription, as amounts only. The
// coupon's ID and name are merchant free text and are not kept.
type Discount struct {
	// ID is set only while the discount's amounts are unknown: a
	// 2025-03-31+ payload lists the discount as a bare ID (di_...), or its
	// coupon as a bare ID. It still takes precedence over the customer's
	// discount, and counts nothing until a Stripe job resolves it
	// (DiscountResolution).
	ID           string     `json:"id,omitempty"`
	PercentOffBP int64      `json:"percent_off_bp,omitempty"` // hundredths of a percent: 25.5% = 2550
	AmountOff    int64      `json:"amount_off,omitempty"`     // minor units per invoice
	Currency     string     `json:"currency,omitempty"`
	Duration     string     `json:"duration,omitempty"` // once | repeating | forever
	Start        *time.Time `json:"start,omitempty"`
	End          *time.Time `json:"end,omitempty"`
}

// Subscription is the non-personal state billingd keeps for one Stripe
// subscription: what entitlement and revenue need, and nothing else.
type Subscription struct {
	ID                 string     `json:"id"`
	CustomerID         string     `json:"customer_id"`
	Livemode           bool       `json:"livemode"`
	Status             Status     `json:"status"`
	Currency           string     `json:"currency"`
	Items              []Item     `json:"items"`
	ItemsIncomplete    bool       `json:"items_incomplete"` // items.has_more was true: the list is partial
	Discounts          []Discount `json:"discounts"`
	Created            *time.Time `json:"created,omitempty"`
	StartDate          *time.Time `json:"start_date,omitempty"`
	CurrentPeriodStart *time.Time `json:"current_period_start,omitempty"`
	CurrentPeriodEnd   *time.Time `json:"current_period_end,omitempty"`
	TrialStart         *time.Time `json:"trial_start,omitempty"`
	TrialEnd           *time.Time `json:"trial_end,omitempty"`
	CancelAt           *time.Time `json:"cancel_at,omitempty"`
	CancelAtPeriodEnd  bool       `json:"cancel_at_period_end"`
	CanceledAt         *time.Time `json:"canceled_at,omitempty"`
	EndedAt            *time.Time `json:"ended_at,omitempty"`
	// CollectionPaused is pause_collection set on a subscription: invoices
	// are not collected, but the status stays what it is (not "paused").
	CollectionPaused bool `json:"collection_paused"`
	// PendingUpdate is pending_update: changes waiting for their invoice
	// to be paid (nil: none).
	PendingUpdate *PendingUpdate `json:"pending_update,omitempty"`
	// AutomaticTax is automatic_tax.enabled: Stripe Tax computes the tax of
	// tax-inclusive prices, so only paid invoices tell the net amount.
	AutomaticTax bool `json:"automatic_tax,omitempty"`
	// AccountHint is metadata.account_id from the subscription: a hint only,
	// never trusted to move a customer between accounts. Not stored here.
	AccountHint string `json:"-"`
	// TestClock is the test clock of the subscription's customer (test
	// mode only; "" for none): recorded on the customer, not here.
	TestClock string `json:"-"`
}

// Subjects implements EventObject: the customer and the subscription.
func (s *Subscription) Subjects() []string { return []string{s.CustomerID, s.ID} }

// LinkHint implements EventObject: the subscription's metadata.account_id.
func (s *Subscription) LinkHint() string { return s.AccountHint }

// PrimaryItem is the item that names the plan: the first licensed item, or
// the first item at all when every item is metered.
func (s Subscription) PrimaryItem() (Item, bool) {
	for _, it := range s.Items {
		if !it.Metered() {
			return it, true
		}
	}
	if len(s.Items) > 0 {
		return s.Items[0], true
	}
	return Item{}, false
}
