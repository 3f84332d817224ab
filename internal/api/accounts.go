package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/billingd/billingd/billing"
)

// Accounts links app accounts to Stripe customers and reads their billing
// (*postgres.Store).
type Accounts interface {
	AccountLink(ctx context.Context, accountID, customerID string, opt billing.LinkOptions) (billing.LinkResult, error)
	AccountBilling(ctx context.Context, accountID string) (billing.AccountBilling, error)
}

// Header values shared by every response: assigned, never mutated, so the
// hot path allocates no header slices.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoCache = []string{"private, no-cache"}
)

const accountIDRule = "account_id must be 1-128 characters of A-Z a-z 0-9 _ . : -"

// accountID returns the validated {account_id}, or answers 400.
func accountID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := pathVar(r, "account_id")
	if !billing.ValidAccountID(id) {
		writeError(w, http.StatusBadRequest, "invalid_account_id", accountIDRule)
		return "", false
	}
	return id, true
}

// linkRequest is the body of PUT /v1/accounts/{account_id}/billing.
type linkRequest struct {
	StripeCustomerID string `json:"stripe_customer_id"`
	// ReuseErasedAccount: the account was erased and the app gives its ID
	// to a new holder on purpose (audited).
	ReuseErasedAccount bool `json:"reuse_erased_account"`
}

// handleLink: PUT /v1/accounts/{account_id}/billing. 201 when the link was
// made, 200 when it already existed (idempotent), 409 when the customer
// cannot be linked to this account, or the account was erased and the
// body does not say "reuse_erased_account": true.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	if s.Accounts == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "account linking is not configured")
		return
	}
	var req linkRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_json", `body must be {"stripe_customer_id":"cus_..."}`)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_json", "body must hold one JSON object")
		return
	}
	if !billing.ValidCustomerID(req.StripeCustomerID) {
		writeError(w, http.StatusBadRequest, "invalid_customer_id", "stripe_customer_id must be cus_ followed by letters and digits")
		return
	}
	actor := TokenName(r.Context())
	res, err := s.Accounts.AccountLink(r.Context(), id, req.StripeCustomerID,
		billing.LinkOptions{ReuseErased: req.ReuseErasedAccount, Actor: actor})
	switch {
	case errors.Is(err, billing.ErrAccountErased):
		writeError(w, http.StatusConflict, "account_erased",
			`this account was erased; to give its ID to a new holder, send "reuse_erased_account": true (audited)`)
		return
	case errors.Is(err, billing.ErrLinkedElsewhere):
		writeError(w, http.StatusConflict, "customer_linked_elsewhere", "this customer is linked to another account")
		return
	case errors.Is(err, billing.ErrCustomerDeleted):
		writeError(w, http.StatusConflict, "customer_deleted", "this customer was deleted in Stripe")
		return
	case errors.Is(err, billing.ErrCustomerErased):
		writeError(w, http.StatusConflict, "customer_erased", "this customer belonged to an erased account and cannot be linked again")
		return
	case err != nil:
		s.Error(w, r, err)
		return
	}
	code := http.StatusOK
	if res == billing.LinkCreated || res == billing.LinkReused {
		code = http.StatusCreated
		if s.Entitlements != nil {
			s.Entitlements.InvalidateAccount(id)
		}
	}
	body := map[string]any{"account_id": id, "stripe_customer_id": req.StripeCustomerID}
	if res == billing.LinkReused {
		body["reused_erased_account"] = true
		// No account ID: it names a person (the former holder's, too).
		s.Log.Info("erased account ID reused by the app", "request_id", RequestID(r.Context()), "actor", actor)
	}
	writeJSON(w, code, body)
}

// billingJSON is the body of GET /v1/accounts/{account_id}/billing.
type billingJSON struct {
	AccountID     string             `json:"account_id"`
	Customers     []customerJSON     `json:"customers"`
	Subscriptions []subscriptionJSON `json:"subscriptions"`
}

type customerJSON struct {
	StripeCustomerID string `json:"stripe_customer_id"`
	// Livemode is null until Stripe has sent an event about the customer.
	Livemode *bool `json:"livemode"`
}

type subscriptionJSON struct {
	ID                string     `json:"id"`
	StripeCustomerID  string     `json:"stripe_customer_id"`
	Livemode          bool       `json:"livemode"`
	Status            string     `json:"status"`
	Items             []itemJSON `json:"items"`
	CurrentPeriodEnd  *string    `json:"current_period_end"`
	TrialEnd          *string    `json:"trial_end"`
	CancelAt          *string    `json:"cancel_at"`
	CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	// ScheduledChange is the subscription's next change (issue 18), as in
	// the entitlement answer.
	ScheduledChange *scheduledChangeJSON `json:"scheduled_change"`
}

type itemJSON struct {
	PriceID       string  `json:"price_id"`
	ProductID     *string `json:"product_id"`
	Quantity      int64   `json:"quantity"`
	Interval      string  `json:"interval"`
	IntervalCount int64   `json:"interval_count"`
}

func rfc3339(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func toBillingJSON(b billing.AccountBilling, now time.Time) billingJSON {
	out := billingJSON{AccountID: b.AccountID, Customers: []customerJSON{}, Subscriptions: []subscriptionJSON{}}
	for _, c := range b.Customers {
		out.Customers = append(out.Customers, customerJSON{StripeCustomerID: c.ID, Livemode: c.Livemode})
	}
	for _, sub := range b.Subscriptions {
		sj := subscriptionJSON{
			ID: sub.ID, StripeCustomerID: sub.CustomerID, Livemode: sub.Livemode, Status: string(sub.Status),
			Items: []itemJSON{}, CurrentPeriodEnd: rfc3339(sub.CurrentPeriodEnd), TrialEnd: rfc3339(sub.TrialEnd),
			CancelAt: rfc3339(sub.CancelAt), CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
			ScheduledChange: toScheduledChangeJSON(billing.NextChange(sub, b.Schedules, now)),
		}
		for _, it := range sub.Items {
			ij := itemJSON{PriceID: it.PriceID, Quantity: it.Quantity, Interval: string(it.Interval), IntervalCount: it.IntervalCount}
			if it.ProductID != "" {
				p := it.ProductID
				ij.ProductID = &p
			}
			sj.Items = append(sj.Items, ij)
		}
		out.Subscriptions = append(out.Subscriptions, sj)
	}
	return out
}

// handleBilling: GET /v1/accounts/{account_id}/billing. 404 for an account
// with no linked customer. Not cached: it is not on the hot path, so every
// read is fresh, Cache-Control: no-cache or not.
func (s *Server) handleBilling(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	if s.Accounts == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "account billing is not configured")
		return
	}
	b, err := s.Accounts.AccountBilling(r.Context(), id)
	if errors.Is(err, billing.ErrNotFound) {
		writeError(w, http.StatusNotFound, "account_not_found", "no Stripe customer is linked to this account")
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body, err := json.Marshal(toBillingJSON(b, s.now()))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body = append(body, '\n')
	writeTagged(w, r, body, etag(body), nil)
}
