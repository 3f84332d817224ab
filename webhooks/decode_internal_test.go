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

// TestEventTypeTable checks the table of handled event types against the
// fixtures: every type has one (a new type comes with its payload), and
// every handled fixture decodes, through both paths alike, into an event
// carrying exactly one object that names the IDs it touches.
func TestEventTypeTable(t *testing.T) {
	t.Parallel()
	names, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("fixtures: %v %v", names, err)
	}
	seen := map[string]bool{}
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := DecodeEvent(raw, DecodeOptions{})
		if errors.Is(err, ErrUnhandled) || ev.Connect {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		seen[ev.Type] = true
		exact, err := decodeEventExact(raw, DecodeOptions{})
		if err != nil || !reflect.DeepEqual(ev, exact) {
			t.Fatalf("%s: the two decoders differ: %+v / %+v (%v)", n, ev, exact, err)
		}
		o, count := ev.Object()
		if count != 1 {
			t.Fatalf("%s: event carries %d objects, want 1", n, count)
		}
		if subj := o.Subjects(); len(subj) > 0 && subj[0] == "" {
			t.Errorf("%s: subjects %q do not start with the customer", n, subj)
		}
	}
	for typ, dec := range eventTypes {
		if dec.union == nil || dec.exact == nil {
			t.Errorf("%s: decoder without both paths", typ)
		}
		if !seen[typ] {
			t.Errorf("%s: no fixture in testdata/events decodes as this type", typ)
		}
	}
}
