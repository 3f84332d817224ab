package webhooks

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecodePaths checks that the one-pass decoder (DecodeEvent) and the
// exact per-kind decoder (decodeEventExact) agree on every input: the
// union of fields must never change what is read.
func FuzzDecodePaths(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"evt_1","type":"checkout.session.completed","created":1700000000,"data":{"object":{"customer":"cus_1","discounts":[{"coupon":"PII"}],"items":"x"}}}`))
	f.Add([]byte(`{"id":"evt_1","type":"invoice.paid","created":1700000000,"data":{"object":{"customer":"cus_\u0031","subscription":{"id":"sub_1"},"items":[1]}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, errFast := DecodeEvent(raw, DecodeOptions{})
		exact, errExact := decodeEventExact(raw, DecodeOptions{})
		if (errFast == nil) != (errExact == nil) || errors.Is(errFast, ErrUnhandled) != errors.Is(errExact, ErrUnhandled) {
			t.Fatalf("errors differ: fast %v, exact %v", errFast, errExact)
		}
		if errFast == nil && !reflect.DeepEqual(fast, exact) {
			t.Fatalf("events differ:\nfast  %+v\nexact %+v", fast, exact)
		}
	})
}
