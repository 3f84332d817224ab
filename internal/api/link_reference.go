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

// LinkReferences signs the client_reference_id an app puts on a Checkout
// Session (*postgres.Store): the account ID, a key ID and an expiry,
// signed with the first key of the link ring.
type LinkReferences interface {
	LinkReference(ctx context.Context, accountID string, ttl time.Duration) (string, time.Time, error)
}

// linkReferenceRequest is the optional body of POST .../link-reference.
type linkReferenceRequest struct {
	// TTLSeconds is how long the reference stays valid (default 48 h, from
	// 60 s to 7 days). A Checkout Session lives at most 24 h.
	TTLSeconds *int64 `json:"ttl_seconds"`
}

// linkReferenceJSON is the answer.
type linkReferenceJSON struct {
	AccountID         string `json:"account_id"`
	ClientReferenceID string `json:"client_reference_id"`
	ExpiresAt         string `json:"expires_at"`
}

// handleLinkReference: POST /v1/accounts/{account_id}/link-reference,
// scope app. 200 with the reference and its expiry; 409 account_erased
// for an erased account (no hint ever links to it, so no reference would);
// 400 for a bad body or validity.
func (s *Server) handleLinkReference(w http.ResponseWriter, r *http.Request) {
	id, ok := accountID(w, r)
	if !ok {
		return
	}
	var req linkReferenceRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "request body is too large")
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_json", `body must be empty or {"ttl_seconds":N}`)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_json", "body must hold at most one JSON object")
		return
	}
	ttl := billing.DefaultLinkReferenceTTL
	if req.TTLSeconds != nil {
		ttl = time.Duration(*req.TTLSeconds) * time.Second
		if *req.TTLSeconds < 60 || ttl > billing.MaxLinkReferenceTTL {
			writeError(w, http.StatusBadRequest, "invalid_ttl", "ttl_seconds must be from 60 to 604800 (7 days)")
			return
		}
	}
	if s.LinkReferences == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "link references are not configured")
		return
	}
	ref, exp, err := s.LinkReferences.LinkReference(r.Context(), id, ttl)
	switch {
	case errors.Is(err, billing.ErrAccountErased):
		writeError(w, http.StatusConflict, "account_erased",
			"this account was erased: no checkout reference links to it again; link customers with PUT /v1/accounts/{account_id}/billing")
		return
	case err != nil:
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, linkReferenceJSON{AccountID: id, ClientReferenceID: ref, ExpiresAt: exp.UTC().Format(time.RFC3339)})
}
