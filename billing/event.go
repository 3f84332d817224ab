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
}

// FromAPI reports whether the event is an object fetched from the API
// rather than a delivered webhook event.
func (e Event) FromAPI() bool { return e.ID == "" }

// Customer is the non-personal state of a Stripe customer: its ID, mode,
// whether it was deleted, and the account hint from metadata.account_id.
type Customer struct {
	ID       string
	Livemode bool
	Deleted  bool
	// AccountHint is metadata.account_id: a hint anyone with Dashboard
	// access can set, used only to link an unlinked customer.
	AccountHint string
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
}

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

// EventApplier applies one event in one transaction and reports what it
// did. It returns ErrUnavailable when a retry can succeed and ErrInvalid
// when the event can never be stored.
type EventApplier interface {
	ApplyEvent(ctx context.Context, ev Event) (Outcome, error)
}
