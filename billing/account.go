package billing

import "fmt"

// Link refusals. Each wraps ErrConflict (409): the request is well formed
// but the customer cannot be linked to this account.
var (
	// ErrLinkedElsewhere: the customer is linked to another account. Links
	// never move; unlink by erasing the other account first.
	ErrLinkedElsewhere = fmt.Errorf("%w: customer is linked to another account", ErrConflict)
	// ErrCustomerDeleted: Stripe deleted the customer; it grants nothing
	// and is never linked again.
	ErrCustomerDeleted = fmt.Errorf("%w: customer was deleted in Stripe", ErrConflict)
	// ErrCustomerErased: the customer belonged to an erased account and is
	// never stored or linked again (design invariant 4).
	ErrCustomerErased = fmt.Errorf("%w: customer belonged to an erased account", ErrConflict)
	// ErrAccountErased: the account was erased. Nothing links to it again
	// unless the app reuses the ID explicitly (LinkOptions.ReuseErased).
	ErrAccountErased = fmt.Errorf("%w: account was erased", ErrConflict)
)

// LinkOptions are the app's choices when it links a customer to an account.
type LinkOptions struct {
	// ReuseErased links even though the account was erased: the app gives
	// the ID to a new holder. The reuse is audited. Hints (metadata,
	// checkout references) still never link to the account: billingd
	// cannot tell the former holder's from the new one's.
	ReuseErased bool
	// Actor names who asked (an API token's name), for the audit log.
	Actor string
}

// LinkResult says what linking did.
type LinkResult int

const (
	// LinkCreated: the customer is now linked to the account (201).
	LinkCreated LinkResult = iota + 1
	// LinkExisted: it already was; nothing changed (200).
	LinkExisted
	// LinkReused: linked now, and the erased account's ID was reused (201).
	LinkReused
)

// AccountCustomer is one Stripe customer linked to an account.
type AccountCustomer struct {
	ID string
	// Livemode is nil until Stripe has told billingd about the customer
	// (a customer can be linked before its first event).
	Livemode *bool
}

// AccountBilling is what billingd knows about one account: its customers
// and their subscriptions' current state.
type AccountBilling struct {
	AccountID     string
	Customers     []AccountCustomer
	Subscriptions []Subscription
	// Schedules are the customers' live subscription schedules, for each
	// subscription's scheduled change (NextChange).
	Schedules []Schedule
}

// ValidCustomerID reports whether id has the shape of a Stripe customer ID
// (customers.stripe_customer_id's check).
func ValidCustomerID(id string) bool {
	if len(id) < 5 || len(id) > 254 || id[:4] != "cus_" {
		return false
	}
	for i := 4; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
