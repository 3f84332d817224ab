package api

import (
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// hotRoutes must answer exactly the requests the router would send to the
// same two handlers, with the same variables: for every path it accepts,
// the router matches the same template with the same account_id and key,
// and the path is one the router would not clean and redirect.
func TestHotRoutesAgreeWithRouter(t *testing.T) {
	t.Parallel()
	paths := []string{
		"/v1/accounts/acct_1/entitlement",
		"/v1/accounts/acct_1/entitlement/",
		"/v1/accounts/acct_1/entitlement/features/seats",
		"/v1/accounts/acct_1/entitlement/features/seats/",
		"/v1/accounts/acct_1/entitlement/features/",
		"/v1/accounts/acct_1/entitlement/features",
		"/v1/accounts/acct_1/entitlement/features/a/b",
		"/v1/accounts//entitlement",
		"/v1/accounts/./entitlement",
		"/v1/accounts/../entitlement",
		"/v1/accounts/acct_1/entitlement/features/..",
		"/v1/accounts/acct_1/entitlement/features/.",
		"/v1/accounts/bad id/entitlement",
		"/v1/accounts/ünï/entitlement/features/ключ",
		"/v1/accounts/acct_1/entitlements",
		"/v1/accounts/acct_1/billing",
		"/v1/accounts/acct_1",
		"/v1/accounts/entitlement",
		"//v1/accounts/acct_1/entitlement",
		"/v1/accounts/acct_1//entitlement",
		"/v1/accounts/acct_1/entitlement//features/x",
		"/v2/accounts/acct_1/entitlement",
		"/v1/accounts/a:b.c-d_e/entitlement/features/f.g:h-i_j",
	}
	hot := map[string]bool{ // the others go to the router
		"/v1/accounts/acct_1/entitlement":                       true,
		"/v1/accounts/acct_1/entitlement/features/seats":        true,
		"/v1/accounts/bad id/entitlement":                       true, // the handler answers 400
		"/v1/accounts/ünï/entitlement/features/ключ":            true,
		"/v1/accounts/a:b.c-d_e/entitlement/features/f.g:h-i_j": true,
	}
	s := &Server{}
	r := s.router()
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			id, key, ok := entitlementPath(p)
			var m mux.RouteMatch
			matched := r.Match(httptest.NewRequest(http.MethodGet, "http://billingd"+escapeSpaces(p), nil), &m) && m.MatchErr == nil
			if hot[p] != ok {
				t.Fatalf("hot path took %q: %v, want %v", p, ok, hot[p])
			}
			if !ok {
				return // the router decides, as before
			}
			if path.Clean(p) != p {
				t.Fatalf("accepted %q, which the router cleans and redirects", p)
			}
			if !matched {
				t.Fatalf("accepted %q (id %q key %q), which no route matches", p, id, key)
			}
			tpl, _ := m.Route.GetPathTemplate()
			want := tplEntitlement
			if key != "" {
				want = tplFeature
			}
			if tpl != want || m.Vars["account_id"] != id || m.Vars["key"] != key {
				t.Fatalf("hot path: %s id %q key %q; router: %s %v", want, id, key, tpl, m.Vars)
			}
		})
	}
}

func escapeSpaces(p string) string { return strings.ReplaceAll(p, " ", "%20") }
