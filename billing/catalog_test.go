package billing

import (
	"errors"
	"testing"
)

// TestParseCatalog: the example parses into its grants, and every
// kind of mistake is refused with the JSON path of the first error.
func TestParseCatalog(t *testing.T) {
	t.Parallel()
	const example = `{"features": {"sso": {"name": "Single sign-on"}, "projects": {"name": "Projects"}, "seats": {"name": "Seats"}},
	 "products": {"prod_Pro": {"sso": true, "projects": 50, "seats": {"per_unit": 1}}},
	 "prices":   {"price_ProYearly": {"projects": 100, "sso": "unlimited"}}}`
	c, err := ParseCatalog([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Products["prod_Pro"]; g["sso"] != (Grant{Kind: GrantOn}) || g["projects"] != (Grant{Kind: GrantLimit, N: 50}) ||
		g["seats"] != (Grant{Kind: GrantPerUnit, N: 1}) {
		t.Errorf("product grants %+v", g)
	}
	if g := c.Prices["price_ProYearly"]; g["projects"] != (Grant{Kind: GrantLimit, N: 100}) || g["sso"] != (Grant{Kind: GrantUnlimited}) {
		t.Errorf("price grants %+v", g)
	}
	if c.Features["sso"].Name != "Single sign-on" {
		t.Errorf("features %+v", c.Features)
	}
	// The stored document parses back to the same catalog.
	again, err := ParseCatalog(c.Document())
	if err != nil || string(again.Document()) != string(c.Document()) {
		t.Errorf("round trip: %s, %v", again.Document(), err)
	}

	tests := []struct {
		name, doc, path string
	}{
		{"NotAnObject", `[1]`, "$"},
		{"Garbage", `{"features":`, "$"},
		{"TrailingData", `{} {}`, "$"},
		{"UnknownTopField", `{"features": {}, "plans": {}}`, "$.plans"},
		{"FeaturesNotObject", `{"features": []}`, "$.features"},
		{"BadFeatureKey", `{"features": {"has space": {"name": "x"}}}`, "$.features.has space"},
		{"UnknownFeatureField", `{"features": {"sso": {"name": "SSO", "price": 3}}}`, "$.features.sso"},
		{"ControlInName", `{"features": {"sso": {"name": "a\u0007b"}}}`, "$.features.sso.name"},
		{"UnknownFeature", `{"features": {"sso": {}}, "products": {"prod_A": {"sso": true, "sos": true}}}`, "$.products.prod_A.sos"},
		{"NegativeLimit", `{"features": {"projects": {}}, "products": {"prod_A": {"projects": -1}}}`, "$.products.prod_A.projects"},
		{"FractionalLimit", `{"features": {"projects": {}}, "prices": {"price_A": {"projects": 1.5}}}`, "$.prices.price_A.projects"},
		{"HugeLimit", `{"features": {"projects": {}}, "prices": {"price_A": {"projects": 1e300}}}`, "$.prices.price_A.projects"},
		{"StringLimit", `{"features": {"projects": {}}, "prices": {"price_A": {"projects": "50"}}}`, "$.prices.price_A.projects"},
		{"PerUnitUnknownField", `{"features": {"seats": {}}, "products": {"prod_A": {"seats": {"per_unit": 1, "max": 3}}}}`, "$.products.prod_A.seats"},
		{"PerUnitNegative", `{"features": {"seats": {}}, "products": {"prod_A": {"seats": {"per_unit": -2}}}}`, "$.products.prod_A.seats.per_unit"},
		{"PerUnitMissing", `{"features": {"seats": {}}, "products": {"prod_A": {"seats": {}}}}`, "$.products.prod_A.seats.per_unit"},
		{"BadProductID", `{"features": {"sso": {}}, "products": {"prod A": {"sso": true}}}`, "$.products.prod A"},
		{"ProductNotObject", `{"features": {"sso": {}}, "products": {"prod_A": true}}`, "$.products.prod_A"},
		// Members are checked in key order: the first error is stable.
		{"FirstInKeyOrder", `{"features": {"sso": {}}, "products": {"prod_B": {"x": true}, "prod_A": {"y": true}}}`, "$.products.prod_A.y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCatalog([]byte(tt.doc))
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v, want a PathError", err)
			}
			if pe.Path != tt.path {
				t.Errorf("path %q (%s), want %q", pe.Path, pe.Message, tt.path)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("a catalog error is not ErrInvalid")
			}
		})
	}
	t.Run("EmptyIsValid", func(t *testing.T) {
		c, err := ParseCatalog([]byte(`{}`))
		if err != nil || len(c.Features) != 0 || string(c.Document()) != `{"features":{},"products":{},"prices":{}}` {
			t.Errorf("%s, %v", c.Document(), err)
		}
	})
}
