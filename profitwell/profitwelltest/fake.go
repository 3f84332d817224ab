// Package profitwelltest is a fake ProfitWell API for tests. It implements
// the calls of docs/profitwell-api.md, keeps the subscriptions
// they produce, checks every request against the contract (auth header,
// methods, paths, field types, 36-character aliases, plan_interval) and
// FAILS THE TEST when a request breaks it or carries anything personal: an
// '@', a Stripe customer or subscription ID, or a string the test forbids
// (fixture names, e-mails, account IDs). It can be told to answer 429, 500
// or slowly.
package profitwelltest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Token is the API token the fake accepts.
const Token = "pw_test_token_0123456789"

// Sub is one subscription as the fake holds it.
type Sub struct {
	UserAlias         string
	SubscriptionAlias string
	PlanID            string
	PlanInterval      string
	PlanCurrency      string
	Status            string // active, trialing
	Value             int64
	EffectiveDate     int64
	Churned           bool
	ChurnType         string
	ChurnDate         int64
	Ops               []string // the calls applied to it, in order: create, update, churn, unchurn
}

// Request is one request the fake received (method and path only).
type Request struct {
	Method string
	Path   string
	Status int // what the fake answered
}

// Fault is an answer the fake gives instead of processing a request.
type Fault struct {
	Status     int           // e.g. 429, 500, 400
	RetryAfter int           // seconds; sent as Retry-After when > 0
	Delay      time.Duration // sleep first (a slow server; 0 with Status 0 = slow but processed)
	Body       string        // default: a ProfitWell-shaped error body
	After      bool          // process the request, then answer with this fault (the response is lost)
}

// Fake is a running fake ProfitWell server.
type Fake struct {
	URL string

	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	subs       map[string]*Sub // by subscription alias
	erased     map[string]bool // user aliases deleted
	requests   []Request
	faults     []Fault
	hook       func(r *http.Request) *Fault
	forbidden  []string
	limit      int
	window     time.Duration
	admitted   []time.Time
	retryAfter int // Retry-After of the answer being built
	violations []string
}

// New starts a fake for t, closed when t ends. It enforces ProfitWell's
// documented rate limit (25 requests per 5 s) by answering 429.
func New(t testing.TB) *Fake {
	f := &Fake{t: t, subs: map[string]*Sub{}, erased: map[string]bool{}, limit: 25, window: 5 * time.Second}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Forbid adds strings no request may contain (case-insensitive): fixture
// names, e-mail addresses, account IDs, Stripe IDs.
func (f *Fake) Forbid(s ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range s {
		if v != "" {
			f.forbidden = append(f.forbidden, strings.ToLower(v))
		}
	}
}

// FailNext queues faults for the next requests, one each, in order.
func (f *Fake) FailNext(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

// Hook sets a function consulted for every request after the queued
// faults; a non-nil Fault is answered instead.
func (f *Fake) Hook(h func(r *http.Request) *Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// Subscriptions returns a copy of every subscription, by alias.
func (f *Fake) Subscriptions() map[string]Sub {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Sub, len(f.subs))
	for k, v := range f.subs {
		c := *v
		c.Ops = append([]string(nil), v.Ops...)
		out[k] = c
	}
	return out
}

// Erased reports whether the user alias was deleted.
func (f *Fake) Erased(userAlias string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.erased[userAlias]
}

// Requests returns every request received, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// RateLimit changes the enforced rate limit (tests whose client limiter is
// set faster than ProfitWell's raise it).
func (f *Fake) RateLimit(n int, window time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit, f.window = n, window
}

// Violations lists contract and privacy violations seen (each also failed
// the test).
func (f *Fake) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}

func (f *Fake) violate(format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	f.violations = append(f.violations, msg)
	f.t.Errorf("profitwelltest: %s", msg)
	return msg
}

var (
	stripeID = regexp.MustCompile(`(?i)\b(cus|sub|acct|pm|card|src|ba)_[a-z0-9]{4,}`)
	aliasRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,36}$`)
	currency = regexp.MustCompile(`^[a-z]{3}$`)
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	f.retryAfter = 0
	status, resp, delay := f.handle(r, body)
	retryAfter := f.retryAfter
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Status: status})
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if resp != "" {
		io.WriteString(w, resp)
	}
}

// handle checks and applies one request under f.mu.
func (f *Fake) handle(r *http.Request, body []byte) (status int, resp string, delay time.Duration) {
	// Privacy: nothing personal anywhere in what we receive.
	everything := r.Method + " " + r.URL.RequestURI() + "\n" + string(body)
	for k, vs := range r.Header {
		if k != "Authorization" {
			everything += "\n" + k + ": " + strings.Join(vs, ",")
		}
	}
	if strings.Contains(everything, "@") || strings.Contains(everything, "%40") {
		return 400, errBody(f.violate("request %s %s contains '@'", r.Method, r.URL.Path)), 0
	}
	if m := stripeID.FindString(everything); m != "" {
		return 400, errBody(f.violate("request %s %s contains a Stripe ID (%s...)", r.Method, r.URL.Path, m[:4])), 0
	}
	low := strings.ToLower(everything)
	for _, s := range f.forbidden {
		if strings.Contains(low, s) {
			return 400, errBody(f.violate("request %s %s contains a forbidden fixture string", r.Method, r.URL.Path)), 0
		}
	}
	if r.Header.Get("Authorization") != Token {
		return 401, `{"detail":"Authentication credentials were not provided."}`, 0
	}
	// The documented rate limit, over a sliding window.
	now := time.Now()
	cut := 0
	for cut < len(f.admitted) && now.Sub(f.admitted[cut]) >= f.window {
		cut++
	}
	f.admitted = append(f.admitted[cut:], now)
	if len(f.admitted) > f.limit {
		f.retryAfter = 1
		return 429, `{"detail":"Request was throttled."}`, 0
	}
	var fault *Fault
	if len(f.faults) > 0 {
		fault = &f.faults[0]
		f.faults = f.faults[1:]
	} else if f.hook != nil {
		f.mu.Unlock()
		fault = f.hook(r)
		f.mu.Lock()
	}
	if fault != nil {
		f.retryAfter = fault.RetryAfter
	}
	if fault != nil && !fault.After && fault.Status != 0 {
		return fault.Status, faultBody(*fault), fault.Delay
	}
	status, resp = f.apply(r, body)
	if fault != nil {
		delay = fault.Delay
		if fault.After && fault.Status != 0 {
			return fault.Status, faultBody(*fault), delay
		}
	}
	return status, resp, delay
}

func faultBody(ft Fault) string {
	if ft.Body != "" {
		return ft.Body
	}
	if ft.Status == 429 {
		return `{"detail":"Request was throttled."}`
	}
	return `{"detail":"A server error occurred."}`
}

func errBody(msg string) string {
	b, _ := json.Marshal(map[string][]string{"non_field_errors": {msg}})
	return string(b)
}

// apply implements the contract table.
func (f *Fake) apply(r *http.Request, body []byte) (int, string) {
	p := r.URL.Path
	if !strings.HasSuffix(p, "/") {
		return 404, errBody(f.violate("path %s does not end with a slash", p))
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case p == "/v2/api-status/" && r.Method == http.MethodGet:
		return 200, `{"status":"ok"}`
	case p == "/v2/subscriptions/" && r.Method == http.MethodPost:
		return f.create(r, body)
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "subscriptions" && r.Method == http.MethodPut:
		return f.update(r, parts[2], body)
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "subscriptions" && r.Method == http.MethodDelete:
		return f.churn(r, parts[2], body)
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "unchurn" && r.Method == http.MethodPut:
		return f.unchurn(parts[2], body)
	case len(parts) == 3 && parts[0] == "v2" && parts[1] == "users" && r.Method == http.MethodDelete:
		return f.deleteUser(parts[2], body)
	case strings.HasPrefix(p, "/v2/customers"):
		return 400, errBody(f.violate("billingd must never call %s (it returns contact data)", p))
	}
	return 404, errBody(f.violate("no such call: %s %s", r.Method, p))
}

// fields decodes a JSON object body and checks each field's type: the
// names in strs must be strings, those in ints integers; anything else,
// or a missing required field, is a violation.
func (f *Fake) fields(r *http.Request, body []byte, strs, ints, optional []string) (map[string]string, map[string]int64, string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, nil, f.violate("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, nil, f.violate("%s %s: body is not a JSON object", r.Method, r.URL.Path)
	}
	opt := map[string]bool{}
	for _, o := range optional {
		opt[o] = true
	}
	ss, is := map[string]string{}, map[string]int64{}
	known := map[string]bool{}
	for _, k := range strs {
		known[k] = true
		raw, ok := m[k]
		if !ok {
			if opt[k] {
				continue
			}
			return nil, nil, f.violate("%s %s: missing field %s", r.Method, r.URL.Path, k)
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, nil, f.violate("%s %s: field %s is not a string", r.Method, r.URL.Path, k)
		}
		ss[k] = s
	}
	for _, k := range ints {
		known[k] = true
		raw, ok := m[k]
		if !ok {
			return nil, nil, f.violate("%s %s: missing field %s", r.Method, r.URL.Path, k)
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, nil, f.violate("%s %s: field %s is not an integer", r.Method, r.URL.Path, k)
		}
		is[k] = n
	}
	for k := range m {
		if !known[k] {
			return nil, nil, f.violate("%s %s: unexpected field %s", r.Method, r.URL.Path, k)
		}
	}
	if v, ok := ss["plan_interval"]; ok && v != "month" && v != "year" {
		return nil, nil, f.violate("plan_interval %q is not month or year", v)
	}
	if v, ok := ss["status"]; ok && v != "active" && v != "trialing" {
		return nil, nil, f.violate("status %q is not active or trialing", v)
	}
	if v, ok := ss["plan_currency"]; ok && !currency.MatchString(v) {
		return nil, nil, f.violate("plan_currency %q is not lowercase ISO 4217", v)
	}
	if v, ok := is["value"]; ok && v < 0 {
		return nil, nil, f.violate("value %d is negative", v)
	}
	if v, ok := is["effective_date"]; ok && (v < 946684800 || v > 4102444800) {
		return nil, nil, f.violate("effective_date %d is not Unix seconds", v)
	}
	return ss, is, ""
}

func (f *Fake) checkAlias(what, a string) string {
	if !aliasRe.MatchString(a) {
		return f.violate("%s %q is not 1-36 characters of [A-Za-z0-9_-]", what, a)
	}
	return ""
}

func (f *Fake) create(r *http.Request, body []byte) (int, string) {
	ss, is, v := f.fields(r, body,
		[]string{"user_alias", "subscription_alias", "email", "plan_id", "plan_interval", "plan_currency", "status"},
		[]string{"value", "effective_date"}, []string{"plan_currency", "status"})
	if v != "" {
		return 400, errBody(v)
	}
	for _, k := range []string{"user_alias", "subscription_alias"} {
		if v := f.checkAlias(k, ss[k]); v != "" {
			return 400, errBody(v)
		}
	}
	if ss["email"] != ss["user_alias"] {
		return 400, errBody(f.violate("email must carry the user alias, nothing else"))
	}
	if ss["plan_id"] == "" {
		return 400, errBody(f.violate("plan_id is empty"))
	}
	alias := ss["subscription_alias"]
	if _, ok := f.subs[alias]; ok {
		return 400, errBody("A subscription with this subscription_alias already exists.")
	}
	s := &Sub{UserAlias: ss["user_alias"], SubscriptionAlias: alias, PlanID: ss["plan_id"], PlanInterval: ss["plan_interval"],
		PlanCurrency: ss["plan_currency"], Status: ss["status"], Value: is["value"], EffectiveDate: is["effective_date"], Ops: []string{"create"}}
	if s.PlanCurrency == "" {
		s.PlanCurrency = "usd"
	}
	if s.Status == "" {
		s.Status = "active"
	}
	f.subs[alias] = s
	delete(f.erased, s.UserAlias)
	b, _ := json.Marshal(map[string]any{"subscription_alias": alias, "user_alias": s.UserAlias, "value": s.Value})
	return 201, string(b)
}

func (f *Fake) update(r *http.Request, alias string, body []byte) (int, string) {
	if v := f.checkAlias("subscription_alias", alias); v != "" {
		return 400, errBody(v)
	}
	ss, is, v := f.fields(r, body, []string{"plan_id", "plan_interval", "status"}, []string{"value", "effective_date"}, []string{"status"})
	if v != "" {
		return 400, errBody(v)
	}
	s, ok := f.subs[alias]
	if !ok {
		return 404, `{"detail":"Not found."}`
	}
	s.PlanID, s.PlanInterval, s.Value, s.EffectiveDate = ss["plan_id"], ss["plan_interval"], is["value"], is["effective_date"]
	if st, ok := ss["status"]; ok {
		s.Status = st
	}
	s.Ops = append(s.Ops, "update")
	return 200, `{}`
}

func (f *Fake) churn(r *http.Request, alias string, body []byte) (int, string) {
	if v := f.checkAlias("subscription_alias", alias); v != "" {
		return 400, errBody(v)
	}
	if len(body) > 0 {
		return 400, errBody(f.violate("churn takes no body (parameters in the query string)"))
	}
	q := r.URL.Query()
	eff, err := strconv.ParseInt(q.Get("effective_date"), 10, 64)
	if err != nil || eff < 946684800 {
		return 400, errBody(f.violate("churn effective_date %q is not Unix seconds", q.Get("effective_date")))
	}
	ct := q.Get("churn_type")
	if ct != "voluntary" && ct != "delinquent" {
		return 400, errBody(f.violate("churn_type %q is not voluntary or delinquent", ct))
	}
	if extra := unknownKeys(q, "effective_date", "churn_type"); extra != "" {
		return 400, errBody(f.violate("churn: unexpected query parameter %s", extra))
	}
	s, ok := f.subs[alias]
	if !ok {
		return 404, `{"detail":"Not found."}`
	}
	if s.Churned {
		return 400, errBody("Subscription is already scheduled to churn.")
	}
	s.Churned, s.ChurnType, s.ChurnDate = true, ct, eff
	s.Ops = append(s.Ops, "churn")
	return 204, ""
}

func unknownKeys(q url.Values, allowed ...string) string {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	var bad []string
	for k := range q {
		if !ok[k] {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, ",")
}

// unchurn: the "not churned" answer is inferred (the contract does not
// document it); the client treats it as done.
func (f *Fake) unchurn(alias string, body []byte) (int, string) {
	if v := f.checkAlias("subscription_alias", alias); v != "" {
		return 400, errBody(v)
	}
	if len(body) > 0 {
		return 400, errBody(f.violate("unchurn takes no body"))
	}
	s, ok := f.subs[alias]
	if !ok {
		return 404, `{"detail":"Not found."}`
	}
	if !s.Churned {
		return 400, errBody("Subscription is not churned.")
	}
	s.Churned, s.ChurnType, s.ChurnDate = false, "", 0
	s.Ops = append(s.Ops, "unchurn")
	return 204, ""
}

func (f *Fake) deleteUser(alias string, body []byte) (int, string) {
	if v := f.checkAlias("user_alias", alias); v != "" {
		return 400, errBody(v)
	}
	if len(body) > 0 {
		return 400, errBody(f.violate("delete user takes no body"))
	}
	found := false
	for k, s := range f.subs {
		if s.UserAlias == alias {
			delete(f.subs, k)
			found = true
		}
	}
	if !found {
		return 404, `{"detail":"Not found."}`
	}
	f.erased[alias] = true
	return 204, ""
}
