package webhooks_test

import (
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
