package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

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
}

// entitlementJSON is the wire shape of the entitlement endpoint.
type entitlementJSON struct {
	Entitled   bool    `json:"entitled"`
	Status     string  `json:"status"`
	Plan       *string `json:"plan"`
	ValidUntil *string `json:"valid_until"`
	Livemode   bool    `json:"livemode"`
}

// RenderEntitlement encodes e as the entitlement endpoint answers it. It
// cannot fail: every field is a plain value. serve gives it to the
// entitlement cache (entcache.New), which calls it once per change.
func RenderEntitlement(e billing.Entitlement) *EntitlementResponse {
	j := entitlementJSON{Entitled: e.Entitled, Status: string(e.Status), ValidUntil: rfc3339(e.ValidUntil), Livemode: e.Livemode}
	if e.Plan != "" {
		j.Plan = &e.Plan
	}
	body, _ := json.Marshal(j)
	body = append(body, '\n')
	tag := etag(body)
	return &EntitlementResponse{Body: body, ETag: tag, etagHeader: []string{tag}}
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
	var a *EntitlementResponse
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
	writeTagged(w, r, a.Body, a.ETag, a.etagHeader)
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
