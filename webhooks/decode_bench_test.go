package webhooks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// BenchmarkDecodeEvent measures the decoder alone on a multi-item,
// discounted subscription event (CPU and allocations per event).
func BenchmarkDecodeEvent(b *testing.B) {
	p := webhookstest.FixtureNamed(b, "v2023_06_customer.subscription.updated.upgraded").Payload
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := webhooks.DecodeEvent(p, webhooks.DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// stripeGoSetter stands for stripe-go's metricsResponseSetter: CallRaw's
// json.Unmarshal of the page into it, whose UnmarshalJSON unmarshals the
// same bytes again into the list.
type stripeGoSetter struct{ list any }

func (s *stripeGoSetter) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, s.list) }

// BenchmarkDecodeSubscriptionPage compares a backfill's decoding of a page
// of 100 subscriptions (both API shapes) in one pass with the path it
// replaced: stripe-go's CallRaw unmarshalling the page twice into a list
// of raw objects, then each object decoded alone, then the last object's
// ID read once more for the next page's cursor.
func BenchmarkDecodeSubscriptionPage(b *testing.B) {
	fixtures := []string{"v2023_05_customer.subscription.updated.active", "v2023_06_customer.subscription.updated.upgraded",
		"v2025_41_customer.subscription.created", "v2023_30_customer.subscription.created.metered_tiered"}
	objs := make([][]byte, 100)
	for i := range objs {
		f := webhookstest.FixtureNamed(b, fixtures[i%len(fixtures)]).Payload
		var ev struct {
			Data struct {
				Object json.RawMessage `json:"object"`
			} `json:"data"`
		}
		if err := json.Unmarshal(f, &ev); err != nil {
			b.Fatal(err)
		}
		objs[i] = ev.Data.Object
	}
	body := fmt.Appendf(nil, `{"object": "list", "data": [%s], "has_more": true, "url": "/v1/subscriptions"}`, bytes.Join(objs, []byte(",")))
	b.Run("OnePass", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			p, err := webhooks.DecodeSubscriptionPage(body)
			if err != nil || len(p.Objects) != 100 || p.Objects[99].Err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PerObject", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var l struct {
				Data    []json.RawMessage `json:"data"`
				HasMore bool              `json:"has_more"`
			}
			if err := json.Unmarshal(body, &stripeGoSetter{list: &l}); err != nil {
				b.Fatal(err)
			}
			for _, raw := range l.Data {
				if _, err := webhooks.DecodeSubscription(raw); err != nil {
					b.Fatal(err)
				}
			}
			var last struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(l.Data[len(l.Data)-1], &last); err != nil || last.ID == "" {
				b.Fatal(err)
			}
		}
	})
}
