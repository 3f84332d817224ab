package webhooks_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
)

// subJSON is a subscription object with the given item and top-level
// fragments spliced in.
func subJSON(item, extra string) string {
	if item == "" {
		item = `"quantity":2,"price":{"id":"price_1","currency":"usd","unit_amount":1500,"recurring":{"interval":"month","interval_count":1}}`
	}
	return `{"id":"sub_Lim1","object":"subscription","customer":"cus_Lim1","status":"active","currency":"usd","livemode":true` +
		extra + `,"items":{"data":[{` + item + `}]}}`
}

func eventJSON(typ, obj string) []byte {
	return []byte(`{"id":"evt_Lim1","object":"event","type":"` + typ + `","created":1700000000,"livemode":true,"data":{"object":` + obj + `}}`)
}

// TestDecodeRefusesBeyondStripeLimits: amounts and quantities Stripe never
// sends are refused at decode, as out of range (a counted outcome apart
// from malformed payloads), through the event decoder and the bare object
// decoders that backfill and reconcile use; values at the limit pass.
func TestDecodeRefusesBeyondStripeLimits(t *testing.T) {
	t.Parallel()
	price := func(f string) string {
		return `"quantity":1,"price":{"id":"price_1","currency":"usd",` + f + `,"recurring":{"interval":"month","interval_count":1}}`
	}
	tests := []struct {
		name       string
		obj        string
		typ        string
		outOfRange bool // refused as out of range; false: accepted
	}{
		{"AmountAtLimit", subJSON(price(`"unit_amount":999999999999`), ""), webhooks.TypeSubscriptionUpdated, false},
		{"AmountBeyond", subJSON(price(`"unit_amount":1000000000000`), ""), webhooks.TypeSubscriptionUpdated, true},
		{"AmountNear2to63", subJSON(price(`"unit_amount":9223372036854775000`), ""), webhooks.TypeSubscriptionUpdated, true},
		{"AmountBeyondInt64", subJSON(price(`"unit_amount":92233720368547758070`), ""), webhooks.TypeSubscriptionUpdated, true},
		{"DecimalAtLimit", subJSON(price(`"unit_amount_decimal":"999999999999.999999999999"`), ""), webhooks.TypeSubscriptionUpdated, false},
		{"DecimalBeyond", subJSON(price(`"unit_amount_decimal":"1000000000000"`), ""), webhooks.TypeSubscriptionUpdated, true},
		{"DecimalLeadingZeros", subJSON(price(`"unit_amount_decimal":"0000000000000000012.5"`), ""), webhooks.TypeSubscriptionUpdated, false},
		{"DecimalFarBeyond", subJSON(price(`"unit_amount_decimal":"`+strings.Repeat("9", 35)+`"`), ""), webhooks.TypeSubscriptionUpdated, true},
		{"QuantityAtLimit", subJSON(`"quantity":999999999999,"price":{"id":"price_1","currency":"usd","unit_amount":1,"recurring":{"interval":"month"}}`, ""), webhooks.TypeSubscriptionUpdated, false},
		{"QuantityNear2to63", subJSON(`"quantity":9223372036854775000,"price":{"id":"price_1","currency":"usd","unit_amount":1,"recurring":{"interval":"month"}}`, ""), webhooks.TypeSubscriptionUpdated, true},
		{"QuantityBeyondInt64", subJSON(`"quantity":100000000000000000000,"price":{"id":"price_1","currency":"usd","unit_amount":1,"recurring":{"interval":"month"}}`, ""), webhooks.TypeSubscriptionUpdated, true},
		{"LegacyPlanAmount", subJSON(`"quantity":1,"plan":{"id":"plan_1","currency":"usd","amount":5000000000000,"interval":"month"}`, ""), webhooks.TypeSubscriptionUpdated, true},
		{"DivideBy", subJSON(price(`"unit_amount":100,"transform_quantity":{"divide_by":10000000000000,"round":"up"}`), ""), webhooks.TypeSubscriptionUpdated, true},
		{"AmountOff", subJSON("", `,"discount":{"coupon":{"amount_off":1000000000000,"currency":"usd","duration":"forever"}}`), webhooks.TypeSubscriptionUpdated, true},
		{"AmountOffExpanded", subJSON("", `,"discounts":[{"source":{"coupon":{"amount_off":1000000000000,"currency":"usd","duration":"forever"}}}]`), webhooks.TypeSubscriptionUpdated, true},
		{"AmountOffAtLimit", subJSON("", `,"discount":{"coupon":{"amount_off":999999999999,"currency":"usd","duration":"forever"}}`), webhooks.TypeSubscriptionUpdated, false},
		{"InvoiceAttempts", `{"object":"invoice","customer":"cus_Lim1","subscription":"sub_Lim1","attempt_count":1000001}`, webhooks.TypeInvoicePaymentFailed, true},
		{"InvoiceAttemptsBeyondInt64", `{"object":"invoice","customer":"cus_Lim1","subscription":"sub_Lim1","attempt_count":99999999999999999999}`, webhooks.TypeInvoicePaymentFailed, true},
		{"InvoiceOrdinary", `{"object":"invoice","customer":"cus_Lim1","subscription":"sub_Lim1","attempt_count":2}`, webhooks.TypeInvoicePaymentFailed, false},
		{"FractionIsMalformedNotRange", subJSON(`"quantity":1.5,"price":{"id":"price_1","currency":"usd","unit_amount":1,"recurring":{"interval":"month"}}`, ""), webhooks.TypeSubscriptionUpdated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := webhooks.DecodeEvent(eventJSON(tt.typ, tt.obj), webhooks.DecodeOptions{})
			if tt.name == "FractionIsMalformedNotRange" {
				if err == nil || errors.Is(err, webhooks.ErrOutOfRange) || !errors.Is(err, billing.ErrInvalid) {
					t.Fatalf("err %v, want invalid but not out of range", err)
				}
				return
			}
			if got := errors.Is(err, webhooks.ErrOutOfRange); got != tt.outOfRange {
				t.Fatalf("DecodeEvent err = %v, want out of range %v", err, tt.outOfRange)
			}
			if tt.outOfRange && !errors.Is(err, billing.ErrInvalid) {
				t.Fatalf("out of range is not invalid: %v", err)
			}
			if !tt.outOfRange && err != nil {
				t.Fatalf("refused a value within the limits: %v", err)
			}
			if tt.typ == webhooks.TypeSubscriptionUpdated {
				// Backfill and reconcile decode the bare object.
				_, err := webhooks.DecodeSubscription([]byte(tt.obj))
				if got := errors.Is(err, webhooks.ErrOutOfRange); got != tt.outOfRange {
					t.Fatalf("DecodeSubscription err = %v, want out of range %v", err, tt.outOfRange)
				}
			}
		})
	}
}

// TestMetadataAccountIDExactAndOnce: only the exact key account_id links,
// and only when it appears once, for customers and subscriptions, in the
// event decoder (one pass over the union of fields) and in the bare object
// decoders; checkout sessions never read metadata.
func TestMetadataAccountIDExactAndOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		meta string
		want string
	}{
		{"Exact", `{"account_id":"acct_ok"}`, "acct_ok"},
		{"AmongOthers", `{"note":"Jane Doe, +1 555 0100","account_id":"acct_ok","plan":"gold"}`, "acct_ok"},
		{"EscapedKeyIsTheSameKey", `{"account\u005fid":"acct_ok"}`, "acct_ok"},
		{"UpperCase", `{"ACCOUNT_ID":"acct_upper"}`, ""},
		{"MixedCase", `{"Account_Id":"acct_mixed"}`, ""},
		{"FoldedBesideExact", `{"account_id":"acct_ok","ACCOUNT_ID":"acct_upper"}`, "acct_ok"},
		{"DuplicateDifferent", `{"account_id":"acct_first","account_id":"acct_second"}`, ""},
		{"DuplicateSame", `{"account_id":"acct_same","account_id":"acct_same"}`, ""},
		{"DuplicateEscaped", `{"account_id":"acct_first","account\u005fid":"acct_second"}`, ""},
		{"NotAString", `{"account_id":42}`, ""},
		{"Invalid", `{"account_id":"not an id!"}`, ""},
		{"ValueOnly", `{"note":"account_id"}`, ""},
		{"Null", `null`, ""},
		{"Empty", `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cus := `{"id":"cus_Meta1","object":"customer","livemode":true,"email":"jane@example.com","metadata":` + tt.meta + `}`
			sub := subJSON("", `,"metadata":`+tt.meta)
			for _, typ := range []string{webhooks.TypeCustomerUpdated, webhooks.TypeSubscriptionUpdated} {
				obj := cus
				if typ == webhooks.TypeSubscriptionUpdated {
					obj = sub
				}
				ev, err := webhooks.DecodeEvent(eventJSON(typ, obj), webhooks.DecodeOptions{})
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				var got string
				if ev.Customer != nil {
					got = ev.Customer.AccountHint
				} else {
					got = ev.Subscription.AccountHint
				}
				if got != tt.want {
					t.Errorf("%s: hint %q, want %q", typ, got, tt.want)
				}
			}
			c, err := webhooks.DecodeCustomer([]byte(cus))
			if err != nil || c.AccountHint != tt.want {
				t.Errorf("DecodeCustomer: hint %q %v, want %q", c.AccountHint, err, tt.want)
			}
			s, err := webhooks.DecodeSubscription([]byte(sub))
			if err != nil || s.AccountHint != tt.want {
				t.Errorf("DecodeSubscription: hint %q %v, want %q", s.AccountHint, err, tt.want)
			}
			cs := fmt.Sprintf(`{"object":"checkout.session","customer":"cus_Meta1","metadata":%s}`, tt.meta)
			ev, err := webhooks.DecodeEvent(eventJSON(webhooks.TypeCheckoutSessionCompleted, cs), webhooks.DecodeOptions{})
			if err != nil || ev.Checkout.AccountHint != "" {
				t.Errorf("checkout session: hint %q %v, want none (only client_reference_id links)", ev.Checkout.AccountHint, err)
			}
		})
	}
}
