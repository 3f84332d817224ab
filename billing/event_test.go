package billing

import (
	"slices"
	"testing"
)

// The IDs an event touches decide which erasure locks it takes and which
// tombstones stop it: each kind's rule, and the events that touch nothing.
func TestEventSubjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ev       Event
		subjects []string
		hint     string
		objects  int
	}{
		{"Customer", Event{Customer: &Customer{ID: "cus_1", AccountHint: "acct_1"}}, []string{"cus_1"}, "acct_1", 1},
		{"CustomerDeletedHasNoHint", Event{Customer: &Customer{ID: "cus_1", Deleted: true, AccountHint: "acct_1"}}, []string{"cus_1"}, "", 1},
		{"Subscription", Event{Subscription: &Subscription{ID: "sub_1", CustomerID: "cus_1", AccountHint: "acct_1"}}, []string{"cus_1", "sub_1"}, "acct_1", 1},
		{"Invoice", Event{Invoice: &Invoice{CustomerID: "cus_1", SubscriptionID: "sub_1"}}, []string{"cus_1", "sub_1"}, "", 1},
		{"InvoiceOneOffTouchesNothing", Event{Invoice: &Invoice{CustomerID: "cus_1"}}, nil, "", 1},
		{"InvoiceWithoutCustomerTouchesNothing", Event{Invoice: &Invoice{SubscriptionID: "sub_1"}}, nil, "", 1},
		{"Checkout", Event{Checkout: &CheckoutSession{CustomerID: "cus_1", SubscriptionID: "sub_1", AccountHint: "acct_1"}}, []string{"cus_1", "sub_1"}, "acct_1", 1},
		{"CheckoutWithoutSubscription", Event{Checkout: &CheckoutSession{CustomerID: "cus_1"}}, []string{"cus_1", ""}, "", 1},
		{"GuestCheckoutTouchesNothing", Event{Checkout: &CheckoutSession{AccountHint: "acct_1"}}, nil, "", 1},
		{"ConnectTouchesNothing", Event{Connect: true, Subscription: &Subscription{ID: "sub_1", CustomerID: "cus_1", AccountHint: "acct_1"}}, nil, "", 1},
		{"FutureDatedTouchesNothing", Event{FutureDated: true}, nil, "", 0},
		{"TwoObjectsTouchNothing", Event{Customer: &Customer{ID: "cus_1"}, Invoice: &Invoice{CustomerID: "cus_1", SubscriptionID: "sub_1"}}, nil, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.Subjects(); !slices.Equal(got, tt.subjects) {
				t.Errorf("Subjects = %q, want %q", got, tt.subjects)
			}
			if got := tt.ev.LinkHint(); got != tt.hint {
				t.Errorf("LinkHint = %q, want %q", got, tt.hint)
			}
			if _, n := tt.ev.Object(); n != tt.objects {
				t.Errorf("Object counts %d, want %d", n, tt.objects)
			}
		})
	}
}
