package profitwell

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultBase is ProfitWell's API base URL.
const DefaultBase = "https://api.profitwell.com"

// Client calls the ProfitWell API v2 endpoints billingd uses, and only
// those: never the endpoints that read customers (they return contact data).
// It is safe for concurrent use.
type Client struct {
	base    string
	token   string
	http    *http.Client
	limiter *Limiter
}

// ClientOptions configures NewClient. Zero values take defaults.
type ClientOptions struct {
	Base    string       // default DefaultBase
	Token   string       // the private API token, sent raw in Authorization
	HTTP    *http.Client // default: 15 s timeout
	Limiter *Limiter     // default: NewLimiter(DefaultLimit, DefaultWindow)
}

// NewClient returns a client for opt.
func NewClient(opt ClientOptions) *Client {
	c := &Client{base: strings.TrimRight(opt.Base, "/"), token: opt.Token, http: opt.HTTP, limiter: opt.Limiter}
	if c.base == "" {
		c.base = DefaultBase
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 15 * time.Second}
	}
	if c.limiter == nil {
		c.limiter = NewLimiter(DefaultLimit, DefaultWindow)
	}
	return c
}

// Subscription is the body of a create call. Email carries the user alias:
// the API requires the field and accepts any text; an address is never sent.
type Subscription struct {
	UserAlias         string `json:"user_alias"`
	SubscriptionAlias string `json:"subscription_alias"`
	Email             string `json:"email"`
	PlanID            string `json:"plan_id"`
	PlanInterval      string `json:"plan_interval"`
	PlanCurrency      string `json:"plan_currency"`
	Status            string `json:"status"`
	Value             int64  `json:"value"`
	EffectiveDate     int64  `json:"effective_date"`
}

// Update is the body of a plan/value change.
type Update struct {
	PlanID        string `json:"plan_id"`
	PlanInterval  string `json:"plan_interval"`
	Value         int64  `json:"value"`
	EffectiveDate int64  `json:"effective_date"`
	Status        string `json:"status,omitempty"`
}

// Error is a non-2xx answer. Message is a short, sanitised summary of the
// error body (see summarize): safe to log and store.
type Error struct {
	Op         string // e.g. "create subscription"
	Status     int
	Message    string
	RetryAfter time.Duration // from Retry-After, 0 when absent
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("profitwell %s: http %d", e.Op, e.Status)
	}
	return fmt.Sprintf("profitwell %s: http %d: %s", e.Op, e.Status, e.Message)
}

// Throttled reports a rate-limit answer: 429, or ProfitWell's
// "Request was throttled." under another status.
func (e *Error) Throttled() bool {
	return e.Status == http.StatusTooManyRequests || strings.Contains(strings.ToLower(e.Message), "throttled")
}

// Temporary reports whether a retry can succeed: throttling, 408 and 5xx.
// Every other 4xx is the request's fault and is final.
func (e *Error) Temporary() bool {
	return e.Throttled() || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

func (e *Error) mentions(words ...string) bool {
	m := strings.ToLower(e.Message)
	for _, w := range words {
		if !strings.Contains(m, w) {
			return false
		}
	}
	return true
}

// alreadyExists: a create for a subscription alias ProfitWell already has.
func (e *Error) alreadyExists() bool {
	return e.Status == http.StatusBadRequest && e.mentions("already", "exist")
}

// alreadyChurned: "already scheduled to churn" or "already churned".
func (e *Error) alreadyChurned() bool {
	return e.Status == http.StatusBadRequest && e.mentions("already", "churn")
}

// notChurned: an unchurn of a subscription that is live (inferred wording,
// see the fake), which is what a repeated unchurn meets.
func (e *Error) notChurned() bool {
	return e.Status == http.StatusBadRequest && e.mentions("not", "churn")
}

// CreateSubscription creates a subscription (POST /v2/subscriptions/).
func (c *Client) CreateSubscription(ctx context.Context, s Subscription) (int, error) {
	return c.do(ctx, "create subscription", http.MethodPost, "/v2/subscriptions/", nil, s)
}

// UpdateSubscription changes plan, value or status from u.EffectiveDate
// (PUT /v2/subscriptions/{alias}/).
func (c *Client) UpdateSubscription(ctx context.Context, alias string, u Update) (int, error) {
	return c.do(ctx, "update subscription", http.MethodPut, "/v2/subscriptions/"+url.PathEscape(alias)+"/", nil, u)
}

// ChurnSubscription churns a subscription from effectiveDate (Unix seconds)
// with churnType voluntary or delinquent (DELETE /v2/subscriptions/{alias}/).
func (c *Client) ChurnSubscription(ctx context.Context, alias string, effectiveDate int64, churnType string) (int, error) {
	q := url.Values{"effective_date": {strconv.FormatInt(effectiveDate, 10)}, "churn_type": {churnType}}
	return c.do(ctx, "churn subscription", http.MethodDelete, "/v2/subscriptions/"+url.PathEscape(alias)+"/", q, nil)
}

// UnchurnSubscription undoes a churn (PUT /v2/unchurn/{alias}/).
func (c *Client) UnchurnSubscription(ctx context.Context, alias string) (int, error) {
	return c.do(ctx, "unchurn subscription", http.MethodPut, "/v2/unchurn/"+url.PathEscape(alias)+"/", nil, nil)
}

// DeleteUser erases a user and its history (DELETE /v2/users/{alias}/).
func (c *Client) DeleteUser(ctx context.Context, userAlias string) (int, error) {
	return c.do(ctx, "delete user", http.MethodDelete, "/v2/users/"+url.PathEscape(userAlias)+"/", nil, nil)
}

// Status checks the API answers and the token is accepted (GET /v2/api-status/).
func (c *Client) Status(ctx context.Context) error {
	_, err := c.do(ctx, "api status", http.MethodGet, "/v2/api-status/", nil, nil)
	return err
}

// do sends one request after the rate limiter admits it and returns the
// HTTP status. A non-2xx answer is an *Error; a throttled one also pauses
// the limiter for Retry-After, so every sender in the process backs off.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, body any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("profitwell %s: encode: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("profitwell %s: %w", op, err)
	}
	req.Header.Set("Authorization", c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.limiter.Wait(ctx); err != nil {
		return 0, fmt.Errorf("profitwell %s: %w: %w", op, ErrRateLimitWait, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// The error names the URL, which holds only aliases: no personal data.
		return 0, fmt.Errorf("profitwell %s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	e := &Error{Op: op, Status: resp.StatusCode, Message: summarize(raw), RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	if e.Throttled() {
		c.limiter.Pause(max(e.RetryAfter, time.Second))
	}
	return resp.StatusCode, e
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// summarize turns an error body into a short message that is safe to store
// and log. ProfitWell answers {"detail": "..."}, {"non_field_errors":
// [...]} or {"field": ["..."]}; only those messages are kept, words holding
// '@' are dropped (an address must never reach our logs even if the API
// echoes one), other characters are limited to a plain set, and the result
// is capped at 200 characters. Bodies of any other shape are not kept.
func summarize(raw []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		var msgs []string
		var one string
		if json.Unmarshal(m[k], &one) == nil {
			msgs = []string{one}
		} else if json.Unmarshal(m[k], &msgs) != nil {
			continue
		}
		prefix := ""
		if k != "detail" && k != "non_field_errors" {
			prefix = clean(k) + ": "
		}
		for _, msg := range msgs {
			parts = append(parts, prefix+clean(msg))
		}
	}
	s := strings.Join(parts, "; ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func clean(s string) string {
	words := strings.Fields(s)
	out := words[:0]
	for _, w := range words {
		if strings.Contains(w, "@") {
			continue
		}
		w = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" .,:;_'()/-", r) {
				return r
			}
			return -1
		}, w)
		if w != "" {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// ErrRateLimitWait marks a request that was never sent: its context ended
// while the client-side limiter held it (e.g. paused by a Retry-After).
var ErrRateLimitWait = errors.New("waiting for the rate limit")

// IsNotFound reports a 404 answer.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
