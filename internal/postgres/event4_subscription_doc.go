package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// The store's own JSON shapes of subscription state. The event path hands
// PostgreSQL a batch's versions as one JSON document (jsonb_to_recordset in
// qWriteSubscriptions) and reads the previous state back as JSON (to_jsonb
// of a subscriptions row), and the items and discounts columns are jsonb
// documents. The names in those documents are column names and a stored
// format, so they are declared here, not borrowed from billing's types:
// renaming a field or tag in the domain cannot silently break a statement
// or unread stored rows (TestSubscriptionDocColumns and TestStoredItemFormat
// pin them).

// subscriptionDoc is one subscription version under the subscriptions
// table's column names: an input row of qWriteSubscriptions, and a row of
// the table as to_jsonb renders it (columns it does not name are ignored).
type subscriptionDoc struct {
	ID                 string        `json:"stripe_subscription_id"`
	CustomerID         string        `json:"stripe_customer_id"`
	Livemode           bool          `json:"livemode"`
	Status             string        `json:"status"`
	Currency           string        `json:"currency"`
	Items              []itemDoc     `json:"items"`
	ItemsIncomplete    bool          `json:"items_incomplete"`
	Discounts          []discountDoc `json:"discounts"`
	Created            *time.Time    `json:"created,omitempty"`
	StartDate          *time.Time    `json:"start_date,omitempty"`
	CurrentPeriodStart *time.Time    `json:"current_period_start,omitempty"`
	CurrentPeriodEnd   *time.Time    `json:"current_period_end,omitempty"`
	TrialStart         *time.Time    `json:"trial_start,omitempty"`
	TrialEnd           *time.Time    `json:"trial_end,omitempty"`
	CancelAt           *time.Time    `json:"cancel_at,omitempty"`
	CancelAtPeriodEnd  bool          `json:"cancel_at_period_end"`
	CanceledAt         *time.Time    `json:"canceled_at,omitempty"`
	EndedAt            *time.Time    `json:"ended_at,omitempty"`
	CollectionPaused   bool          `json:"collection_paused"`
	PendingUpdate      *pendingDoc   `json:"pending_update,omitempty"`
	AutomaticTax       bool          `json:"automatic_tax"`
	VersionAt          time.Time     `json:"version_at"`
	VersionRank        int           `json:"version_rank"`
	VersionEvent       string        `json:"version_event"`
}

// toSubscriptionDoc is s at version key k. Items and discounts are never
// null in the table.
func toSubscriptionDoc(s billing.Subscription, k billing.VersionKey) subscriptionDoc {
	items, discounts := toItemDocs(s.Items), toDiscountDocs(s.Discounts)
	if items == nil {
		items = []itemDoc{}
	}
	if discounts == nil {
		discounts = []discountDoc{}
	}
	return subscriptionDoc{
		ID: s.ID, CustomerID: s.CustomerID, Livemode: s.Livemode, Status: string(s.Status), Currency: s.Currency,
		Items: items, ItemsIncomplete: s.ItemsIncomplete, Discounts: discounts, Created: s.Created,
		StartDate: s.StartDate, CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd,
		TrialStart: s.TrialStart, TrialEnd: s.TrialEnd, CancelAt: s.CancelAt, CancelAtPeriodEnd: s.CancelAtPeriodEnd,
		CanceledAt: s.CanceledAt, EndedAt: s.EndedAt, CollectionPaused: s.CollectionPaused,
		PendingUpdate: toPendingDoc(s.PendingUpdate), AutomaticTax: s.AutomaticTax,
		VersionAt: k.At, VersionRank: k.Rank, VersionEvent: k.Event,
	}
}

// toSubscription is the domain value of d (without account hint, which
// is never stored) and its version key.
func (d subscriptionDoc) toSubscription() (billing.Subscription, billing.VersionKey) {
	return billing.Subscription{
		ID: d.ID, CustomerID: d.CustomerID, Livemode: d.Livemode, Status: billing.Status(d.Status),
		Currency: d.Currency, Items: fromItemDocs(d.Items), ItemsIncomplete: d.ItemsIncomplete,
		Discounts: fromDiscountDocs(d.Discounts), Created: d.Created, StartDate: d.StartDate,
		CurrentPeriodStart: d.CurrentPeriodStart, CurrentPeriodEnd: d.CurrentPeriodEnd, TrialStart: d.TrialStart,
		TrialEnd: d.TrialEnd, CancelAt: d.CancelAt, CancelAtPeriodEnd: d.CancelAtPeriodEnd,
		CanceledAt: d.CanceledAt, EndedAt: d.EndedAt, CollectionPaused: d.CollectionPaused,
		PendingUpdate: d.PendingUpdate.toPendingUpdate(),
		AutomaticTax:  d.AutomaticTax,
	}, billing.VersionKey{At: d.VersionAt, Rank: d.VersionRank, Event: d.VersionEvent}
}

// itemDoc is a subscription item as the items columns store it. It has
// billing.Item's fields exactly, so each converts to the other by a plain
// conversion, and a field added to billing.Item does not compile here
// until its stored form is decided.
type itemDoc struct {
	PriceID           string           `json:"price_id"`
	ProductID         string           `json:"product_id,omitempty"`
	Quantity          int64            `json:"quantity"`
	UnitAmount        int64            `json:"unit_amount"`
	UnitAmountDec     string           `json:"unit_amount_decimal,omitempty"`
	Interval          billing.Interval `json:"interval"`
	IntervalCount     int64            `json:"interval_count"`
	UsageType         string           `json:"usage_type,omitempty"`
	BillingScheme     string           `json:"billing_scheme,omitempty"`
	TransformDivideBy int64            `json:"transform_divide_by,omitempty"`
	TransformRound    string           `json:"transform_round,omitempty"`
	TaxBehavior       string           `json:"tax_behavior,omitempty"`
	InclusiveTaxBP    int64            `json:"inclusive_tax_bp,omitempty"`
}

// pendingDoc is a subscription's pending_update as the pending_update
// column stores it: its expiry and each item's price and quantity.
type pendingDoc struct {
	ExpiresAt *time.Time     `json:"expires_at,omitempty"`
	Items     []phaseItemDoc `json:"items"`
}

// phaseItemDoc is a price and quantity of a pending update or a schedule
// phase, as stored; it has billing.PhaseItem's fields exactly.
type phaseItemDoc struct {
	PriceID  string `json:"price_id"`
	Quantity int64  `json:"quantity"`
}

func toPendingDoc(p *billing.PendingUpdate) *pendingDoc {
	if p == nil {
		return nil
	}
	d := &pendingDoc{ExpiresAt: p.ExpiresAt, Items: make([]phaseItemDoc, len(p.Items))}
	for i, it := range p.Items {
		d.Items[i] = phaseItemDoc(it)
	}
	return d
}

func (d *pendingDoc) toPendingUpdate() *billing.PendingUpdate {
	if d == nil {
		return nil
	}
	p := &billing.PendingUpdate{ExpiresAt: d.ExpiresAt, Items: make([]billing.PhaseItem, len(d.Items))}
	for i, it := range d.Items {
		p.Items[i] = billing.PhaseItem(it)
	}
	return p
}

// decodePending reads a pending_update column (NULL: none).
func decodePending(raw []byte) (*billing.PendingUpdate, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var d pendingDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("read pending update: %w", err)
	}
	return d.toPendingUpdate(), nil
}

// discountDoc is a discount as the discounts columns store it; like
// itemDoc, it has billing.Discount's fields exactly.
type discountDoc struct {
	ID           string     `json:"id,omitempty"`
	PercentOffBP int64      `json:"percent_off_bp,omitempty"`
	AmountOff    int64      `json:"amount_off,omitempty"`
	Currency     string     `json:"currency,omitempty"`
	Duration     string     `json:"duration,omitempty"`
	Start        *time.Time `json:"start,omitempty"`
	End          *time.Time `json:"end,omitempty"`
}

func toItemDocs(items []billing.Item) []itemDoc {
	if items == nil {
		return nil
	}
	out := make([]itemDoc, len(items))
	for i, it := range items {
		out[i] = itemDoc(it)
	}
	return out
}

func fromItemDocs(docs []itemDoc) []billing.Item {
	if docs == nil {
		return nil
	}
	out := make([]billing.Item, len(docs))
	for i, d := range docs {
		out[i] = billing.Item(d)
	}
	return out
}

func toDiscountDocs(ds []billing.Discount) []discountDoc {
	if ds == nil {
		return nil
	}
	out := make([]discountDoc, len(ds))
	for i, d := range ds {
		out[i] = discountDoc(d)
	}
	return out
}

func fromDiscountDocs(docs []discountDoc) []billing.Discount {
	if docs == nil {
		return nil
	}
	out := make([]billing.Discount, len(docs))
	for i, d := range docs {
		out[i] = billing.Discount(d)
	}
	return out
}

// decodeItems reads an items column.
func decodeItems(raw []byte) ([]billing.Item, error) {
	var docs []itemDoc
	if err := json.Unmarshal(raw, &docs); err != nil {
		return nil, fmt.Errorf("read subscription items: %w", err)
	}
	return fromItemDocs(docs), nil
}

// decodeDiscounts reads a discounts column.
func decodeDiscounts(raw []byte) ([]billing.Discount, error) {
	var docs []discountDoc
	if err := json.Unmarshal(raw, &docs); err != nil {
		return nil, fmt.Errorf("read subscription discounts: %w", err)
	}
	return fromDiscountDocs(docs), nil
}
