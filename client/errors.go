package client

import (
	"fmt"
	"time"
)

// Error is a billingd error answer: the HTTP status, billingd's stable
// error code and its message (which never holds personal data).
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("billingd: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the Err* values by code, so errors.Is(err, ErrAccountErased)
// works on any *Error with that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == 0 && t.Code == e.Code
}

func code(c string) *Error { return &Error{Code: c} }

// The error codes an app usually branches on (see /openapi.json for every
// code of every operation).
var (
	ErrUnauthorized            = code("unauthorized")              // missing, unknown or revoked token
	ErrForbidden               = code("forbidden")                 // a token of the wrong scope
	ErrInvalidAccountID        = code("invalid_account_id")        // not 1-128 of A-Z a-z 0-9 _ . : -
	ErrAccountNotFound         = code("account_not_found")         // no customer linked (GET billing)
	ErrAccountErased           = code("account_erased")            // the account was erased
	ErrCustomerLinkedElsewhere = code("customer_linked_elsewhere") // links never move
	ErrNoCustomer              = code("no_customer")               // portal: no customer in that mode
	ErrAlreadySubscribed       = code("already_subscribed")        // checkout: entitled to that product already
	ErrURLNotAllowed           = code("url_not_allowed")           // a return URL outside APP_URL_ALLOWLIST
	ErrCursorExpired           = code("cursor_expired")            // change feed: resynchronise
	ErrUnavailable             = code("unavailable")               // still 503 after every retry
)
