package stripeapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
)

// TestSessionsAgainstStripeMock creates a Checkout Session (a new
// customer with an e-mail, and a reused customer with a trial and
// promotion codes) and a Billing Portal session of every flow against
// stripe-mock, which validates each request against Stripe's OpenAPI
// spec: it proves the parameters billingd sends (line items, both
// metadata, client_reference_id, subscription_data, flow_data with its
// after_completion redirect) are ones Stripe accepts, and that the
// answers decode. stripe-mock keeps no state, so rules are tested against
// the recording fake (internal/api's checkout tests).
func TestSessionsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	base := stripefake.StartStripeMock(t)
	st := pgtest.Open(t)
	ctx := context.Background()
	client, err := stripeapi.New(stripeapi.Config{Key: "sk_test_123", Base: base})
	if err != nil {
		t.Fatal(err)
	}
	s := &stripeapi.Sessions{Client: client, Store: st, Grace: 72 * time.Hour}
	// A customer linked through the API before any event: its mode is
	// asked of Stripe (stripe-mock answers any ID with a test-mode customer).
	if _, err := st.DB().Exec(`INSERT INTO customers (stripe_customer_id, account_id, linked_via, linked_at) VALUES ('cus_Mock1', 'acct_known', 'api', now())`); err != nil {
		t.Fatal(err)
	}
	for _, req := range []billing.CheckoutRequest{
		{AccountID: "acct_new", Price: "price_1Mock", Quantity: 2, SuccessURL: "https://app.example.com/ok?cs={CHECKOUT_SESSION_ID}",
			CancelURL: "https://app.example.com/no", CustomerEmail: "someone@example.org", IdempotencyKey: "smoke-1"},
		{AccountID: "acct_known", Price: "price_1Mock", Quantity: 1, SuccessURL: "https://app.example.com/ok",
			CancelURL: "https://app.example.com/no", TrialPeriodDays: 14, AllowPromotionCodes: true, AllowMultiple: true},
	} {
		cs, err := s.Checkout(ctx, req)
		if err != nil {
			t.Fatalf("checkout for %s against stripe-mock: %v", req.AccountID, err)
		}
		if !strings.HasPrefix(cs.ID, "cs_") || cs.URL == "" || cs.ExpiresAt.IsZero() {
			t.Errorf("checkout session %+v", cs)
		}
	}
	for _, flow := range []billing.PortalFlow{billing.FlowNone, billing.FlowPaymentMethodUpdate} {
		ps, err := s.Portal(ctx, billing.PortalRequest{AccountID: "acct_known", ReturnURL: "https://app.example.com/account", Flow: flow})
		if err != nil {
			t.Fatalf("portal %q against stripe-mock: %v", flow, err)
		}
		if ps.URL == "" {
			t.Errorf("portal session %+v", ps)
		}
	}
	// The subscription flows need an entitled subscription of the account.
	now := time.Now().UTC()
	if _, err := st.DB().Exec(`
INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status, currency, items,
    current_period_start, current_period_end, version_at, version_rank, version_event)
SELECT 'sub_Mock1', stripe_customer_id, customer_ref, false, 'active', 'usd', '[{"price_id":"price_1Mock","quantity":1,"unit_amount":100,"interval":"month","interval_count":1}]',
       $1, $2, now(), 0, 'evt_seed' FROM customers WHERE stripe_customer_id = 'cus_Mock1'`, now.Add(-time.Hour), now.Add(720*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, flow := range []billing.PortalFlow{billing.FlowSubscriptionCancel, billing.FlowSubscriptionUpdate} {
		if _, err := s.Portal(ctx, billing.PortalRequest{AccountID: "acct_known", ReturnURL: "https://app.example.com/account", Flow: flow}); err != nil {
			t.Fatalf("portal %q against stripe-mock: %v", flow, err)
		}
	}
	if _, err := s.Portal(ctx, billing.PortalRequest{AccountID: "acct_nobody", ReturnURL: "https://app.example.com/account"}); !errors.Is(err, billing.ErrNoCustomer) {
		t.Errorf("portal of an account without customer: %v, want ErrNoCustomer", err)
	}
}
