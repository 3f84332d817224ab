package billing

import (
	"context"
	"time"
)

// Outcome is what the event path did with one event; it is stored in
// stripe_events.outcome and labels the webhook counters.
type Outcome string

// The outcomes of applying an event.
const (
	// OutcomeApplied: the event's object state (or link) was recorded, and
	// current state moved forward where the version was newer.
	OutcomeApplied Outcome = "applied"
	// OutcomeStale: an older version than current state: kept in the
	// history (subscription_versions), current state unchanged.
	OutcomeStale Outcome = "stale"
	// OutcomeIgnored: acknowledged on purpose without effect: Connect
	// events, and handled types that carry nothing for us (a checkout
	// session without a customer, an invoice of an unknown subscription).
	OutcomeIgnored Outcome = "ignored"
	// OutcomeLinkConflict: the event hinted at a different account than the
	// one the customer is linked to; the link was kept, the rest applied.
	OutcomeLinkConflict Outcome = "link_conflict"
	// OutcomeLinkErased: the event hinted at an erased account; the
	// customer was not linked to it, the rest applied.
	OutcomeLinkErased Outcome = "link_erased"
	// OutcomeTombstoned: the customer or subscription was erased; nothing
	// about it is stored again.
	OutcomeTombstoned Outcome = "tombstoned"
	// OutcomeDuplicate: the event ID was seen before; nothing changed. Never
	// stored (the first delivery's row stays).
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeUnhandled: an event type billingd does not read. Never stored,
	// only counted.
	OutcomeUnhandled Outcome = "unhandled"
	// OutcomeFutureDated: the event's created time is further ahead than
	// the signature tolerance allows (see Event.FutureDated). Its ID is
	// recorded, so a redelivery is a duplicate; nothing else is stored: it
	// is not a version and cannot order later events behind it.
	OutcomeFutureDated Outcome = "future_dated"
	// OutcomeDecodeIncomplete: an event of an API version newer than
	// billingd knows lacked a field billingd needs (moved, perhaps):
	// acknowledged, nothing applied, its ID not recorded, so a sweep after
	// an upgrade can still apply it. Never stored.
	OutcomeDecodeIncomplete Outcome = "decode_incomplete"
)

// Event is one change to apply: a verified, decoded Stripe webhook event,
// or an object fetched from the Stripe API (backfill, reconcile).
//
// Exactly one of Customer, Subscription, Invoice and Checkout is set for a
// handled event. Nothing in it is personal data: decoders copy whitelisted
// fields only.
type Event struct {
	// ID is the Stripe event ID (evt_...). Empty for an object fetched from
	// the API: then no stripe_events row is written.
	ID string
	// Type is the Stripe event type, e.g. customer.subscription.updated. For
	// API fetches, use the *.updated type of the object.
	Type string
	// Created is the version time: the event's created second, or for an
	// API fetch the moment Stripe answered, which orders it after every
	// event already seen about the object (design invariant 2).
	Created time.Time
	// Livemode is false for test-mode events; they are stored flagged and
	// never count in live revenue or reach ProfitWell.
	Livemode bool
	// Connect is true when the event came from a connected account (a
	// top-level "account"): acknowledged and ignored.
	Connect bool
	// FutureDated is set by the webhook handler for a signed event created
	// further in the future than the signature tolerance: no genuine
	// delivery is (Stripe signs an event after creating it), and as a
	// version it would outrank every later genuine one of its subscription
	// for good. It carries no object; the store records its ID with
	// OutcomeFutureDated and applies nothing.
	FutureDated bool

	Customer     *Customer
	Subscription *Subscription
	Invoice      *Invoice
	Checkout     *CheckoutSession
	Schedule     *Schedule
	Entitlements *EntitlementSummary
	TestClock    *TestClock
	Product      *Product
	Price        *Price
}

// FromAPI reports whether the event is an object fetched from the API
// rather than a delivered webhook event.
func (e Event) FromAPI() bool { return e.ID == "" }

// An EventObject is what one handled event carries: a *Customer,
// *Subscription, *Invoice or *CheckoutSession. Each kind says which Stripe
// IDs applying it writes about, so the store locks and tombstone-checks
// exactly those (design invariant 4) without a case per kind.
type EventObject interface {
	// Subjects are the Stripe IDs applying the object writes about, its
	// customer first; an ID may be "" (skipped). None for an object the
	// store acknowledges without writing (an invoice without subscription,
	// a guest checkout): no lock, no tombstone check.
	Subjects() []string
	// LinkHint is the account the object's hint names ("" for none): the
	// account the store may link the customer to, whose erasure it checks.
	LinkHint() string
}

// Object returns the object e carries and how many objects it sets:
// exactly one for a handled event, none for a Connect or future-dated one.
// A new kind of object is a field of Event and one line here.
func (e Event) Object() (EventObject, int) {
	var o EventObject
	n := 0
	if e.Customer != nil {
		o, n = e.Customer, n+1
	}
	if e.Subscription != nil {
		o, n = e.Subscription, n+1
	}
	if e.Invoice != nil {
		o, n = e.Invoice, n+1
	}
	if e.Checkout != nil {
		o, n = e.Checkout, n+1
	}
	if e.Schedule != nil {
		o, n = e.Schedule, n+1
	}
	if e.Entitlements != nil {
		o, n = e.Entitlements, n+1
	}
	if e.TestClock != nil {
		o, n = e.TestClock, n+1
	}
	if e.Product != nil {
		o, n = e.Product, n+1
	}
	if e.Price != nil {
		o, n = e.Price, n+1
	}
	return o, n
}

// Subjects are the Stripe IDs applying e writes about (EventObject.Subjects);
// none for Connect and future-dated events, which are only recorded.
func (e Event) Subjects() []string {
	if e.Connect || e.FutureDated {
		return nil
	}
	if o, n := e.Object(); n == 1 {
		return o.Subjects()
	}
	return nil
}

// LinkHint is the account e's hint names (EventObject.LinkHint); none for
// Connect and future-dated events.
func (e Event) LinkHint() string {
	if e.Connect || e.FutureDated {
		return ""
	}
	if o, n := e.Object(); n == 1 {
		return o.LinkHint()
	}
	return ""
}

// Customer is the non-personal state of a Stripe customer: its ID, mode,
// whether it was deleted, and the account hint from metadata.account_id.
type Customer struct {
	ID       string
	Livemode bool
	Deleted  bool
	// AccountHint is metadata.account_id: a hint anyone with Dashboard
	// access can set, used only to link an unlinked customer.
	AccountHint string
	// TestClock is the test clock the customer is on (clock_...; test
	// mode only, "" for none): its subscriptions are judged at the clock's
	// time.
	TestClock string
	// DiscountsKnown says the event told the customer-level discount
	// (customer objects with a "discount" field, customer.discount.*
	// events about the customer itself): Discounts is then the customer's
	// discount from the event on, empty for none.
	DiscountsKnown bool
	Discounts      []Discount
	// DiscountCoupons maps an unresolved discount's ID to its coupon's ID,
	// which the Stripe job that resolves it fetches. Never stored.
	DiscountCoupons map[string]string
}

// Subjects implements EventObject: the customer itself.
func (c *Customer) Subjects() []string { return []string{c.ID} }

// LinkHint implements EventObject: metadata.account_id, except on a
// deletion (a deleted customer is never linked).
func (c *Customer) LinkHint() string {
	if c.Deleted {
		return ""
	}
	return c.AccountHint
}

// InvoiceStatus is the payment state an invoice event records on its
// subscription (subscriptions.latest_invoice_status).
type InvoiceStatus string

// The invoice facts the event path records.
const (
	InvoicePaid          InvoiceStatus = "paid"
	InvoicePaymentFailed InvoiceStatus = "payment_failed"
)

// Invoice is what invoice.paid and invoice.payment_failed tell about a
// subscription's payment state, used by the entitlement grace rule. The
// invoice's customer_email, customer_name, address, phone, shipping and tax
// IDs are never read.
type Invoice struct {
	CustomerID         string
	SubscriptionID     string // empty for a one-off invoice: ignored
	Livemode           bool
	Status             InvoiceStatus
	AttemptCount       int64
	NextPaymentAttempt *time.Time
	// Currency and Lines are read from invoice.paid only: the paid
	// subscription lines, amounts and periods only (never descriptions).
	Currency string
	Lines    []InvoiceLine
	// LinesIncomplete: lines.has_more was true, the list is partial.
	LinesIncomplete bool
}

// Usage kinds of an invoice line's price.
const (
	UsageFixed   = "fixed"   // licensed per-unit: part of fixed MRR
	UsageMetered = "metered" // recurring.usage_type metered
	UsageTiered  = "tiered"  // billing_scheme tiered
)

// InvoiceLine is one subscription line of a paid invoice: its price, what
// kind of price it is ("" when the payload does not say: the store looks
// at the subscription's items), its billing period and its amount with
// and without tax, in minor units.
type InvoiceLine struct {
	PriceID     string
	Usage       string
	PeriodStart time.Time
	PeriodEnd   time.Time
	Amount      int64
	Net         int64
}

// Subjects implements EventObject: the customer and the subscription;
// none for a one-off invoice or one without customer (ignored).
func (inv *Invoice) Subjects() []string {
	if inv.CustomerID == "" || inv.SubscriptionID == "" {
		return nil
	}
	return []string{inv.CustomerID, inv.SubscriptionID}
}

// LinkHint implements EventObject: invoices carry no hint.
func (inv *Invoice) LinkHint() string { return "" }

// CheckoutSession is what checkout.session.completed tells: which customer
// (and subscription) a checkout created, and the account it was started
// for, when client_reference_id carried a valid link signature.
type CheckoutSession struct {
	CustomerID     string // empty for guest checkouts: ignored
	SubscriptionID string
	Livemode       bool
	// AccountHint is the account from client_reference_id once its
	// signature and expiry were checked (LinkVerifier); empty otherwise.
	AccountHint string
	// ReferenceRejected says why a client_reference_id that was present
	// did not give an AccountHint ("" when it did or there was none).
	ReferenceRejected LinkRejection
}

// Subjects implements EventObject: the customer and the subscription (if
// any); none for a guest checkout (ignored).
func (cs *CheckoutSession) Subjects() []string {
	if cs.CustomerID == "" {
		return nil
	}
	return []string{cs.CustomerID, cs.SubscriptionID}
}

// LinkHint implements EventObject: the verified client_reference_id, for a
// session with a customer.
func (cs *CheckoutSession) LinkHint() string {
	if cs.CustomerID == "" {
		return ""
	}
	return cs.AccountHint
}

// EventApplier applies one event in one transaction and reports what it
// did. It returns ErrUnavailable when a retry can succeed and ErrInvalid
// when the event can never be stored.
type EventApplier interface {
	ApplyEvent(ctx context.Context, ev Event) (Outcome, error)
}
