package api

import (
	"net/http"
	"strings"

	"github.com/billingd/billingd/billing"
	"github.com/gorilla/mux"
)

// The app's entitlement reads are most of the API's traffic, and gorilla/mux
// finds a route by trying each registered one's regular expression in turn:
// in BenchmarkEntitlementHit's profile routing was a third of a cached
// answer's CPU. hotRoutes answers the two read routes by splitting the path
// instead, before the router; anything else (other methods, other shapes,
// paths the router would clean or refuse) goes to the router unchanged, and
// both routes stay registered there (routes(), the OpenAPI check) with the
// same handlers. TestHotRoutesAgreeWithRouter holds the two to the same
// answers.

const (
	tplEntitlement = "/v1/accounts/{account_id}/entitlement"
	tplFeature     = "/v1/accounts/{account_id}/entitlement/features/{key}"
)

func (s *Server) hotRoutes(next http.Handler) http.Handler {
	entitlement := s.requireScope(billing.ScopeApp, s.handleEntitlement)
	feature := s.requireScope(billing.ScopeApp, s.handleFeature)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if id, key, ok := entitlementPath(r.URL.Path); ok {
				r.SetPathValue("account_id", id)
				h, tpl := entitlement, tplEntitlement
				if key != "" {
					r.SetPathValue("key", key)
					h, tpl = feature, tplFeature
				}
				if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
					ri.route = tpl
				}
				h(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// entitlementPath splits /v1/accounts/{id}/entitlement and
// /v1/accounts/{id}/entitlement/features/{key} (key "" for the first). It
// declines what the router would treat differently: an empty segment, or
// "." and ".." which the router cleans and redirects.
func entitlementPath(p string) (id, key string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v1/accounts/")
	if !found {
		return "", "", false
	}
	id, rest, found = strings.Cut(rest, "/")
	if !found || !plainSegment(id) {
		return "", "", false
	}
	if rest == "entitlement" {
		return id, "", true
	}
	key, found = strings.CutPrefix(rest, "entitlement/features/")
	if !found || !plainSegment(key) || strings.Contains(key, "/") {
		return "", "", false
	}
	return id, key, true
}

func plainSegment(s string) bool { return s != "" && s != "." && s != ".." }

// pathVar is a route variable, set by hotRoutes or by the router.
func pathVar(r *http.Request, name string) string {
	if v := r.PathValue(name); v != "" {
		return v
	}
	return mux.Vars(r)[name]
}
