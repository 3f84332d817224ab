package billing

import (
	"strings"
	"testing"
	"time"
)

func TestParseURLAllowlist(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		ok       bool
		want     string
	}{
		{"OK", "https://App.Example.com/billing/, http://localhost:3000", true, "https://app.example.com/billing,http://localhost:3000"},
		{"LoopbackIP", "http://127.0.0.1:8000/app", true, "http://127.0.0.1:8000/app"},
		{"ErrEmpty", " , ", false, ""},
		{"ErrHTTPPublic", "http://app.example.com", false, ""},
		{"ErrNoScheme", "app.example.com", false, ""},
		{"ErrQuery", "https://app.example.com/?next=", false, ""},
		{"ErrFragment", "https://app.example.com/#x", false, ""},
		{"ErrUser", "https://user@app.example.com/", false, ""},
		{"ErrJavascript", "javascript:alert(1)", false, ""},
		{"ErrEmptyPort", "https://app.example.com:/", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseURLAllowlist(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && a.String() != tt.want {
				t.Errorf("parsed %q, want %q", a.String(), tt.want)
			}
		})
	}
}

// TestURLAllowlistCheck: matching is by scheme, host and path segments,
// so none of the usual open-redirect tricks passes.
func TestURLAllowlistCheck(t *testing.T) {
	t.Parallel()
	a, err := ParseURLAllowlist("https://app.example.com/billing,https://www.example.org,http://localhost:3000")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want URLProblem
	}{
		{"https://app.example.com/billing", URLAllowed},
		{"https://app.example.com/billing/", URLAllowed},
		{"https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}", URLAllowed},
		{"https://APP.example.com/billing/x", URLAllowed},
		{"https://www.example.org/", URLAllowed},
		{"https://www.example.org", URLAllowed},
		{"http://localhost:3000/anything", URLAllowed},
		{"https://app.example.com/billingx", URLNotAllowed},
		{"https://app.example.com/", URLNotAllowed},
		{"https://app.example.com/other/billing", URLNotAllowed},
		{"https://app.example.com.evil.test/billing", URLNotAllowed},
		{"https://evil.test/https://app.example.com/billing", URLNotAllowed},
		{"https://app.example.com@evil.test/billing", URLNotAllowed},
		{"https://app.example.com:8443/billing", URLNotAllowed},
		{"http://app.example.com/billing", URLNotAllowed},
		{"http://localhost:3001/", URLNotAllowed},
		{"https://www.example.org.evil.test/", URLNotAllowed},
		{"https://app.example.com\\@evil.test/billing", URLMalformed},
		{"//evil.test/billing", URLMalformed},
		{"/billing", URLMalformed},
		{"javascript:alert(1)", URLMalformed},
		{"data:text/html,hi", URLMalformed},
		{"https://app.example.com/billing/\nSet-Cookie: x", URLMalformed},
		{"https://app.example.com/billing/ x", URLMalformed},
		{"", URLMalformed},
		{"https://app.example.com/billing/" + strings.Repeat("a", MaxRedirectURLLen), URLMalformed},
	}
	for _, tt := range tests {
		if got := a.Check(tt.url); got != tt.want {
			t.Errorf("Check(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	if (URLAllowlist{}).Check("https://app.example.com/billing") != URLNotAllowed {
		t.Error("an empty allowlist allows a URL")
	}
}

func TestReusableCustomers(t *testing.T) {
	t.Parallel()
	live, test := true, false
	now := time.Now()
	cs := []CheckoutCustomer{
		{ID: "cus_TestOld", Livemode: &test, LinkedAt: now.Add(-time.Hour)},
		{ID: "cus_TestNew", Livemode: &test, LinkedAt: now},
		{ID: "cus_TestDeleted", Livemode: &test, Deleted: true, LinkedAt: now.Add(time.Hour)},
		{ID: "cus_Live", Livemode: &live, LinkedAt: now},
		{ID: "cus_Unknown", LinkedAt: now},
	}
	known, unknown := ReusableCustomers(cs, false)
	if strings.Join(known, ",") != "cus_TestNew,cus_TestOld" || strings.Join(unknown, ",") != "cus_Unknown" {
		t.Errorf("test mode: known %v unknown %v", known, unknown)
	}
	known, unknown = ReusableCustomers(cs, true)
	if strings.Join(known, ",") != "cus_Live" || strings.Join(unknown, ",") != "cus_Unknown" {
		t.Errorf("live mode: known %v unknown %v", known, unknown)
	}
	if cs[0].ID != "cus_TestOld" {
		t.Error("ReusableCustomers reordered its argument")
	}
}

func TestSubscribedToProduct(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	end := now.Add(30 * 24 * time.Hour)
	sub := func(id string, status Status, live bool, price, product string) AccountSubscription {
		return AccountSubscription{Subscription: Subscription{ID: id, Status: status, Livemode: live, CurrentPeriodEnd: &end,
			CurrentPeriodStart: &now, Items: []Item{{PriceID: price, ProductID: product, Quantity: 1}}}}
	}
	tests := []struct {
		name string
		subs []AccountSubscription
		want bool
	}{
		{"ActiveSameProduct", []AccountSubscription{sub("sub_1", StatusActive, true, "price_year", "prod_x")}, true},
		{"TrialingSamePriceNoProduct", []AccountSubscription{sub("sub_1", StatusTrialing, true, "price_month", "")}, true},
		{"OtherProduct", []AccountSubscription{sub("sub_1", StatusActive, true, "price_other", "prod_y")}, false},
		{"Canceled", []AccountSubscription{sub("sub_1", StatusCanceled, true, "price_month", "prod_x")}, false},
		{"Incomplete", []AccountSubscription{sub("sub_1", StatusIncomplete, true, "price_month", "prod_x")}, false},
		{"OtherMode", []AccountSubscription{sub("sub_1", StatusActive, false, "price_month", "prod_x")}, false},
		{"DeletedCustomer", []AccountSubscription{func() AccountSubscription {
			s := sub("sub_1", StatusActive, true, "price_month", "prod_x")
			s.CustomerDeleted = true
			return s
		}()}, false},
		{"None", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SubscribedToProduct(tt.subs, true, "prod_x", "price_month", now, 72*time.Hour); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPortalSubscription(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	end := now.Add(30 * 24 * time.Hour)
	mk := func(id, cus string, status Status) AccountSubscription {
		return AccountSubscription{Subscription: Subscription{ID: id, CustomerID: cus, Status: status, Livemode: true,
			CurrentPeriodStart: &now, CurrentPeriodEnd: &end}}
	}
	subs := []AccountSubscription{mk("sub_Canceled", "cus_A", StatusCanceled), mk("sub_Trial", "cus_A", StatusTrialing), mk("sub_Active", "cus_B", StatusActive)}
	if s, ok := PortalSubscription(subs, true, "", now, time.Hour); !ok || s.ID != "sub_Active" || s.CustomerID != "cus_B" {
		t.Errorf("default: %v %v, want sub_Active of cus_B", s.ID, ok)
	}
	if s, ok := PortalSubscription(subs, true, "sub_Trial", now, time.Hour); !ok || s.ID != "sub_Trial" {
		t.Errorf("named: %v %v", s.ID, ok)
	}
	for _, want := range []string{"sub_Canceled", "sub_Elsewhere"} {
		if _, ok := PortalSubscription(subs, true, want, now, time.Hour); ok {
			t.Errorf("%s was chosen", want)
		}
	}
	if _, ok := PortalSubscription(subs, false, "", now, time.Hour); ok {
		t.Error("a subscription of the other mode was chosen")
	}
}

// TestLinkReferenceExpiry: the same all UTC day, 48 to 72 hours ahead;
// the previous day's is the one a retry from yesterday signed.
func TestLinkReferenceExpiry(t *testing.T) {
	t.Parallel()
	morning := time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC)
	night := time.Date(2026, 3, 1, 23, 59, 59, 0, time.FixedZone("x", -5*3600)) // already 2 March in UTC
	a, b := LinkReferenceExpiry(morning, 0), LinkReferenceExpiry(morning.Add(23*time.Hour), 0)
	if !a.Equal(b) || !a.Equal(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expiries %s %s, want 2026-03-04 both", a, b)
	}
	if d := a.Sub(morning); d < 48*time.Hour || d > 72*time.Hour {
		t.Errorf("validity %s", d)
	}
	if got := LinkReferenceExpiry(night, 1); !got.Equal(time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("previous day's expiry %s", got)
	}
}

func TestCheckoutInputShapes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		fn   func(string) bool
		ok   []string
		bad  []string
	}{
		{"Price", ValidPriceID, []string{"price_1OxYz", "plan_gold_2024"}, []string{"", "price_", "prod_x", "price_a b", "price_" + strings.Repeat("a", 251)}},
		{"Configuration", ValidPortalConfigurationID, []string{"bpc_1Abc"}, []string{"bpc_", "bpc_a-b", "cfg_1"}},
		{"Subscription", ValidSubscriptionID, []string{"sub_1Abc"}, []string{"sub_", "si_1", "sub_a_b"}},
		{"IdempotencyKey", ValidIdempotencyKey, []string{"k", "order-42:retry/1", strings.Repeat("k", 255)}, []string{"", "a b", "é", strings.Repeat("k", 256), "a\tb"}},
		{"Email", ValidCustomerEmail, []string{"ada@example.org", "a.b+c@mail.example.co.uk"}, []string{"", "ada", "ada@", "@example.org", "a@b@example.org",
			"ada @example.org", "ada@example", "ada@.example.org", "ada@example.org.", "ada@exa\x00mple.org", strings.Repeat("a", 510) + "@x.io"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range tt.ok {
				if !tt.fn(v) {
					t.Errorf("%q refused", v)
				}
			}
			for _, v := range tt.bad {
				if tt.fn(v) {
					t.Errorf("%q accepted", v)
				}
			}
		})
	}
	for _, f := range []PortalFlow{FlowNone, FlowPaymentMethodUpdate, FlowSubscriptionCancel, FlowSubscriptionUpdate} {
		if !f.Valid() {
			t.Errorf("flow %q invalid", f)
		}
	}
	if PortalFlow("subscription_update_confirm").Valid() || !FlowSubscriptionCancel.NeedsSubscription() || FlowPaymentMethodUpdate.NeedsSubscription() {
		t.Error("flow rules")
	}
}
