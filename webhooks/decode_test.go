package webhooks_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// object returns a fixture's data.object.
func object(t *testing.T, name string) []byte {
	t.Helper()
	var ev struct {
		Data struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(webhookstest.FixtureNamed(t, name).Payload, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Data.Object
}

func TestDecodeSubscriptionShapes(t *testing.T) {
	t.Parallel()
	t.Run("Legacy2023", func(t *testing.T) {
		s, err := webhooks.DecodeSubscription(object(t, "v2023_05_customer.subscription.updated.active"))
		if err != nil {
			t.Fatal(err)
		}
		if s.ID != "sub_PiiLife1" || s.CustomerID != "cus_PiiLife1" || s.Status != billing.StatusActive || !s.Livemode ||
			s.AccountHint != "acct_life_1" || len(s.Items) != 2 || s.CurrentPeriodStart == nil || s.TrialEnd == nil {
			t.Fatalf("%+v", s)
		}
		want := billing.Item{PriceID: "price_PiiSeats", ProductID: "prod_PiiSeats", Quantity: 3, UnitAmount: 1200, UnitAmountDec: "1200",
			Interval: billing.IntervalMonth, IntervalCount: 1, UsageType: "licensed", BillingScheme: "per_unit", TaxBehavior: "exclusive"}
		if !reflect.DeepEqual(s.Items[1], want) {
			t.Fatalf("item %+v, want %+v", s.Items[1], want)
		}
		if len(s.Discounts) != 1 || s.Discounts[0].PercentOffBP != 2550 || s.Discounts[0].Duration != "repeating" || s.Discounts[0].End == nil {
			t.Fatalf("discounts %+v", s.Discounts)
		}
	})
	t.Run("Basil2025", func(t *testing.T) {
		s, err := webhooks.DecodeSubscription(object(t, "v2025_41_customer.subscription.created"))
		if err != nil {
			t.Fatal(err)
		}
		if s.CurrentPeriodStart == nil || s.CurrentPeriodStart.Unix() != 1700000060 || s.CurrentPeriodEnd.Unix() != 1700000060+2592000 {
			t.Fatalf("period %v %v", s.CurrentPeriodStart, s.CurrentPeriodEnd)
		}
		if len(s.Discounts) != 2 || s.Discounts[0].PercentOffBP != 2000 || s.Discounts[1].AmountOff != 500 || s.Discounts[1].Currency != "usd" {
			t.Fatalf("discounts %+v", s.Discounts)
		}
	})
}

func TestDecodeSubscriptionCases(t *testing.T) {
	t.Parallel()
	base := `{"id":"sub_X1","object":"subscription","customer":"cus_X1","status":"active","currency":"USD","livemode":false,
		"items":{"data":[{"quantity":2,"price":{"id":"price_A","product":{"id":"prod_A","name":"Jane's plan PII-NOTE"},"currency":"usd","unit_amount":1000,
		"unit_amount_decimal":"1000","recurring":{"interval":"month","interval_count":1,"usage_type":"licensed"}}}]}%s}`
	tests := []struct {
		name  string
		extra string
		raw   string
		check func(t *testing.T, s billing.Subscription)
		err   bool
	}{
		{name: "ExpandedProductKeepsIDOnly", check: func(t *testing.T, s billing.Subscription) {
			if s.Items[0].ProductID != "prod_A" || s.Currency != "usd" {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "ExpandedCustomer", raw: strings.Replace(base, `"customer":"cus_X1"`, `"customer":{"id":"cus_X1","email":"a@b.c"}`, 1), check: func(t *testing.T, s billing.Subscription) {
			if s.CustomerID != "cus_X1" {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "LegacyPlanWhenNoPrice", raw: `{"id":"sub_X1","customer":"cus_X1","status":"trialing","currency":"eur",
			"items":{"data":[{"quantity":1,"plan":{"id":"gold-legacy","product":"prod_B","currency":"eur","amount":900,"interval":"year","interval_count":1,"usage_type":"licensed"}}]}}`,
			check: func(t *testing.T, s billing.Subscription) {
				if s.Items[0].PriceID != "gold-legacy" || s.Items[0].UnitAmount != 900 || s.Items[0].Interval != billing.IntervalYear {
					t.Fatalf("%+v", s.Items[0])
				}
			}},
		{name: "WeirdDecimalDropped", raw: strings.Replace(base, `"unit_amount_decimal":"1000"`, `"unit_amount_decimal":"1e5 PII"`, 1), check: func(t *testing.T, s billing.Subscription) {
			if s.Items[0].UnitAmountDec != "" {
				t.Fatalf("%+v", s.Items[0])
			}
		}},
		{name: "FreeTextPriceIDDropped", raw: strings.Replace(base, `"id":"price_A"`, `"id":"Gold plan for Jane"`, 1), check: func(t *testing.T, s billing.Subscription) {
			if s.Items[0].PriceID != "" {
				t.Fatalf("%+v", s.Items[0])
			}
		}},
		{name: "PauseCollectionIsNotPaused", extra: `,"pause_collection":{"behavior":"void"}`, check: func(t *testing.T, s billing.Subscription) {
			if !s.CollectionPaused || s.Status != billing.StatusActive {
				t.Fatalf("%+v", s)
			}
		}},
		{name: "DiscountIDsOnlyFallBackToLegacy", extra: `,"discounts":["di_1"],"discount":{"coupon":{"percent_off":33.33,"duration":"forever"},"start":1700000000}`,
			check: func(t *testing.T, s billing.Subscription) {
				if len(s.Discounts) != 1 || s.Discounts[0].PercentOffBP != 3333 {
					t.Fatalf("%+v", s.Discounts)
				}
			}},
		{name: "HasMoreFlagsIncomplete", raw: strings.Replace(base, `"items":{"data"`, `"items":{"has_more":true,"data"`, 1), check: func(t *testing.T, s billing.Subscription) {
			if !s.ItemsIncomplete {
				t.Fatal("not incomplete")
			}
		}},
		{name: "AbsurdDateDropped", extra: `,"trial_end":99999999999999`, check: func(t *testing.T, s billing.Subscription) {
			if s.TrialEnd != nil {
				t.Fatal(s.TrialEnd)
			}
		}},
		{name: "InvalidMetadataHintDropped", extra: `,"metadata":{"account_id":"jane@example.com"}`, check: func(t *testing.T, s billing.Subscription) {
			if s.AccountHint != "" {
				t.Fatal(s.AccountHint)
			}
		}},
		{name: "ErrUnknownStatus", raw: strings.Replace(base, `"active"`, `"exploded"`, 1), err: true},
		{name: "ErrNoCustomer", raw: strings.Replace(base, `"customer":"cus_X1",`, ``, 1), err: true},
		{name: "ErrBadID", raw: strings.Replace(base, `"sub_X1"`, `"sub_X 1"`, 1), err: true},
		{name: "ErrWrongObject", raw: strings.Replace(base, `"object":"subscription"`, `"object":"invoice"`, 1), err: true},
		{name: "ErrBadInterval", raw: strings.Replace(base, `"interval":"month"`, `"interval":"fortnight"`, 1), err: true},
		{name: "ErrNotJSON", raw: `{"id":`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == "" {
				raw = strings.Replace(base, "%s", tt.extra, 1)
			} else {
				raw = strings.Replace(raw, "%s", "", 1)
			}
			s, err := webhooks.DecodeSubscription([]byte(raw))
			if tt.err {
				if !errors.Is(err, billing.ErrInvalid) {
					t.Fatalf("err %v, want ErrInvalid", err)
				}
				if err != nil && strings.Contains(err.Error(), "PII") {
					t.Fatalf("error message leaks payload: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		check func(t *testing.T, ev billing.Event, err error)
	}{
		{"v2023_16_customer.deleted", func(t *testing.T, ev billing.Event, err error) {
			if err != nil || ev.Customer == nil || !ev.Customer.Deleted || ev.Created != time.Unix(1704505210, 0).UTC() {
				t.Fatalf("%+v %v", ev, err)
			}
		}},
		{"v2023_07_invoice.payment_failed", func(t *testing.T, ev billing.Event, err error) {
			if err != nil || ev.Invoice.Status != billing.InvoicePaymentFailed || ev.Invoice.SubscriptionID != "sub_PiiLife1" || ev.Invoice.AttemptCount != 1 || ev.Invoice.NextPaymentAttempt == nil {
				t.Fatalf("%+v %v", ev.Invoice, err)
			}
		}},
		{"v2025_44_invoice.paid", func(t *testing.T, ev billing.Event, err error) {
			if err != nil || ev.Invoice.Status != billing.InvoicePaid || ev.Invoice.SubscriptionID != "sub_PiiBasil4" {
				t.Fatalf("%+v %v", ev.Invoice, err)
			}
		}},
		{"v2023_20_checkout.session.completed", func(t *testing.T, ev billing.Event, err error) {
			if err != nil || ev.Checkout.CustomerID != "cus_PiiKenji2" || ev.Checkout.AccountHint != "acct_kenji_2" || ev.Livemode {
				t.Fatalf("%+v %v", ev.Checkout, err)
			}
		}},
		{"v2023_50_connect.customer.subscription.updated", func(t *testing.T, ev billing.Event, err error) {
			if err != nil || !ev.Connect || ev.Subscription != nil {
				t.Fatalf("%+v %v", ev, err)
			}
		}},
		{"v2023_60_charge.succeeded", func(t *testing.T, ev billing.Event, err error) {
			if !errors.Is(err, webhooks.ErrUnhandled) || ev.Type != "charge.succeeded" {
				t.Fatalf("%+v %v", ev, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := webhooks.DecodeEvent(webhookstest.FixtureNamed(t, tt.name).Payload, webhooks.DecodeOptions{Links: webhookstest.Links()})
			tt.check(t, ev, err)
		})
	}
}

func TestDecodeCustomer(t *testing.T) {
	t.Parallel()
	c, err := webhooks.DecodeCustomer(object(t, "v2023_01_customer.created"))
	if err != nil || !reflect.DeepEqual(c, billing.Customer{ID: "cus_PiiLife1", Livemode: true, AccountHint: "acct_life_1",
		DiscountsKnown: c.DiscountsKnown, Discounts: c.Discounts}) || len(c.Discounts) != 0 {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = webhooks.DecodeCustomer([]byte(`{"id":"cus_Gone1","object":"customer","deleted":true}`))
	if err != nil || !c.Deleted {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := webhooks.DecodeCustomer([]byte(`{"id":"jane@example.com","object":"customer"}`)); !errors.Is(err, billing.ErrInvalid) {
		t.Fatalf("err %v", err)
	}
}
