package profitwell_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/billingd/billingd/profitwell"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// TestEndToEndFixtures replays the webhook fixtures (full of fake personal
// data) through the real event path, then lets the worker deliver the
// outbox to the fake: ProfitWell ends with the expected subscriptions and
// values, test mode is not sent, and the fake fails the test if any request
// carries a planted personal string, an '@', a Stripe or account ID.
func TestEndToEndFixtures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fake.Forbid(webhookstest.PII(t)...)
	b.fake.Forbid("acct_life_1", "acct_basil_4", "acct_kenji_2", "acct_meter_3")
	h, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{webhookstest.Secret}, Store: b.st, Log: slog.New(slog.DiscardHandler), Links: webhookstest.Links()})
	if err != nil {
		t.Fatal(err)
	}
	webhookstest.ReplayFixtures(t, h, webhookstest.Secret)
	b.drain(t, b.worker(t))

	var subs []struct {
		ID       string `db:"stripe_subscription_id"`
		Ref      string `db:"subscription_ref"`
		Livemode bool   `db:"livemode"`
		Status   string `db:"status"`
	}
	if err := b.st.DB().SelectContext(context.Background(), &subs,
		`SELECT stripe_subscription_id, subscription_ref::text, livemode, status FROM subscriptions ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	held := b.fake.Subscriptions()
	byID := map[string]string{}
	for _, s := range subs {
		byID[s.ID] = s.Ref
		_, sent := held[profitwell.Alias(aliasKey, s.Ref)]
		if want := s.Livemode && s.Status != "incomplete"; sent != want {
			t.Errorf("%s (livemode %v, %s): in ProfitWell = %v, want %v", s.ID, s.Livemode, s.Status, sent, want)
		}
	}
	if len(held) == 0 {
		t.Fatal("nothing reached ProfitWell")
	}
	tests := []struct {
		name, sub, ops, plan, interval string
		value                          int64 // 0: only > 0 is checked
		churned                        bool
		churnType                      string
	}{
		// trial → active (+seats) → upgrade → past_due, recovered, collection
		// paused (no call) → paused (churn) → resumed → yearly plan → deleted.
		{"LifecycleEndsChurnedOnYearlyPlan", "sub_PiiLife1", "create,update,update,churn,unchurn,update,churn",
			"price_PiiGoldYear", "year", 0, true, "voluntary"},
		// 20 % forever and 5.00 off for two months; the update drops the
		// amount-off coupon and lists the other only by ID (its amount is
		// the decoder's business, so only the call is checked here); a
		// scheduled cancel_at_period_end is no call.
		{"DiscountChangeIsUpdate", "sub_PiiBasil4", "create,update", "price_PiiGold", "month", 0, false, ""},
		// Metered and tiered amounts are unknown ahead: only the fixed pack
		// counts (25 units, transform_quantity ÷10 rounded up = 3 × 5.00).
		{"MeteredAndTieredSendFixedPart", "sub_PiiMetered3", "create", "price_PiiTiered", "month", 3 * 500, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, ok := byID[tt.sub]
			if !ok {
				t.Fatalf("%s was not stored", tt.sub)
			}
			got := sub(t, b.fake, ref)
			if strings.Join(got.Ops, ",") != tt.ops {
				t.Errorf("ops = %v, want %s", got.Ops, tt.ops)
			}
			if got.PlanID != tt.plan || got.PlanInterval != tt.interval || got.Churned != tt.churned || got.ChurnType != tt.churnType {
				t.Errorf("held = %+v", got)
			}
			if (tt.value != 0 && got.Value != tt.value) || got.Value <= 0 {
				t.Errorf("value = %d, want %d", got.Value, tt.value)
			}
		})
	}
	if dead := b.rows(t, "dead"); len(dead) != 0 {
		t.Errorf("dead rows: %+v", dead)
	}
}
