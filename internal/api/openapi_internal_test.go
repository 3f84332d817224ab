package api

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"
)

// TestEveryRouteDocumented holds routes() and openapi.json to each other:
// every /v1 route and method is an operation of the document and every
// operation is a route, and the document is valid OpenAPI 3.1.
func TestEveryRouteDocumented(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not valid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}

	r := mux.NewRouter()
	(&Server{}).routes(r)
	var routed []string
	err = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tpl, "/v1/") {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s accepts every method: give it its methods", tpl)
			return nil
		}
		for _, m := range methods {
			routed = append(routed, m+" "+tpl)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for m, op := range item.Operations() {
			documented = append(documented, m+" "+path)
			if op.OperationID == "" || op.Extensions["x-billingd-scope"] == nil {
				t.Errorf("%s %s: needs an operationId and x-billingd-scope", m, path)
			}
			for _, code := range []string{"401", "403"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s %s: %s (every /v1 operation needs a token) is not documented", m, path, code)
				}
			}
		}
	}
	slices.Sort(routed)
	slices.Sort(documented)
	for _, k := range routed {
		if !slices.Contains(documented, k) {
			t.Errorf("route %s is not in openapi.json", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(routed, k) {
			t.Errorf("openapi.json documents %s, which no route serves", k)
		}
	}
	if len(routed) == 0 {
		t.Fatal("no /v1 route found: the walk is broken")
	}
	if doc.Webhooks["entitlement.changed"] == nil || doc.Webhooks["entitlement.changed"].Post == nil {
		t.Error("the outbound app webhook (entitlement.changed) is not in the document's webhooks")
	}
}
