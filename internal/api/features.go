package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
)

// Catalogs stores the features catalog (*postgres.Store).
type Catalogs interface {
	Catalog(ctx context.Context) (billing.CatalogRecord, error)
	CatalogPut(ctx context.Context, c billing.Catalog, actor string) error
}

// Overrides stores per-account feature overrides (*postgres.Store).
type Overrides interface {
	Override(ctx context.Context, accountID string) (billing.Override, error)
	OverridePut(ctx context.Context, o billing.Override) (billing.Override, error)
	OverrideDelete(ctx context.Context, accountID, actor string) error
}

// maxCatalogBytes caps a catalog document: larger than the API's other
// bodies (thousands of prices), still bounded.
const maxCatalogBytes = 4 << 20

// readBody reads a JSON request body of at most limit bytes, or answers
// 413/400 and returns false.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "invalid_body", "the request body could not be read")
		return nil, false
	}
	return b, true
}

// actorOf names who made a change: the token's name.
func actorOf(r *http.Request) string {
	if a := TokenName(r.Context()); billing.ValidActor(a) {
		return a
	}
	return "api"
}

// handleCatalogGet: GET /v1/catalog, the stored catalog document (the
// shape PUT takes, so it can be edited and put back).
func (s *Server) handleCatalogGet(w http.ResponseWriter, r *http.Request) {
	if s.Catalogs == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the catalog is not configured")
		return
	}
	rec, err := s.Catalogs.Catalog(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	body := append(rec.Catalog.Document(), '\n')
	if rec.UpdatedAt != nil {
		w.Header().Set("Last-Modified", rec.UpdatedAt.UTC().Format(http.TimeFormat))
	}
	writeTagged(w, r, body, etag(body), nil)
}

// handleCatalogPut: PUT /v1/catalog replaces the catalog as a whole. 400
// invalid_catalog names the JSON path of the first error; 200 answers the
// stored document. Every replica's answers change within the cache bound,
// this one's at once.
func (s *Server) handleCatalogPut(w http.ResponseWriter, r *http.Request) {
	if s.Catalogs == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the catalog is not configured")
		return
	}
	raw, ok := readBody(w, r, maxCatalogBytes)
	if !ok {
		return
	}
	c, err := billing.ParseCatalog(raw)
	var pe *billing.PathError
	if errors.As(err, &pe) {
		writeError(w, http.StatusBadRequest, "invalid_catalog", pe.Error())
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Catalogs.CatalogPut(r.Context(), c, actorOf(r)); err != nil {
		s.Error(w, r, err)
		return
	}
	body := append(c.Document(), '\n')
	writeTagged(w, r, body, etag(body), nil)
}

// overrideJSON is the body of PUT and the answer of GET
// /v1/accounts/{account_id}/overrides.
type overrideJSON struct {
	AccountID string                     `json:"account_id,omitempty"`
	Features  map[string]json.RawMessage `json:"features"`
	ExpiresAt *time.Time                 `json:"expires_at"`
	UpdatedAt *time.Time                 `json:"updated_at,omitempty"`
	UpdatedBy string                     `json:"updated_by,omitempty"`
}

func toOverrideJSON(o billing.Override) overrideJSON {
	j := overrideJSON{AccountID: o.AccountID, Features: map[string]json.RawMessage{}, ExpiresAt: o.ExpiresAt, UpdatedBy: o.UpdatedBy}
	if !o.UpdatedAt.IsZero() {
		at := o.UpdatedAt.UTC()
		j.UpdatedAt = &at
	}
	if j.ExpiresAt != nil {
		e := j.ExpiresAt.UTC()
		j.ExpiresAt = &e
	}
	for k, g := range o.Features {
		b, _ := g.MarshalJSON()
		j.Features[k] = b
	}
	return j
}

// parseOverride validates a PUT body; the error is a *billing.PathError.
func parseOverride(raw []byte, now time.Time) (billing.Override, error) {
	var body struct {
		Features  map[string]json.RawMessage `json:"features"`
		ExpiresAt *time.Time                 `json:"expires_at"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return billing.Override{}, &billing.PathError{Path: "$", Message: `must be {"features": {...}, "expires_at": "RFC 3339 time" or null} with no other field`}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return billing.Override{}, &billing.PathError{Path: "$", Message: "must hold one JSON object"}
	}
	if body.Features == nil {
		return billing.Override{}, &billing.PathError{Path: "$.features", Message: "required: an object of feature keys"}
	}
	if len(body.Features) > billing.MaxOverrideFeatures {
		return billing.Override{}, &billing.PathError{Path: "$.features", Message: "too many features"}
	}
	o := billing.Override{Features: make(map[string]billing.Grant, len(body.Features)), ExpiresAt: body.ExpiresAt}
	keys := make([]string, 0, len(body.Features))
	for k := range body.Features {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := "$.features." + k
		if !billing.ValidFeatureKey(k) {
			return billing.Override{}, &billing.PathError{Path: p, Message: "feature key must be 1-80 characters of A-Z a-z 0-9 _ . : - starting with a letter or digit"}
		}
		g, err := billing.ParseGrant(body.Features[k], p, false)
		if err != nil {
			return billing.Override{}, err
		}
		o.Features[k] = g
	}
	if o.ExpiresAt != nil && !o.ExpiresAt.After(now) {
		return billing.Override{}, &billing.PathError{Path: "$.expires_at", Message: "must be in the future"}
	}
	return o, nil
}

// handleOverridePut: PUT /v1/accounts/{account_id}/overrides sets the
// account's override (replacing any), audited under the token's name.
func (s *Server) handleOverridePut(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	if s.Overrides == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "overrides are not configured")
		return
	}
	raw, ok := readBody(w, r, s.MaxBodyBytes)
	if !ok {
		return
	}
	o, err := parseOverride(raw, s.now())
	var pe *billing.PathError
	if errors.As(err, &pe) {
		writeError(w, http.StatusBadRequest, "invalid_override", pe.Error())
		return
	}
	o.AccountID, o.UpdatedBy = id, actorOf(r)
	out, err := s.Overrides.OverridePut(r.Context(), o)
	if errors.Is(err, billing.ErrAccountErased) {
		writeError(w, http.StatusConflict, "account_erased", "this account was erased; link it again with \"reuse_erased_account\": true first")
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toOverrideJSON(out))
}

// handleOverrideGet: GET /v1/accounts/{account_id}/overrides (404 none).
func (s *Server) handleOverrideGet(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	if s.Overrides == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "overrides are not configured")
		return
	}
	o, err := s.Overrides.Override(r.Context(), id)
	if errors.Is(err, billing.ErrNotFound) {
		writeError(w, http.StatusNotFound, "override_not_found", "this account has no override")
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toOverrideJSON(o))
}

// handleOverrideDelete: DELETE /v1/accounts/{account_id}/overrides (204;
// 404 when there was none), audited.
func (s *Server) handleOverrideDelete(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	if s.Overrides == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "overrides are not configured")
		return
	}
	err := s.Overrides.OverrideDelete(r.Context(), id, actorOf(r))
	if errors.Is(err, billing.ErrNotFound) {
		writeError(w, http.StatusNotFound, "override_not_found", "this account has no override")
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
