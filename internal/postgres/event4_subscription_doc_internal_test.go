package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
)

// TestStoredItemFormat pins the jsonb documents of the items and
// discounts columns: rows written by earlier versions must still read the
// same. A change here needs a migration of the stored rows, not just a
// new tag.
func TestStoredItemFormat(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	items := []billing.Item{{PriceID: "price_a", ProductID: "prod_a", Quantity: 3, UnitAmount: 1250, UnitAmountDec: "1250.5",
		Interval: billing.IntervalMonth, IntervalCount: 1, UsageType: "licensed", BillingScheme: "per_unit",
		TransformDivideBy: 10, TransformRound: "up"}, {PriceID: "price_b", Quantity: 1, Interval: billing.IntervalYear, IntervalCount: 1}}
	discounts := []billing.Discount{{PercentOffBP: 2550, AmountOff: 500, Currency: "eur", Duration: "repeating", Start: &start, End: &start}, {}}
	const storedItems = `[{"price_id":"price_a","product_id":"prod_a","quantity":3,"unit_amount":1250,"unit_amount_decimal":"1250.5","interval":"month","interval_count":1,"usage_type":"licensed","billing_scheme":"per_unit","transform_divide_by":10,"transform_round":"up"},{"price_id":"price_b","quantity":1,"unit_amount":0,"interval":"year","interval_count":1}]`
	const storedDiscounts = `[{"percent_off_bp":2550,"amount_off":500,"currency":"eur","duration":"repeating","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"},{}]`
	if b, _ := json.Marshal(toItemDocs(items)); string(b) != storedItems {
		t.Errorf("items encode as\n%s\nwant\n%s", b, storedItems)
	}
	if b, _ := json.Marshal(toDiscountDocs(discounts)); string(b) != storedDiscounts {
		t.Errorf("discounts encode as\n%s\nwant\n%s", b, storedDiscounts)
	}
	if got, err := decodeItems([]byte(storedItems)); err != nil || !reflect.DeepEqual(got, items) {
		t.Errorf("stored items read as %+v, %v", got, err)
	}
	if got, err := decodeDiscounts([]byte(storedDiscounts)); err != nil || !reflect.DeepEqual(got, discounts) {
		t.Errorf("stored discounts read as %+v, %v", got, err)
	}
}
