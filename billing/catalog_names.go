package billing

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The merchant's catalog: product names and price nicknames, so that
// screens say "Pro (yearly)" rather than price_1Pq…. They are merchant
// catalog data, typed by the merchant in the Dashboard, and never customer
// data; they are kept clipped and without control characters.
//
// The names are not kept in the features catalog (catalog.go) although
// both describe the merchant's offer by product and price ID: that one is
// a document the merchant writes and replaces as a whole (PUT /v1/catalog),
// these are rows Stripe's events version one object at a time, any order.
// One table would make a catalog PUT and a product event write each
// other's rows. They share the data inventory's category
// (merchant_catalog) and the IDs they are keyed by, so a screen can join
// them (GET /v1/catalog/plans beside GET /v1/catalog).

// Product is what product.* events and backfill tell about a product.
type Product struct {
	ID       string
	Livemode bool
	Name     string
	Active   bool
	Deleted  bool
}

// Subjects implements EventObject: a product is about no customer.
func (p *Product) Subjects() []string { return nil }

// LinkHint implements EventObject: none.
func (p *Product) LinkHint() string { return "" }

// Price is what price.* events and backfill tell about a price.
type Price struct {
	ID            string
	Livemode      bool
	ProductID     string
	Nickname      string
	Currency      string
	UnitAmount    *int64
	Interval      Interval
	IntervalCount int64
	UsageType     string
	BillingScheme string
	TaxBehavior   string
	Active        bool
	Deleted       bool
}

// Subjects implements EventObject: a price is about no customer.
func (p *Price) Subjects() []string { return nil }

// LinkHint implements EventObject: none.
func (p *Price) LinkHint() string { return "" }

// MaxCatalogName is the most characters of a product name or price
// nickname kept.
const MaxCatalogName = 120

// CatalogName cleans a merchant-typed name for storage and display:
// control and format characters are dropped, runs of space become one,
// and it is clipped to MaxCatalogName characters.
func CatalogName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) || (unicode.IsControl(r) && !unicode.IsSpace(r)) {
			continue // invisible: dropped
		}
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if n >= MaxCatalogName {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// PlanName is one price as screens name it (the catalog_plan_names view).
type PlanName struct {
	PriceID     string `json:"price_id" db:"price_id"`
	Livemode    bool   `json:"livemode" db:"livemode"`
	ProductID   string `json:"product_id" db:"product_id"`
	ProductName string `json:"product_name" db:"product_name"`
	Nickname    string `json:"nickname" db:"nickname"`
	Currency    string `json:"currency" db:"currency"`
	Interval    string `json:"interval" db:"interval"`
	PlanName    string `json:"plan_name" db:"plan_name"`
}

// CatalogReader lists the plan names of one mode.
type CatalogReader interface {
	PlanNames(ctx context.Context, livemode bool) ([]PlanName, error)
}
