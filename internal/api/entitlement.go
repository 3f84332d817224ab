package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/billingd/billingd/billing"
)

// Entitlements answers the hot-path entitlement question
// (*entcache.Cache[*EntitlementResponse], whose answers RenderEntitlement
// makes). FreshEntitlement reads past the cache, for a client
// that sent Cache-Control: no-cache. InvalidateAccount lets a handler that
// changed an account read its own write at once on this replica (serve
// also wires the Store to the cache, postgres.Store.OnAccountsChanged, so
// every write path does); other replicas learn of it through the
// cache-invalidation feed.
type Entitlements interface {
	Entitlement(ctx context.Context, accountID string, livemode bool) (*EntitlementResponse, error)
	FreshEntitlement(ctx context.Context, accountID string, livemode bool) (*EntitlementResponse, error)
	InvalidateAccount(accountID string)
}

// EntitlementResponse is the answer of GET
// /v1/accounts/{account_id}/entitlement, encoded and tagged once per
// change: the entitlement cache keeps it, so a cache hit only writes bytes.
type EntitlementResponse struct {
	// Body is the JSON response body, newline-terminated.
	Body []byte
	// ETag is the strong entity tag of Body, quoted (etag).
	ETag string
	// etagHeader is []string{ETag}, assigned to the response header
	// without an allocation per request. Read only.
	etagHeader []string
	// features are the answers of GET .../entitlement/features/{key} for
	// each granted feature; notGranted answers every other key. Both are
	// shared between accounts (internFeature): equal answers, one copy.
	features   map[string]*FeatureResponse
	notGranted *FeatureResponse
}

// FeatureResponse is the answer of GET
// /v1/accounts/{account_id}/entitlement/features/{key}, encoded and tagged
// once (see EntitlementResponse).
type FeatureResponse struct {
	Body       []byte
	ETag       string
	etagHeader []string
}

// Feature returns the answer for one feature key.
func (a *EntitlementResponse) Feature(key string) *FeatureResponse {
	if f, ok := a.features[key]; ok {
		return f
	}
	return a.notGranted
}

// entitlementJSON is the wire shape of the entitlement endpoint.
type entitlementJSON struct {
	Entitled   bool    `json:"entitled"`
	Status     string  `json:"status"`
	Plan       *string `json:"plan"`
	ValidUntil *string `json:"valid_until"`
	Livemode   bool    `json:"livemode"`
	// Issue 18: what the account may use and how much of it.
	Features map[string]featureJSON `json:"features"`
	// FeaturesIncomplete: a Stripe Entitlements summary had more pages
	// than its event carried and the full list is still being fetched.
	FeaturesIncomplete bool                 `json:"features_incomplete"`
	Quantity           int64                `json:"quantity"`
	Trial              bool                 `json:"trial"`
	InGrace            bool                 `json:"in_grace"`
	CancelAtPeriodEnd  bool                 `json:"cancel_at_period_end"`
	ScheduledChange    *scheduledChangeJSON `json:"scheduled_change"`
}

// featureJSON is one feature of the answer: limit null is on with no
// numeric limit.
type featureJSON struct {
	Limit *int64 `json:"limit"`
}

// scheduledChangeJSON is the next change Stripe will make (at null: a
// pending update, applied once its invoice is paid).
type scheduledChangeJSON struct {
	At       *string `json:"at"`
	Plan     *string `json:"plan"`
	Quantity *int64  `json:"quantity"`
	Cancel   bool    `json:"cancel"`
}

func toScheduledChangeJSON(c *billing.ScheduledChange) *scheduledChangeJSON {
	if c == nil {
		return nil
	}
	j := &scheduledChangeJSON{At: rfc3339(c.At), Quantity: c.Quantity, Cancel: c.Cancel}
	if c.Plan != "" {
		p := c.Plan
		j.Plan = &p
	}
	return j
}

// RenderEntitlement encodes e as the entitlement endpoint answers it,
// with the answers of its single-feature endpoint. It cannot fail: every
// field is a plain value. serve gives it to the entitlement cache
// (entcache.New), which calls it once per change; the change feed renders
// its entries with it too, so this is the one wire format of an answer.
func RenderEntitlement(e billing.Entitlement) *EntitlementResponse {
	j := entitlementJSON{Entitled: e.Entitled, Status: string(e.Status), ValidUntil: rfc3339(e.ValidUntil), Livemode: e.Livemode,
		Features: make(map[string]featureJSON, len(e.Features)), FeaturesIncomplete: e.FeaturesIncomplete,
		Quantity: e.Quantity, Trial: e.Trial, InGrace: e.InGrace, CancelAtPeriodEnd: e.CancelAtPeriodEnd,
		ScheduledChange: toScheduledChangeJSON(e.ScheduledChange)}
	if e.Plan != "" {
		j.Plan = &e.Plan
	}
	r := &EntitlementResponse{notGranted: internFeature(false, nil, e.FeaturesIncomplete)}
	if len(e.Features) > 0 {
		r.features = make(map[string]*FeatureResponse, len(e.Features))
	}
	for k, f := range e.Features {
		j.Features[k] = featureJSON(f)
		r.features[k] = internFeature(true, f.Limit, e.FeaturesIncomplete)
	}
	body, _ := json.Marshal(j)
	body = append(body, '\n')
	r.Body, r.ETag = body, etag(body)
	r.etagHeader = []string{r.ETag}
	return r
}

// featureKey names one distinct single-feature answer.
type featureKey struct {
	enabled, incomplete, limited bool
	limit                        int64
}

// features holds the distinct single-feature answers: a handful of limits
// across every account, so each cached entitlement keeps pointers, not
// bodies. Bounded: past maxInterned distinct answers new ones are not
// kept here (each entitlement then holds its own).
var (
	featureMu   sync.Mutex
	featureSet  = map[featureKey]*FeatureResponse{}
	maxInterned = 4096
)

// internFeature returns the answer {"enabled":..,"limit":..} (and
// "features_incomplete": true when Stripe's list is being fetched).
func internFeature(enabled bool, limit *int64, incomplete bool) *FeatureResponse {
	k := featureKey{enabled: enabled, incomplete: incomplete, limited: limit != nil}
	if limit != nil {
		k.limit = *limit
	}
	featureMu.Lock()
	defer featureMu.Unlock()
	if f, ok := featureSet[k]; ok {
		return f
	}
	v := struct {
		Enabled    bool   `json:"enabled"`
		Limit      *int64 `json:"limit"`
		Incomplete bool   `json:"features_incomplete,omitempty"`
	}{enabled, limit, incomplete}
	body, _ := json.Marshal(v)
	body = append(body, '\n')
	tag := etag(body)
	f := &FeatureResponse{Body: body, ETag: tag, etagHeader: []string{tag}}
	if len(featureSet) < maxInterned {
		featureSet[k] = f
	}
	return f
}

// handleEntitlement: GET /v1/accounts/{account_id}/entitlement, the hot
// path. An account billingd has never heard of is simply not entitled
// (200). ?livemode=false asks about test-mode subscriptions.
func (s *Server) handleEntitlement(w http.ResponseWriter, r *http.Request) {
	a, ok := s.entitlementAnswer(w, r)
	if !ok {
		return
	}
	writeTagged(w, r, a.Body, a.ETag, a.etagHeader)
}

// handleFeature: GET /v1/accounts/{account_id}/entitlement/features/{key}:
// one feature of the same cached answer, {"enabled":bool,"limit":n|null},
// with its own ETag, under the same rules (no-cache, If-None-Match).
func (s *Server) handleFeature(w http.ResponseWriter, r *http.Request) {
	key := pathVar(r, "key")
	if !billing.ValidFeatureKey(key) {
		writeError(w, http.StatusBadRequest, "invalid_feature_key", "feature key must be 1-80 characters of A-Z a-z 0-9 _ . : - starting with a letter or digit")
		return
	}
	a, ok := s.entitlementAnswer(w, r)
	if !ok {
		return
	}
	f := a.Feature(key)
	writeTagged(w, r, f.Body, f.ETag, f.etagHeader)
}

// entitlementAnswer validates the request and returns the account's
// cached (or, with no-cache, fresh) answer, or answers the error.
func (s *Server) entitlementAnswer(w http.ResponseWriter, r *http.Request) (*EntitlementResponse, bool) {
	id, ok := accountID(w, r)
	if !ok {
		return nil, false
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
			return nil, false
		}
	}
	if s.Entitlements == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "entitlements are not configured")
		return nil, false
	}
	var a *EntitlementResponse
	var err error
	if noCache(r.Header) {
		a, err = s.Entitlements.FreshEntitlement(r.Context(), id, live)
	} else {
		a, err = s.Entitlements.Entitlement(r.Context(), id, live)
	}
	if err != nil {
		s.Error(w, r, err)
		return nil, false
	}
	return a, true
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
