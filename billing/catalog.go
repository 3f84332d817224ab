package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The catalog of features and limits: which product and price grants
// which feature, and how much of it. It is the merchant's product
// description, not personal data, and is replaced as a whole (PUT
// /v1/catalog, `billingd catalog apply`).
//
//	{"features": {"sso": {"name": "Single sign-on"}, "seats": {"name": "Seats"}},
//	 "products": {"prod_Pro": {"sso": true, "projects": 50, "seats": {"per_unit": 1}}},
//	 "prices":   {"price_ProYearly": {"projects": 100}}}

// GrantKind is what a catalog or override entry grants.
type GrantKind uint8

// The kinds of grant.
const (
	// GrantOff: not granted (a price entry can take back its product's).
	GrantOff GrantKind = iota
	// GrantOn: on, with no numeric limit (true).
	GrantOn
	// GrantUnlimited: a limit without bound ("unlimited").
	GrantUnlimited
	// GrantLimit: a limit of N.
	GrantLimit
	// GrantPerUnit: N times the quantity of the item that grants it
	// ({"per_unit": N}): seats.
	GrantPerUnit
)

// Grant is one feature's entry in a catalog product or price, or in an
// override.
type Grant struct {
	Kind GrantKind
	N    int64 // GrantLimit, GrantPerUnit
}

// Feature is a feature the catalog declares.
type Feature struct {
	Name string `json:"name"`
}

// Catalog is the parsed catalog document.
type Catalog struct {
	Features map[string]Feature
	Products map[string]map[string]Grant
	Prices   map[string]map[string]Grant
}

// Catalog limits: a product catalog, not a database.
const (
	MaxCatalogFeatures = 500
	MaxCatalogEntries  = 10_000 // products plus prices
	maxFeatureName     = 200
	// MaxLimit is the largest limit a catalog or override may state
	// (2^53-1: every JSON client reads it exactly).
	MaxLimit = 1<<53 - 1
)

// reFeatureKey is a feature key: Stripe Entitlements lookup keys and the
// app's own names both fit.
var reFeatureKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$`)

// ValidFeatureKey reports whether k may name a feature.
func ValidFeatureKey(k string) bool { return reFeatureKey.MatchString(k) }

// ValidCatalogObjectID reports whether id may be a product or price ID in
// the catalog (the alphabet billingd keeps of Stripe's object IDs).
func ValidCatalogObjectID(id string) bool { return reCatalogObject.MatchString(id) }

var reCatalogObject = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,255}$`)

// PathError is a validation error at a JSON path of a document ($ is the
// root): the first error of a catalog or override, for a 400 answer.
type PathError struct {
	Path    string
	Message string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Message }

// Unwrap makes a PathError an ErrInvalid.
func (e *PathError) Unwrap() error { return ErrInvalid }

func pathErr(path, format string, args ...any) error {
	return &PathError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// ParseCatalog reads and validates a catalog document. The error is a
// *PathError naming the first problem (members are checked in key order,
// so the answer is the same for the same document): an unknown field, an
// unknown feature, a negative or fractional limit, a malformed ID.
func ParseCatalog(raw []byte) (Catalog, error) {
	var top map[string]json.RawMessage
	if err := decodeStrict(raw, &top); err != nil || top == nil {
		return Catalog{}, pathErr("$", "must be a JSON object with features, products and prices")
	}
	for _, k := range sortedKeys(top) {
		if k != "features" && k != "products" && k != "prices" {
			return Catalog{}, pathErr("$."+k, "unknown field (expected features, products, prices)")
		}
	}
	c := Catalog{Features: map[string]Feature{}, Products: map[string]map[string]Grant{}, Prices: map[string]map[string]Grant{}}
	var feats map[string]json.RawMessage
	if raw, ok := top["features"]; ok {
		if err := decodeStrict(raw, &feats); err != nil {
			return Catalog{}, pathErr("$.features", "must be an object of feature keys")
		}
	}
	if len(feats) > MaxCatalogFeatures {
		return Catalog{}, pathErr("$.features", "more than %d features", MaxCatalogFeatures)
	}
	for _, k := range sortedKeys(feats) {
		p := "$.features." + k
		if !ValidFeatureKey(k) {
			return Catalog{}, pathErr(p, "feature key must be 1-80 characters of A-Z a-z 0-9 _ . : - starting with a letter or digit")
		}
		var f struct {
			Name *string `json:"name"`
		}
		if err := decodeStrictFields(feats[k], &f); err != nil {
			return Catalog{}, pathErr(p, "must be {\"name\": \"...\"}: %s", err)
		}
		name := ""
		if f.Name != nil {
			name = *f.Name
		}
		if utf8.RuneCountInString(name) > maxFeatureName || strings.IndexFunc(name, isControl) >= 0 {
			return Catalog{}, pathErr(p+".name", "must be at most %d characters without control characters", maxFeatureName)
		}
		c.Features[k] = Feature{Name: name}
	}
	for _, sec := range []struct {
		name string
		out  map[string]map[string]Grant
	}{{"products", c.Products}, {"prices", c.Prices}} {
		var objs map[string]json.RawMessage
		if raw, ok := top[sec.name]; ok {
			if err := decodeStrict(raw, &objs); err != nil {
				return Catalog{}, pathErr("$."+sec.name, "must be an object of Stripe %s IDs", strings.TrimSuffix(sec.name, "s"))
			}
		}
		if len(c.Products)+len(objs) > MaxCatalogEntries {
			return Catalog{}, pathErr("$."+sec.name, "more than %d products and prices", MaxCatalogEntries)
		}
		for _, id := range sortedKeys(objs) {
			p := "$." + sec.name + "." + id
			if !ValidCatalogObjectID(id) {
				return Catalog{}, pathErr(p, "must be a Stripe %s ID", strings.TrimSuffix(sec.name, "s"))
			}
			var grants map[string]json.RawMessage
			if err := decodeStrict(objs[id], &grants); err != nil || grants == nil {
				return Catalog{}, pathErr(p, "must be an object of feature grants")
			}
			g := make(map[string]Grant, len(grants))
			for _, fk := range sortedKeys(grants) {
				fp := p + "." + fk
				if _, ok := c.Features[fk]; !ok {
					return Catalog{}, pathErr(fp, "unknown feature (declare it under features)")
				}
				gr, err := parseGrant(grants[fk], fp, true)
				if err != nil {
					return Catalog{}, err
				}
				g[fk] = gr
			}
			sec.out[id] = g
		}
	}
	return c, nil
}

// ParseGrant reads one grant: true, false, a whole number (a limit),
// "unlimited", or (when perUnit) {"per_unit": n}. path names it in errors.
func ParseGrant(raw json.RawMessage, path string, perUnit bool) (Grant, error) {
	return parseGrant(raw, path, perUnit)
}

func parseGrant(raw json.RawMessage, path string, perUnit bool) (Grant, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(raw, []byte("true")):
		return Grant{Kind: GrantOn}, nil
	case bytes.Equal(raw, []byte("false")):
		return Grant{Kind: GrantOff}, nil
	case bytes.Equal(raw, []byte(`"unlimited"`)):
		return Grant{Kind: GrantUnlimited}, nil
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		n, err := wholeNumber(raw)
		if err != nil {
			return Grant{}, pathErr(path, "%s", err)
		}
		return Grant{Kind: GrantLimit, N: n}, nil
	case perUnit && len(raw) > 0 && raw[0] == '{':
		var pu struct {
			PerUnit *json.Number `json:"per_unit"`
		}
		if err := decodeStrictFields(raw, &pu); err != nil {
			return Grant{}, pathErr(path, "must be {\"per_unit\": n}: %s", err)
		}
		if pu.PerUnit == nil {
			return Grant{}, pathErr(path+".per_unit", "missing")
		}
		n, err := wholeNumber([]byte(pu.PerUnit.String()))
		if err != nil {
			return Grant{}, pathErr(path+".per_unit", "%s", err)
		}
		return Grant{Kind: GrantPerUnit, N: n}, nil
	}
	want := `true, false, a whole number or "unlimited"`
	if perUnit {
		want = `true, false, a whole number, "unlimited" or {"per_unit": n}`
	}
	return Grant{}, pathErr(path, "must be %s", want)
}

// wholeNumber reads a JSON number that must be a whole number from 0 to
// MaxLimit.
func wholeNumber(raw []byte) (int64, error) {
	var f json.Number
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, errors.New("must be a number")
	}
	if strings.HasPrefix(f.String(), "-") {
		return 0, errors.New("limit must not be negative")
	}
	n, err := f.Int64()
	if err != nil {
		v, ferr := f.Float64()
		if ferr == nil && v == math.Trunc(v) && v <= MaxLimit {
			return int64(v), nil
		}
		return 0, fmt.Errorf("limit must be a whole number from 0 to %d", int64(MaxLimit))
	}
	if n > MaxLimit {
		return 0, fmt.Errorf("limit must be a whole number from 0 to %d", int64(MaxLimit))
	}
	return n, nil
}

// MarshalJSON writes a grant as the catalog states it.
func (g Grant) MarshalJSON() ([]byte, error) {
	switch g.Kind {
	case GrantOff:
		return []byte("false"), nil
	case GrantOn:
		return []byte("true"), nil
	case GrantUnlimited:
		return []byte(`"unlimited"`), nil
	case GrantPerUnit:
		return []byte(fmt.Sprintf(`{"per_unit":%d}`, g.N)), nil
	}
	return []byte(fmt.Sprint(g.N)), nil
}

// Document is the catalog as JSON, in the shape ParseCatalog reads (keys
// sorted: equal catalogs give equal bytes).
func (c Catalog) Document() []byte {
	doc := struct {
		Features map[string]Feature          `json:"features"`
		Products map[string]map[string]Grant `json:"products"`
		Prices   map[string]map[string]Grant `json:"prices"`
	}{nonNil(c.Features), nonNilGrants(c.Products), nonNilGrants(c.Prices)}
	b, _ := json.Marshal(doc) // maps of plain values: cannot fail
	return b
}

// itemGrants are the grants of one subscription item: its product's,
// overridden feature by feature by its price's.
func (c *Catalog) itemGrants(it Item, fn func(key string, g Grant)) {
	prod := c.Products[it.ProductID]
	price := c.Prices[it.PriceID]
	for k, g := range prod {
		if pg, ok := price[k]; ok {
			g = pg
		}
		fn(k, g)
	}
	for k, g := range price {
		if _, done := prod[k]; !done {
			fn(k, g)
		}
	}
}

func nonNil(m map[string]Feature) map[string]Feature {
	if m == nil {
		return map[string]Feature{}
	}
	return m
}

func nonNilGrants(m map[string]map[string]Grant) map[string]map[string]Grant {
	if m == nil {
		return map[string]map[string]Grant{}
	}
	return m
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// decodeStrict decodes one JSON value and refuses trailing data.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// decodeStrictFields is decodeStrict refusing unknown fields; the error
// names the field.
func decodeStrictFields(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("unknown field %s", f)
		}
		return errors.New("wrong type")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// CatalogRecord is the stored catalog and who replaced it when (zero
// UpdatedAt: never applied; the catalog is then empty).
type CatalogRecord struct {
	Catalog   Catalog
	UpdatedAt *time.Time
	UpdatedBy string
}

var reActor = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,80}$`)

// ValidActor reports whether name can be recorded as who changed the
// catalog or an override (a token's name, or "cli").
func ValidActor(name string) bool { return reActor.MatchString(name) }
