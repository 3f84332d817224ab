package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// CheckoutSessions creates the app's Checkout and Billing Portal sessions
// (*stripeapi.Sessions): the rules (customer reuse, signed reference,
// already subscribed, the portal's subscription) live there and in
// billing; the handlers validate and answer.
type CheckoutSessions interface {
	Checkout(ctx context.Context, req billing.CheckoutRequest) (billing.CheckoutRedirect, error)
	Portal(ctx context.Context, req billing.PortalRequest) (billing.PortalRedirect, error)
}

// checkoutRequestJSON is the body of POST .../checkout-sessions. Pointers
// tell an absent field from a zero one.
type checkoutRequestJSON struct {
	Price               *string `json:"price"`
	Quantity            *int64  `json:"quantity"`
	SuccessURL          *string `json:"success_url"`
	CancelURL           *string `json:"cancel_url"`
	TrialPeriodDays     *int64  `json:"trial_period_days"`
	AllowPromotionCodes *bool   `json:"allow_promotion_codes"`
	AllowMultiple       *bool   `json:"allow_multiple"`
	CustomerEmail       *string `json:"customer_email"`
}

// portalRequestJSON is the body of POST .../portal-sessions.
type portalRequestJSON struct {
	ReturnURL     *string `json:"return_url"`
	Configuration *string `json:"configuration"`
	Flow          *string `json:"flow"`
	Subscription  *string `json:"subscription"`
}

type checkoutSessionJSON struct {
	ID        string `json:"id"`
	URL       string `json:"url"`
	ExpiresAt string `json:"expires_at"`
	Livemode  bool   `json:"livemode"`
}

type portalSessionJSON struct {
	URL      string `json:"url"`
	Livemode bool   `json:"livemode"`
}

// handleCheckoutSession: POST /v1/accounts/{account_id}/checkout-sessions,
// scope app. 200 {"id","url","expires_at","livemode"}; 400 for a bad body,
// URL, price or Idempotency-Key; 409 already_subscribed, account_erased,
// idempotency_key_reused, livemode_mismatch; 502/503 for Stripe failures;
// 503 checkout_not_configured without STRIPE_API_KEY or APP_URL_ALLOWLIST.
func (s *Server) handleCheckoutSession(w http.ResponseWriter, r *http.Request) {
	id, live, key, ok := s.sessionPreamble(w, r)
	if !ok {
		return
	}
	var body checkoutRequestJSON
	if !decodeSessionBody(w, r, s.MaxBodyBytes, &body) {
		return
	}
	req := billing.CheckoutRequest{AccountID: id, Quantity: 1, IdempotencyKey: key, Livemode: live}
	if body.Price == nil || !billing.ValidPriceID(*body.Price) {
		writeError(w, http.StatusBadRequest, "invalid_price", "price is required: a Stripe price ID, price_...")
		return
	}
	req.Price = *body.Price
	if body.Quantity != nil {
		if *body.Quantity < 1 || *body.Quantity > billing.MaxCheckoutQuantity {
			writeError(w, http.StatusBadRequest, "invalid_quantity", "quantity must be from 1 to 999999")
			return
		}
		req.Quantity = *body.Quantity
	}
	var ok2 bool
	if req.SuccessURL, ok2 = s.redirectURL(w, "success_url", body.SuccessURL); !ok2 {
		return
	}
	if req.CancelURL, ok2 = s.redirectURL(w, "cancel_url", body.CancelURL); !ok2 {
		return
	}
	if body.TrialPeriodDays != nil {
		if *body.TrialPeriodDays < 1 || *body.TrialPeriodDays > billing.MaxTrialPeriodDays {
			writeError(w, http.StatusBadRequest, "invalid_trial_period_days", "trial_period_days must be from 1 to 730")
			return
		}
		req.TrialPeriodDays = *body.TrialPeriodDays
	}
	req.AllowPromotionCodes = body.AllowPromotionCodes != nil && *body.AllowPromotionCodes
	req.AllowMultiple = body.AllowMultiple != nil && *body.AllowMultiple
	if body.CustomerEmail != nil {
		// The value is never echoed, in this message or anywhere else.
		if !billing.ValidCustomerEmail(*body.CustomerEmail) {
			writeError(w, http.StatusBadRequest, "invalid_customer_email", "customer_email must be an e-mail address of at most 512 characters")
			return
		}
		req.CustomerEmail = *body.CustomerEmail
	}
	cs, err := s.Checkout.Checkout(r.Context(), req)
	if err != nil {
		s.sessionError(w, r, "checkout", err)
		return
	}
	s.countSession("checkout", "created")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, checkoutSessionJSON{ID: cs.ID, URL: cs.URL, ExpiresAt: cs.ExpiresAt.UTC().Format(time.RFC3339), Livemode: cs.Livemode})
}

// handlePortalSession: POST /v1/accounts/{account_id}/portal-sessions,
// scope app. 200 {"url","livemode"}; 404 no_customer when the account has
// no customer in the key's mode; 409 no_subscription for a subscription
// flow without an entitled subscription; otherwise as checkout.
func (s *Server) handlePortalSession(w http.ResponseWriter, r *http.Request) {
	id, live, key, ok := s.sessionPreamble(w, r)
	if !ok {
		return
	}
	var body portalRequestJSON
	if !decodeSessionBody(w, r, s.MaxBodyBytes, &body) {
		return
	}
	req := billing.PortalRequest{AccountID: id, IdempotencyKey: key, Livemode: live}
	var ok2 bool
	if req.ReturnURL, ok2 = s.redirectURL(w, "return_url", body.ReturnURL); !ok2 {
		return
	}
	if body.Configuration != nil {
		if !billing.ValidPortalConfigurationID(*body.Configuration) {
			writeError(w, http.StatusBadRequest, "invalid_configuration", "configuration must be a portal configuration ID, bpc_...")
			return
		}
		req.Configuration = *body.Configuration
	}
	if body.Flow != nil {
		req.Flow = billing.PortalFlow(*body.Flow)
		if req.Flow == billing.FlowNone || !req.Flow.Valid() {
			writeError(w, http.StatusBadRequest, "invalid_flow", "flow must be payment_method_update, subscription_cancel or subscription_update")
			return
		}
	}
	if body.Subscription != nil {
		if !billing.ValidSubscriptionID(*body.Subscription) || !req.Flow.NeedsSubscription() {
			writeError(w, http.StatusBadRequest, "invalid_subscription",
				"subscription must be a subscription ID, sub_..., with flow subscription_cancel or subscription_update")
			return
		}
		req.Subscription = *body.Subscription
	}
	ps, err := s.Checkout.Portal(r.Context(), req)
	if err != nil {
		s.sessionError(w, r, "portal", err)
		return
	}
	s.countSession("portal", "created")
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, portalSessionJSON{URL: ps.URL, Livemode: ps.Livemode})
}

// sessionPreamble checks what both endpoints share: the account ID, that
// they are configured, ?livemode and the Idempotency-Key header.
func (s *Server) sessionPreamble(w http.ResponseWriter, r *http.Request) (id string, live *bool, key string, ok bool) {
	if id, ok = accountID(w, r); !ok {
		return "", nil, "", false
	}
	if s.Checkout == nil || s.AppURLs.Empty() {
		writeError(w, http.StatusServiceUnavailable, "checkout_not_configured",
			"checkout and portal sessions are off: set STRIPE_API_KEY and APP_URL_ALLOWLIST")
		return "", nil, "", false
	}
	switch v := r.URL.Query()["livemode"]; {
	case len(v) == 0:
	case len(v) == 1 && (v[0] == "true" || v[0] == "false"):
		b := v[0] == "true"
		live = &b
	default:
		writeError(w, http.StatusBadRequest, "invalid_livemode", "livemode must be true or false")
		return "", nil, "", false
	}
	switch v := r.Header.Values("Idempotency-Key"); {
	case len(v) == 0:
	case len(v) == 1 && billing.ValidIdempotencyKey(v[0]):
		key = v[0]
	default:
		writeError(w, http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be one header of 1 to 255 printable ASCII characters")
		return "", nil, "", false
	}
	return id, live, key, true
}

// decodeSessionBody reads one JSON object of known fields. A field of the
// wrong type is named in the error code (invalid_quantity).
func decodeSessionBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
		case errors.As(err, &typ) && typ.Field != "" && !strings.Contains(typ.Field, "."):
			writeError(w, http.StatusBadRequest, "invalid_"+typ.Field, typ.Field+" has the wrong type")
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "invalid_json", "body must be a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "invalid_json", "body must be one JSON object of the documented fields")
		}
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_json", "body must hold one JSON object")
		return false
	}
	return true
}

// redirectURL checks a required URL against APP_URL_ALLOWLIST: no open
// redirects through billingd.
func (s *Server) redirectURL(w http.ResponseWriter, field string, v *string) (string, bool) {
	if v == nil || *v == "" {
		writeError(w, http.StatusBadRequest, "invalid_url", field+" is required")
		return "", false
	}
	switch s.AppURLs.Check(*v) {
	case billing.URLAllowed:
		return *v, true
	case billing.URLNotAllowed:
		writeError(w, http.StatusBadRequest, "url_not_allowed", field+" must start with one of APP_URL_ALLOWLIST's prefixes")
	default:
		writeError(w, http.StatusBadRequest, "invalid_url", field+" must be an absolute http(s) URL of at most 2048 characters")
	}
	return "", false
}

// sessionError answers a failed session: the refusals with their own
// codes, Stripe's failures as 503 (a retry can succeed; the same
// Idempotency-Key makes it safe) or 502 (it cannot), the rest through the
// shared table.
func (s *Server) sessionError(w http.ResponseWriter, r *http.Request, kind string, err error) {
	type answer struct {
		status     int
		code, msg  string
		retryAfter string
	}
	var a answer
	switch {
	case errors.Is(err, billing.ErrAccountErased):
		a = answer{409, "account_erased", "this account was erased: no checkout links to it again", ""}
	case errors.Is(err, billing.ErrAlreadySubscribed):
		a = answer{409, "already_subscribed", `the account already has an entitled subscription to this price's product; send "allow_multiple": true to subscribe again`, ""}
	case errors.Is(err, billing.ErrNoCustomer):
		a = answer{404, "no_customer", "the account has no Stripe customer in this mode", ""}
	case errors.Is(err, billing.ErrNoSubscription):
		a = answer{409, "no_subscription", "the account has no entitled subscription in this mode for this flow", ""}
	case errors.Is(err, billing.ErrLivemodeMismatch):
		a = answer{409, "livemode_mismatch", "STRIPE_API_KEY is of the other mode: sessions are created in the key's mode", ""}
	case errors.Is(err, billing.ErrPriceNotFound):
		a = answer{400, "price_not_found", "Stripe has no such price in this mode", ""}
	case errors.Is(err, billing.ErrPriceNotRecurring):
		a = answer{400, "price_not_recurring", "the price is not recurring: a subscription needs a recurring price", ""}
	case errors.Is(err, billing.ErrPriceInactive):
		a = answer{400, "price_inactive", "the price is archived in Stripe", ""}
	case errors.Is(err, billing.ErrConfigurationNotFound):
		a = answer{400, "configuration_not_found", "Stripe has no such portal configuration in this mode", ""}
	case errors.Is(err, billing.ErrIdempotencyKeyReused):
		a = answer{409, "idempotency_key_reused", "this Idempotency-Key was used for a different request", ""}
	case errors.Is(err, billing.ErrStripeUnavailable):
		s.Log.Warn("stripe unavailable", "request_id", RequestID(r.Context()), "route", routeOf(r), "err", err)
		a = answer{503, "stripe_unavailable", "Stripe could not be reached or is failing; retry with the same Idempotency-Key", "5"}
	case errors.Is(err, billing.ErrStripeRejected):
		s.Log.Error("stripe refused a session request", "request_id", RequestID(r.Context()), "route", routeOf(r), "err", err)
		a = answer{502, "stripe_error", "Stripe refused the request; see billingd's log", ""}
	default:
		s.countSession(kind, "error")
		s.Error(w, r, err)
		return
	}
	outcome := a.code
	if a.status >= 500 {
		outcome = "error"
	}
	s.countSession(kind, outcome)
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	writeError(w, a.status, a.code, a.msg)
}

// sessionMetrics counts checkout and portal sessions by outcome.
type sessionMetrics struct {
	sessions *prometheus.CounterVec
}

func newSessionMetrics(reg prometheus.Registerer) *sessionMetrics {
	if reg == nil {
		return nil
	}
	m := &sessionMetrics{sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "billingd_app_sessions_total",
		Help: "Checkout and portal sessions asked for by the app, by kind (checkout, portal) and outcome (created, a refusal's error code, error).",
	}, []string{"kind", "outcome"})}
	m.sessions = registerOrReuse(reg, m.sessions)
	return m
}

func (s *Server) countSession(kind, outcome string) {
	if s.sessm != nil {
		s.sessm.sessions.WithLabelValues(kind, outcome).Inc()
	}
}
