package stripefake

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	t.Parallel()
	s := New()
	t.Cleanup(s.Close)
	base := time.Unix(1_700_000_000, 0).UTC()
	s.PutCustomer(Customer{ID: "cus_A", Created: base})
	for i, st := range []string{"active", "canceled", "past_due", "canceled", "trialing"} {
		s.PutSubscription(Subscription{ID: "sub_" + string(rune('A'+i)), CustomerID: "cus_A", Status: st, Currency: "eur",
			Created: base.Add(time.Duration(i) * time.Hour), Items: []Item{{PriceID: "price_x", Interval: "month", Quantity: 1}}})
	}
	type list struct {
		HasMore bool `json:"has_more"`
		Data    []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	get := func(path, key string) (int, list) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l list
		_ = json.NewDecoder(resp.Body).Decode(&l)
		return resp.StatusCode, l
	}
	ids := func(l list) string {
		out := ""
		for _, d := range l.Data {
			out += d.ID[4:]
		}
		return out
	}
	tests := []struct {
		name    string
		path    string
		key     string
		status  int
		ids     string
		hasMore bool
		before  func()
	}{
		{"DefaultLeavesCanceledOut", "/v1/subscriptions?limit=10", Key, 200, "ECA", false, nil},
		{"StatusAll", "/v1/subscriptions?status=all&limit=10", Key, 200, "EDCBA", false, nil},
		{"StatusOne", "/v1/subscriptions?status=canceled", Key, 200, "DB", false, nil},
		{"FirstPage", "/v1/subscriptions?status=all&limit=2", Key, 200, "ED", true, nil},
		{"StartingAfter", "/v1/subscriptions?status=all&limit=2&starting_after=sub_D", Key, 200, "CB", true, nil},
		{"LastPage", "/v1/subscriptions?status=all&limit=2&starting_after=sub_B", Key, 200, "A", false, nil},
		{"CreatedRange", "/v1/subscriptions?status=all&created[gte]=1700003600&created[lte]=1700007200", Key, 200, "CB", false, nil},
		{"Retrieve404", "/v1/subscriptions/sub_Z", Key, 404, "", false, nil},
		{"WrongKey401", "/v1/customers", "sk_test_other", 401, "", false, nil},
		{"RateLimited429", "/v1/customers", Key, 429, "", false, func() { s.RateLimit(1) }},
		{"AfterRateLimit", "/v1/customers", Key, 200, "A", false, nil},
	}
	for _, tt := range tests { // sequential: the fake is shared and stateful
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			code, l := get(tt.path, tt.key)
			if code != tt.status || ids(l) != tt.ids || l.HasMore != tt.hasMore {
				t.Errorf("GET %s: %d %q has_more=%t, want %d %q %t", tt.path, code, ids(l), l.HasMore, tt.status, tt.ids, tt.hasMore)
			}
		})
	}
}

// TestFakeWrites: the two calls the erasure jobs make, and the failures
// they must handle, as Stripe answers them.
func TestFakeWrites(t *testing.T) {
	t.Parallel()
	s := New()
	t.Cleanup(s.Close)
	s.PutCustomer(Customer{ID: "cus_W", Created: time.Unix(1_700_000_000, 0).UTC()})
	s.PutSubscription(Subscription{ID: "sub_W", CustomerID: "cus_W", Status: "active", Currency: "eur",
		Created: time.Unix(1_700_000_000, 0).UTC(), Items: []Item{{PriceID: "price_x", Interval: "month", Quantity: 1}}})
	do := func(method, path string) (int, map[string]any) {
		req, _ := http.NewRequest(method, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	tests := []struct {
		name   string
		before func()
		method string
		path   string
		status int
		field  string // a top-level field of the answer to check, "" none
		want   any
	}{
		{"Down503", func() { s.Down(true) }, "DELETE", "/v1/customers/cus_W", 503, "", nil},
		{"BackUp", func() { s.Down(false) }, "GET", "/v1/customers/cus_W", 200, "deleted", nil},
		{"Refused400", func() { s.Refuse("cus_W", true) }, "DELETE", "/v1/customers/cus_W", 400, "", nil},
		{"CancelSubscription", func() { s.Refuse("cus_W", false) }, "DELETE", "/v1/subscriptions/sub_W", 200, "status", "canceled"},
		{"CanceledIsListedAsSuch", nil, "GET", "/v1/subscriptions/sub_W", 200, "status", "canceled"},
		{"DeleteCustomer", nil, "DELETE", "/v1/customers/cus_W", 200, "deleted", true},
		{"DeletedCustomerReads", nil, "GET", "/v1/customers/cus_W", 200, "deleted", true},
		{"DeleteAgain404", nil, "DELETE", "/v1/customers/cus_W", 404, "", nil},
		{"CancelUnknown404", nil, "DELETE", "/v1/subscriptions/sub_None", 404, "", nil},
	}
	for _, tt := range tests { // sequential: the fake is shared and stateful
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			code, body := do(tt.method, tt.path)
			if code != tt.status || (tt.field != "" && body[tt.field] != tt.want) {
				t.Errorf("%s %s: %d %v, want %d with %s=%v", tt.method, tt.path, code, body, tt.status, tt.field, tt.want)
			}
		})
	}
	if n := s.Count("DELETE", "/v1/customers/cus_W"); n != 4 {
		t.Errorf("Count = %d DELETEs of cus_W, want 4", n)
	}
}
