package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/gorilla/mux"
)

// Accounts links app accounts to Stripe customers and reads their billing
// (*postgres.Store).
type Accounts interface {
	AccountLink(ctx context.Context, accountID, customerID string, opt billing.LinkOptions) (billing.LinkResult, error)
	AccountBilling(ctx context.Context, accountID string) (billing.AccountBilling, error)
}

// Entitlements answers the hot-path entitlement question
// (*entcache.Cache). FreshEntitlement reads past the cache, for a client
// that sent Cache-Control: no-cache. InvalidateAccount lets a handler that
// changed an account read its own write at once on this replica (serve
// also wires the Store to the cache, postgres.Store.OnAccountsChanged, so
// every write path does); other replicas learn of it through the
// cache-invalidation feed.
type Entitlements interface {
	Entitlement(ctx context.Context, accountID string, livemode bool) (*entcache.Answer, error)
	FreshEntitlement(ctx context.Context, accountID string, livemode bool) (*entcache.Answer, error)
	InvalidateAccount(accountID string)
}

// Header values shared by every response: assigned, never mutated, so the
// hot path allocates no header slices.
var (
	hdrJSON    = []string{"application/json"}
	hdrNoCache = []string{"private, no-cache"}
)

const accountIDRule = "account_id must be 1-128 characters of A-Z a-z 0-9 _ . : -"

func (s *Server) accountRoutes(r *mux.Router) {
	r.HandleFunc("/v1/accounts/{account_id}/billing", s.requireScope(billing.ScopeApp, s.handleLink)).Methods(http.MethodPut)
	r.HandleFunc("/v1/accounts/{account_id}/billing", s.requireScope(billing.ScopeApp, s.handleBilling)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/entitlement", s.requireScope(billing.ScopeApp, s.handleEntitlement)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/link-reference", s.requireScope(billing.ScopeApp, s.handleLinkReference)).Methods(http.MethodPost)
}

// accountID returns the validated {account_id}, or answers 400.
func accountID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := mux.Vars(r)["account_id"]
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

func toBillingJSON(b billing.AccountBilling) billingJSON {
	out := billingJSON{AccountID: b.AccountID, Customers: []customerJSON{}, Subscriptions: []subscriptionJSON{}}
	for _, c := range b.Customers {
		out.Customers = append(out.Customers, customerJSON{StripeCustomerID: c.ID, Livemode: c.Livemode})
	}
	for _, sub := range b.Subscriptions {
		sj := subscriptionJSON{
			ID: sub.ID, StripeCustomerID: sub.CustomerID, Livemode: sub.Livemode, Status: string(sub.Status),
			Items: []itemJSON{}, CurrentPeriodEnd: rfc3339(sub.CurrentPeriodEnd), TrialEnd: rfc3339(sub.TrialEnd),
			CancelAt: rfc3339(sub.CancelAt), CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
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
	body, err := json.Marshal(toBillingJSON(b))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	writeTagged(w, r, body, `"`+hex.EncodeToString(sum[:12])+`"`, nil)
}

// handleEntitlement: GET /v1/accounts/{account_id}/entitlement, the hot
// path. An account billingd has never heard of is simply not entitled
// (200). ?livemode=false asks about test-mode subscriptions.
func (s *Server) handleEntitlement(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	live := true
	if r.URL.RawQuery != "" { // parsing the query allocates: only when there is one
		switch v := r.URL.Query()["livemode"]; {
		case len(v) == 0:
		case len(v) == 1 && v[0] == "true":
		case len(v) == 1 && v[0] == "false":
			live = false
		default:
			writeError(w, http.StatusBadRequest, "invalid_livemode", "livemode must be true or false")
			return
		}
	}
	if s.Entitlements == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "entitlements are not configured")
		return
	}
	var a *entcache.Answer
	var err error
	if noCache(r.Header) {
		a, err = s.Entitlements.FreshEntitlement(r.Context(), id, live)
	} else {
		a, err = s.Entitlements.Entitlement(r.Context(), id, live)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeTagged(w, r, a.Body, a.ETag, a.ETagHeader)
}

// noCache reports whether the request asks not to be answered from a
// stored copy: Cache-Control no-cache or max-age=0 (RFC 9111 5.2.1), or
// with no Cache-Control, the HTTP/1.0 Pragma: no-cache (5.4). Checked on
// the hot path: no allocation when the headers are absent.
func noCache(h http.Header) bool {
	cc, ok := h["Cache-Control"]
	if !ok {
		for _, v := range h["Pragma"] {
			if hasDirective(v, "no-cache") {
				return true
			}
		}
		return false
	}
	for _, v := range cc {
		if hasDirective(v, "no-cache") || hasDirective(v, "max-age=0") {
			return true
		}
	}
	return false
}

// hasDirective reports whether the comma-separated header value v lists
// directive d (case-insensitive; a no-cache="field" form counts too).
func hasDirective(v, d string) bool {
	for v != "" {
		var part string
		part, v, _ = strings.Cut(v, ",")
		part = strings.TrimSpace(part)
		if len(part) >= len(d) && strings.EqualFold(part[:len(d)], d) && (len(part) == len(d) || part[len(d)] == '=') {
			return true
		}
	}
	return false
}

// writeTagged answers 200 with body and its ETag, or 304 when the client's
// If-None-Match already names it. Responses may be kept by the client but
// must be revalidated on every use (private, no-cache).
func writeTagged(w http.ResponseWriter, r *http.Request, body []byte, etag string, etagHdr []string) {
	h := w.Header()
	if etagHdr == nil {
		etagHdr = []string{etag}
	}
	h["Etag"] = etagHdr
	h["Cache-Control"] = hdrNoCache
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110
// 13.1.2): "*", or any listed tag equal to etag, W/ prefixes ignored.
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		if v == etag { // the common case: one tag, sent back verbatim
			return true
		}
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}
