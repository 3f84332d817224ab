package webhooks

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
)

// The merchant's catalog: product.* and price.* events. Only IDs, the
// product's name, the price's nickname and billing facts are read; a
// product's description, images, features, metadata and the rest are
// never read.
const (
	TypeProductCreated = "product.created"
	TypeProductUpdated = "product.updated"
	TypeProductDeleted = "product.deleted"
	TypePriceCreated   = "price.created"
	TypePriceUpdated   = "price.updated"
	TypePriceDeleted   = "price.deleted"
	objectProduct      = "product"
	objectPrice        = "price"
)

// rawCatalog is the whitelist of a product or a price (their JSON names do
// not clash with each other).
type rawCatalog struct {
	ID            string        `json:"id"`
	Object        string        `json:"object"`
	Livemode      bool          `json:"livemode"`
	Active        bool          `json:"active"`
	Deleted       bool          `json:"deleted"`
	Name          *string       `json:"name"`     // product
	Nickname      *string       `json:"nickname"` // price
	Product       ref           `json:"product"`  // price
	Currency      string        `json:"currency"`
	UnitAmount    *int64        `json:"unit_amount"`
	BillingScheme string        `json:"billing_scheme"`
	TaxBehavior   string        `json:"tax_behavior"`
	Recurring     *rawRecurring `json:"recurring"`
}

// productObject decodes product.* events.
var productObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		return catalogEvent(&rawCatalog{ID: o.ID, Object: o.Object, Livemode: o.Livemode, Active: o.Active, Deleted: o.Deleted,
			Name: o.Name}, in, ev)
	},
	exact: decodeCatalog,
}

// priceObject decodes price.* events.
var priceObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		return catalogEvent(&rawCatalog{ID: o.ID, Object: o.Object, Livemode: o.Livemode, Active: o.Active, Deleted: o.Deleted,
			Nickname: o.Nickname, Product: o.Product, Currency: o.Currency, UnitAmount: o.UnitAmount,
			BillingScheme: o.BillingScheme, TaxBehavior: o.TaxBehavior, Recurring: o.Recurring}, in, ev)
	},
	exact: decodeCatalog,
}

func decodeCatalog(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
	var rc rawCatalog
	if err := json.Unmarshal(raw, &rc); err != nil {
		if oor := numberTooLarge(err); oor != nil {
			return ev, fmt.Errorf("catalog: %w", oor)
		}
		return ev, fmt.Errorf("%w: catalog object: %w", billing.ErrInvalid, err)
	}
	return catalogEvent(&rc, in, ev)
}

// catalogEvent validates a product or price by the event's type.
func catalogEvent(rc *rawCatalog, in objectInput, ev billing.Event) (billing.Event, error) {
	deleted := rc.Deleted || strings.HasSuffix(in.eventType, ".deleted")
	if !reObjectID.MatchString(rc.ID) {
		return ev, invalid("catalog object id")
	}
	if strings.HasPrefix(in.eventType, "product.") {
		if rc.Object != "" && rc.Object != objectProduct {
			return ev, invalid("object is not a product")
		}
		p := billing.Product{ID: rc.ID, Livemode: rc.Livemode || ev.Livemode, Active: rc.Active && !deleted, Deleted: deleted}
		if rc.Name != nil {
			p.Name = billing.CatalogName(*rc.Name)
		}
		ev.Product = &p
		return ev, nil
	}
	if rc.Object != "" && rc.Object != objectPrice {
		return ev, invalid("object is not a price")
	}
	p := billing.Price{ID: rc.ID, Livemode: rc.Livemode || ev.Livemode, Active: rc.Active && !deleted, Deleted: deleted,
		BillingScheme: rc.BillingScheme, TaxBehavior: rc.TaxBehavior}
	if rc.Nickname != nil {
		p.Nickname = billing.CatalogName(*rc.Nickname)
	}
	if pid := string(rc.Product); reObjectID.MatchString(pid) {
		p.ProductID = pid
	}
	if cur := strings.ToLower(rc.Currency); reCurrency.MatchString(cur) {
		p.Currency = cur
	}
	if rc.UnitAmount != nil {
		if *rc.UnitAmount > maxAmount || *rc.UnitAmount < 0 {
			return ev, outOfRange("price unit_amount")
		}
		p.UnitAmount = rc.UnitAmount
	}
	if r := rc.Recurring; r != nil {
		switch billing.Interval(r.Interval) {
		case billing.IntervalDay, billing.IntervalWeek, billing.IntervalMonth, billing.IntervalYear:
			p.Interval = billing.Interval(r.Interval)
		}
		if r.IntervalCount > 0 && r.IntervalCount <= 1000 {
			p.IntervalCount = r.IntervalCount
		}
		if r.UsageType == "licensed" || r.UsageType == "metered" {
			p.UsageType = r.UsageType
		}
	}
	switch p.BillingScheme {
	case "per_unit", "tiered":
	default:
		p.BillingScheme = ""
	}
	switch p.TaxBehavior {
	case "inclusive", "exclusive", "unspecified":
	default:
		p.TaxBehavior = ""
	}
	ev.Price = &p
	return ev, nil
}

// DecodeCatalogObject reads a product or price fetched from the API as an
// event of type typ (product.updated or price.updated) at `at`, the moment
// Stripe answered.
func DecodeCatalogObject(raw []byte, typ string, at time.Time) (billing.Event, error) {
	var env struct {
		Livemode bool `json:"livemode"`
	}
	_ = json.Unmarshal(raw, &env)
	ev := billing.Event{Type: typ, Created: at, Livemode: env.Livemode}
	return decodeCatalog(raw, objectInput{eventType: typ, created: at}, ev)
}
