package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/billingd/billingd/billing"
)

// Tokens resolves the hash of a presented bearer token to its record:
// billing.ErrNotFound when no token has that hash. A cache (internal/entcache)
// implements it in production so the check costs no database round trip.
type Tokens interface {
	TokenByHash(ctx context.Context, hash billing.TokenHash) (billing.Token, error)
}

const tokenNameKey ctxKey = 2

// TokenName returns the name of the API token that authenticated the
// request (the actor for audit entries), or "" when none did.
func TokenName(ctx context.Context) string {
	if ri, ok := ctx.Value(reqInfoKey).(*reqInfo); ok && ri.actor != "" {
		return ri.actor
	}
	name, _ := ctx.Value(tokenNameKey).(string)
	return name
}

// requireScope lets a request through to next only with a valid, unrevoked
// bearer token of scope. Missing, unknown and revoked tokens all get the
// same 401, so a caller learns nothing about which tokens exist; a valid
// token of another scope gets 403.
func (s *Server) requireScope(scope billing.Scope, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r)
		if !ok || s.Tokens == nil {
			unauthorized(w)
			return
		}
		hash := billing.HashToken(tok)
		t, err := s.Tokens.TokenByHash(r.Context(), hash)
		switch {
		case errors.Is(err, billing.ErrNotFound):
			unauthorized(w)
			return
		case err != nil:
			s.Error(w, r, err)
			return
		}
		if !t.Hash.Equal(hash) || t.Revoked() {
			unauthorized(w)
			return
		}
		if t.Scope != scope {
			writeError(w, http.StatusForbidden, "forbidden", "token lacks the scope for this endpoint")
			return
		}
		// The request info from the outer middleware is mutable and already
		// in the context: recording the actor there avoids copying the
		// request on the hot path.
		if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
			ri.actor = t.Name
		} else {
			r = r.WithContext(context.WithValue(r.Context(), tokenNameKey, t.Name))
		}
		next(w, r)
	}
}

// bearerToken extracts the token of "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(p):])
	// Tokens are short; refusing long values keeps hashing bounded.
	return tok, tok != "" && len(tok) <= 256
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="billingd"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid token")
}
