package stripefake

// Checkout and Billing Portal sessions, and the prices they need: the
// fake records every parameter billingd sends (Request.Form) and its
// Idempotency-Key, and answers as Stripe does where billingd's behaviour
// depends on it: required and mutually exclusive parameters, unknown
// customers, subscriptions and configurations, and idempotency (the same
// key with the same parameters replays the first answer; with other
// parameters it is a 400 idempotency_error).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Price is a fake Stripe price.
type Price struct {
	ID        string
	ProductID string
	Recurring bool // false: a one-time price
	Inactive  bool // archived
}

// PutPrice adds or replaces a price.
func (s *Server) PutPrice(p Price) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prices == nil {
		s.prices = map[string]*Price{}
	}
	s.prices[p.ID] = &p
}

// PutPortalConfiguration makes a Billing Portal configuration ID known.
func (s *Server) PutPortalConfiguration(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.configs == nil {
		s.configs = map[string]bool{}
	}
	s.configs[id] = true
}

// SessionsCreated is how many checkout and portal sessions the fake has
// created (idempotent replays not counted).
func (s *Server) SessionsCreated() (checkout, portal int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkouts, s.portals
}

// idempotent is one answer kept under an idempotency key.
type idempotent struct {
	request string // method, path and sorted form
	status  int
	body    map[string]any
}

// sessionsRoute answers the endpoints of this file; ok is false for any
// other request.
func (s *Server) sessionsRoute(w http.ResponseWriter, r *http.Request, parts []string) (int, bool) {
	switch {
	case r.Method == http.MethodGet && len(parts) == 3 && parts[0] == "v1" && parts[1] == "prices":
		p, ok := s.prices[parts[2]]
		if !ok {
			return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such price: '"+parts[2]+"'"), true
		}
		return writeObject(w, p.JSON(s.livemode())), true
	case r.Method != http.MethodPost:
		return 0, false
	case strings.Join(parts, "/") == "v1/checkout/sessions":
		return s.idempotently(w, r, s.createCheckout), true
	case strings.Join(parts, "/") == "v1/billing_portal/sessions":
		return s.idempotently(w, r, s.createPortal), true
	}
	return 0, false
}

func (s *Server) livemode() bool {
	return strings.HasPrefix(s.key, "sk_live_") || strings.HasPrefix(s.key, "rk_live_")
}

// idempotently runs create under the request's Idempotency-Key as Stripe
// does: a key seen with the same request replays its answer (header
// Idempotent-Replayed); with another request it is refused. Only answers
// of requests that executed are kept (Stripe keeps no result for a request
// that failed validation).
func (s *Server) idempotently(w http.ResponseWriter, r *http.Request, create func(url.Values) (int, map[string]any, string)) int {
	key := r.Header.Get("Idempotency-Key")
	req := r.Method + " " + r.URL.Path + "?" + canonicalForm(r.PostForm)
	if prev, ok := s.idem[key]; ok && key != "" {
		if prev.request != req {
			return apiError(w, http.StatusBadRequest, "idempotency_error", "",
				"Keys for idempotent requests can only be used with the same parameters they were first used with.")
		}
		w.Header().Set("Idempotent-Replayed", "true")
		return writeObject(w, prev.body)
	}
	status, body, msg := create(r.PostForm)
	if status != http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": "invalid_request_error",
			"code": body["code"], "param": body["param"], "message": msg}})
		return status
	}
	if key != "" {
		if s.idem == nil {
			s.idem = map[string]idempotent{}
		}
		s.idem[key] = idempotent{request: req, status: status, body: body}
	}
	return writeObject(w, body)
}

func canonicalForm(f url.Values) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range f[k] {
			b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(v) + "&")
		}
	}
	return b.String()
}

// refuse is a 400 of create: the parameter's code and a message.
func refuse(code, msg string) (int, map[string]any, string) {
	return http.StatusBadRequest, map[string]any{"code": code}, msg
}

func (s *Server) createCheckout(f url.Values) (int, map[string]any, string) {
	for _, p := range []string{"mode", "success_url", "line_items[0][price]"} {
		if f.Get(p) == "" {
			return refuse("parameter_missing", "Missing required param: "+p+".")
		}
	}
	if f.Get("mode") != "subscription" {
		return refuse("parameter_invalid", "the fake creates subscription-mode sessions only")
	}
	price, ok := s.prices[f.Get("line_items[0][price]")]
	switch {
	case !ok:
		return refuse("resource_missing", "No such price")
	case !price.Recurring:
		return refuse("parameter_invalid", "You must provide at least one recurring price in `subscription` mode")
	}
	cus := f.Get("customer")
	if cus != "" {
		if f.Get("customer_email") != "" {
			return refuse("parameter_invalid", "You may only specify one of these parameters: customer, customer_email.")
		}
		if c, ok := s.customers[cus]; !ok || c.Deleted {
			return refuse("resource_missing", "No such customer: '"+cus+"'")
		}
	}
	if ref := f.Get("client_reference_id"); len(ref) > 200 {
		return refuse("parameter_invalid", "client_reference_id is longer than 200 characters")
	}
	s.checkouts++
	id := fmt.Sprintf("cs_%s_fake%06d", s.modeWord(), s.checkouts)
	now := time.Now().Add(s.offset).UTC()
	body := map[string]any{
		"id": id, "object": "checkout.session", "mode": "subscription", "livemode": s.livemode(),
		"url":                 "https://checkout.stripe.com/c/pay/" + id,
		"expires_at":          now.Add(24 * time.Hour).Unix(),
		"created":             now.Unix(),
		"client_reference_id": nilIfEmpty(f.Get("client_reference_id")),
		"customer":            nilIfEmpty(cus),
		"customer_email":      nilIfEmpty(f.Get("customer_email")),
		"metadata":            map[string]any{"account_id": f.Get("metadata[account_id]")},
		"success_url":         f.Get("success_url"), "cancel_url": nilIfEmpty(f.Get("cancel_url")),
		"status": "open",
	}
	return http.StatusOK, body, ""
}

func (s *Server) createPortal(f url.Values) (int, map[string]any, string) {
	cus := f.Get("customer")
	if cus == "" {
		return refuse("parameter_missing", "Missing required param: customer.")
	}
	if c, ok := s.customers[cus]; !ok || c.Deleted {
		return refuse("resource_missing", "No such customer: '"+cus+"'")
	}
	if cfg := f.Get("configuration"); cfg != "" && !s.configs[cfg] {
		// Stripe names the parameter; billingd maps it to configuration_not_found.
		return http.StatusBadRequest, map[string]any{"code": "resource_missing", "param": "configuration"}, "No such configuration: '" + cfg + "'"
	}
	switch typ := f.Get("flow_data[type]"); typ {
	case "", "payment_method_update":
	case "subscription_cancel", "subscription_update":
		sub, ok := s.subs[f.Get("flow_data["+typ+"][subscription]")]
		if !ok || sub.CustomerID != cus || sub.Status == "canceled" {
			return refuse("resource_missing", "No such subscription for this customer")
		}
	default:
		return refuse("parameter_invalid", "Invalid flow_data[type]")
	}
	s.portals++
	id := fmt.Sprintf("bps_fake%06d", s.portals)
	return http.StatusOK, map[string]any{
		"id": id, "object": "billing_portal.session", "livemode": s.livemode(), "customer": cus,
		"url": "https://billing.stripe.com/p/session/" + s.modeWord() + "_" + id, "return_url": nilIfEmpty(f.Get("return_url")),
		"created": time.Now().Add(s.offset).Unix(),
	}, ""
}

func (s *Server) modeWord() string {
	if s.livemode() {
		return "live"
	}
	return "test"
}

func nilIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// JSON renders the price as the API does (2023-10-16 and later alike).
func (p *Price) JSON(livemode bool) map[string]any {
	typ, rec := "one_time", any(nil)
	if p.Recurring {
		typ, rec = "recurring", map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}
	}
	return map[string]any{
		"id": p.ID, "object": "price", "active": !p.Inactive, "currency": "eur", "livemode": livemode,
		"product": p.ProductID, "type": typ, "recurring": rec, "unit_amount": 1000, "billing_scheme": "per_unit",
		"nickname": PersonalNote, // merchant free text: never read
	}
}
