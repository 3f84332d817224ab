package webhooks_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// listBody is a list page as Stripe answers it.
func listBody(path string, hasMore bool, objs ...[]byte) []byte {
	return fmt.Appendf(nil, `{"object": "list", "data": [%s], "has_more": %t, "url": %q}`,
		bytes.Join(objs, []byte(",\n")), hasMore, path)
}

// objectAs gives a fixture's object an ID of its own, so that a page of
// several tells its objects apart.
func objectAs(t *testing.T, fixture, id, newID string) []byte {
	t.Helper()
	o := object(t, fixture)
	if !bytes.Contains(o, []byte(`"`+id+`"`)) {
		t.Fatalf("%s does not hold %s", fixture, id)
	}
	return webhookstest.Rewrite(o, `"`+id+`"`, `"`+newID+`"`)
}

// listedAs is what a page object must decode to: the per-object decoder's
// result and error text, and the object's own id and created.
type listedAs[T any] struct {
	obj     T
	err     string
	id      string
	created int64
}

func alone[T any](t *testing.T, raw []byte, decode func([]byte) (T, error)) listedAs[T] {
	t.Helper()
	var h struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
	}
	_ = json.Unmarshal(raw, &h)
	obj, err := decode(raw)
	w := listedAs[T]{id: h.ID, created: h.Created}
	if err != nil {
		w.err = err.Error()
	} else {
		w.obj = obj
	}
	return w
}

func checkPage[T any](t *testing.T, got webhooks.ListPage[T], hasMore bool, want []listedAs[T]) {
	t.Helper()
	if got.HasMore != hasMore {
		t.Errorf("has_more %t, want %t", got.HasMore, hasMore)
	}
	if len(got.Objects) != len(want) {
		t.Fatalf("%d objects, want %d", len(got.Objects), len(want))
	}
	for i, o := range got.Objects {
		w := want[i]
		errText := ""
		if o.Err != nil {
			errText = o.Err.Error()
		}
		if errText != w.err {
			t.Errorf("object %d (%s): error %q, want the per-object decoder's %q", i, w.id, errText, w.err)
		}
		if o.ID != w.id || o.Created != w.created {
			t.Errorf("object %d: id %q created %d, want %q %d", i, o.ID, o.Created, w.id, w.created)
		}
		if o.Err == nil && !reflect.DeepEqual(o.Object, w.obj) {
			t.Errorf("object %d (%s):\npage  %+v\nalone %+v", i, w.id, o.Object, w.obj)
		}
	}
}

// TestDecodeSubscriptionPage checks that a page decoded whole equals each
// of its objects decoded alone by DecodeSubscription, in both API shapes,
// and that a bad object fails alone with DecodeSubscription's error.
func TestDecodeSubscriptionPage(t *testing.T) {
	t.Parallel()
	good := func(t *testing.T) [][]byte {
		return [][]byte{
			objectAs(t, "v2023_03_customer.subscription.created", "sub_PiiLife1", "sub_Page1"),
			objectAs(t, "v2023_05_customer.subscription.updated.active", "sub_PiiLife1", "sub_Page2"),
			objectAs(t, "v2023_06_customer.subscription.updated.upgraded", "sub_PiiLife1", "sub_Page3"),
			objectAs(t, "v2023_11_customer.subscription.updated.pause_collection", "sub_PiiLife1", "sub_Page4"),
			objectAs(t, "v2023_15_customer.subscription.deleted", "sub_PiiLife1", "sub_Page5"),
			object(t, "v2023_21_customer.subscription.created.jpy"),
			object(t, "v2023_30_customer.subscription.created.metered_tiered"),
			object(t, "v2025_41_customer.subscription.created"),
			objectAs(t, "v2025_42_customer.subscription.updated", "sub_PiiBasil4", "sub_Page9"),
		}
	}
	bad := func(oldNew ...string) func(t *testing.T) [][]byte { return rewriteSecond(good, oldNew...) }
	runPageCases(t, "/v1/subscriptions", webhooks.DecodeSubscription, webhooks.DecodeSubscriptionPage, []pageCase{
		{"BothShapes", good, true, 0},
		{"LastPage", good, false, 0},
		{"Empty", func(*testing.T) [][]byte { return nil }, false, 0},
		// A field of the wrong type fails the page's decode: each object
		// is then decoded alone.
		{"WrongType", bad(`"quantity": 3`, `"quantity": "x"`), true, 1},
		{"NumberTooLarge", bad(`"quantity": 3`, `"quantity": 100000000000000000000000`), true, 1},
		{"WrongTypeInCustomUnmarshaler", bad(`"percent_off": 25.5`, `"percent_off": "x"`), true, 1},
		// A value the converter refuses fails that object only, on the
		// one-pass path.
		{"BadStatus", bad(`"status": "active"`, `"status": "bogus"`), true, 1},
		{"AmountOutOfRange", bad(`"unit_amount": 1200,`, `"unit_amount": 1000000000000000,`), true, 1},
	})
	t.Run("NumberTooLargeIsOutOfRange", func(t *testing.T) {
		t.Parallel()
		objs := bad(`"quantity": 3`, `"quantity": 100000000000000000000000`)(t)
		got, err := webhooks.DecodeSubscriptionPage(listBody("/v1/subscriptions", false, objs...))
		if err != nil {
			t.Fatal(err)
		}
		if err := got.Objects[1].Err; !errors.Is(err, webhooks.ErrOutOfRange) || !errors.Is(err, billing.ErrInvalid) {
			t.Errorf("error %v, want ErrOutOfRange and ErrInvalid", err)
		}
	})
}

// TestDecodeCustomerPage is TestDecodeSubscriptionPage for customers,
// against DecodeCustomer.
func TestDecodeCustomerPage(t *testing.T) {
	t.Parallel()
	good := func(t *testing.T) [][]byte {
		return [][]byte{
			object(t, "v2023_01_customer.created"),
			objectAs(t, "v2023_02_customer.updated", "cus_PiiLife1", "cus_Page2"),
			objectAs(t, "v2023_16_customer.deleted", "cus_PiiLife1", "cus_Page3"),
			object(t, "v2023_22_customer.created.testmode"),
			object(t, "v2025_40_customer.created"),
		}
	}
	bad := func(oldNew ...string) func(t *testing.T) [][]byte { return rewriteSecond(good, oldNew...) }
	runPageCases(t, "/v1/customers", webhooks.DecodeCustomer, webhooks.DecodeCustomerPage, []pageCase{
		{"Customers", good, true, 0},
		{"LastPage", good, false, 0},
		{"WrongType", bad(`"livemode": true`, `"livemode": "x"`), true, 1},
		{"MetadataNotAnObject", bad(`"metadata": {`, `"metadata": 5, "m": {`), false, 1},
		{"BadID", bad(`"cus_Page2"`, `"Page2"`), true, 1},
	})
}

// pageCase is one page for a page decoder: its objects, has_more, and how
// many of the objects fail when decoded alone.
type pageCase struct {
	name    string
	objs    func(t *testing.T) [][]byte
	hasMore bool
	failed  int
}

// rewriteSecond is good's page with its second object rewritten.
func rewriteSecond(good func(t *testing.T) [][]byte, oldNew ...string) func(t *testing.T) [][]byte {
	return func(t *testing.T) [][]byte {
		objs := good(t)
		o := webhookstest.Rewrite(objs[1], oldNew...)
		if bytes.Equal(o, objs[1]) {
			t.Fatalf("rewrite %q changed nothing", oldNew)
		}
		objs[1] = o
		return objs
	}
}

// runPageCases decodes each case's page whole (page) and compares it with
// each object decoded alone (decodeAlone).
func runPageCases[T any](t *testing.T, path string, decodeAlone func([]byte) (T, error),
	page func([]byte) (webhooks.ListPage[T], error), cases []pageCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			objs := tc.objs(t)
			want := make([]listedAs[T], len(objs))
			failed := 0
			for i, o := range objs {
				if want[i] = alone(t, o, decodeAlone); want[i].err != "" {
					failed++
				}
			}
			if failed != tc.failed {
				t.Fatalf("%d objects fail alone, want %d: the case tests nothing", failed, tc.failed)
			}
			got, err := page(listBody(path, tc.hasMore, objs...))
			if err != nil {
				t.Fatal(err)
			}
			checkPage(t, got, tc.hasMore, want)
		})
	}
}

// TestDecodePageNotAList: a body that is no list page is the page's error,
// not an object's.
func TestDecodePageNotAList(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `{"data": [`, `{"data": 5}`, `[]`, `{"data": [1], "has_more": "x"}`} {
		if _, err := webhooks.DecodeSubscriptionPage([]byte(body)); err == nil {
			t.Errorf("subscriptions %q: no error", body)
		}
		if _, err := webhooks.DecodeCustomerPage([]byte(body)); err == nil {
			t.Errorf("customers %q: no error", body)
		}
	}
}
