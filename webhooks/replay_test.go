package webhooks_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// Every fixture, replayed in order, gets the expected outcome, and the
// stored state is what the payloads say, in both API shapes.
func TestReplayFixtures(t *testing.T) {
	t.Parallel()
	replayFixtures(t, setup(t))
}

// The same through PgBouncer 1.18 in transaction mode, as serve runs on a
// pooler (no named statements, binary parameters): every statement of
// every fixture's event path, JSON documents included, works there and
// leaves the same state.
func TestReplayFixturesThroughPgBouncer(t *testing.T) {
	t.Parallel()
	replayFixtures(t, setupWith(t, pgtest.OpenThroughPgBouncer(t), webhooks.Config{}))
}

func replayFixtures(t *testing.T, b *bundle) {
	got := webhookstest.ReplayFixtures(t, b.handler, webhookstest.Secret)

	want := map[string]string{
		"v2023_45_none": "",
	}
	delete(want, "v2023_45_none")
	for _, f := range webhookstest.Fixtures(t) {
		switch {
		case strings.HasPrefix(f.Type, "charge.") || strings.HasPrefix(f.Type, "payment_method."):
			want[f.Name] = "unhandled"
		case strings.Contains(f.Name, "connect.") || strings.Contains(f.Name, "no_customer"):
			want[f.Name] = "ignored"
		default:
			want[f.Name] = "applied"
		}
	}
	for name, w := range want {
		t.Run("Outcome/"+name, func(t *testing.T) {
			if o := got[name].Outcome(); o != w {
				t.Fatalf("outcome %q, want %q (body %s)", o, w, got[name].Body)
			}
		})
	}

	t0 := time.Unix(1700000000, 0).UTC()
	t.Run("LifecycleEndsCanceledWithInvoiceFacts", func(t *testing.T) {
		s := b.sub(t, "sub_PiiLife1")
		if s.Status != "canceled" || !s.Livemode || s.Currency != "usd" {
			t.Fatalf("state %+v", s)
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(s.Items), &items); err != nil || len(items) != 1 ||
			items[0]["price_id"] != "price_PiiGoldYear" || items[0]["quantity"] != float64(2) || items[0]["interval"] != "year" {
			t.Fatalf("items %s (err %v)", s.Items, err)
		}
		if s.InvoiceStatus == nil || *s.InvoiceStatus != "paid" || s.InvoiceAttempts != 2 || s.NextAttempt != nil {
			t.Fatalf("invoice facts %v %d %v", s.InvoiceStatus, s.InvoiceAttempts, s.NextAttempt)
		}
		var versions int
		if err := b.store.DB().Get(&versions, `SELECT count(*) FROM subscription_versions v JOIN subscriptions s USING (subscription_ref) WHERE s.stripe_subscription_id = 'sub_PiiLife1'`); err != nil {
			t.Fatal(err)
		}
		if versions != 11 {
			t.Fatalf("%d versions, want 11", versions)
		}
	})
	t.Run("CustomerDeletedUnlinked", func(t *testing.T) {
		c := b.customer(t, "cus_PiiLife1")
		if !c.Deleted || c.AccountID != nil || c.LinkedVia != nil {
			t.Fatalf("customer %+v", c)
		}
		// Its subscriptions no longer reach the account's entitlement.
		subs, err := b.store.AccountSubscriptions(context.Background(), "acct_life_1", true)
		if err != nil || len(subs) != 0 {
			t.Fatalf("account still has %d subscriptions (err %v)", len(subs), err)
		}
	})
	t.Run("CheckoutLinksTestModeCustomer", func(t *testing.T) {
		c := b.customer(t, "cus_PiiKenji2")
		if c.AccountID == nil || *c.AccountID != "acct_kenji_2" || *c.LinkedVia != "checkout" || c.Livemode == nil || *c.Livemode {
			t.Fatalf("customer %+v", c)
		}
	})
	t.Run("ZeroDecimalCurrency", func(t *testing.T) {
		s := b.sub(t, "sub_PiiKenjiJpy2")
		if s.Currency != "jpy" || s.MRR != 9800 || s.Livemode || s.Status != "active" {
			t.Fatalf("state %+v", s)
		}
	})
	t.Run("MeteredTieredPartial", func(t *testing.T) {
		s := b.sub(t, "sub_PiiMetered3")
		if !s.ItemsIncomplete || s.MRRFixed {
			t.Fatalf("state %+v", s)
		}
		var items []map[string]any
		if err := json.Unmarshal([]byte(s.Items), &items); err != nil || len(items) != 3 {
			t.Fatalf("items %s", s.Items)
		}
		if items[0]["usage_type"] != "metered" || items[0]["unit_amount_decimal"] != "0.25" ||
			items[1]["billing_scheme"] != "tiered" || items[2]["transform_divide_by"] != float64(10) || items[2]["transform_round"] != "up" {
			t.Fatalf("items %s", s.Items)
		}
		c := b.customer(t, "cus_PiiMeter3")
		if c.AccountID == nil || *c.AccountID != "acct_meter_3" || *c.LinkedVia != "subscription_metadata" {
			t.Fatalf("customer %+v", c)
		}
	})
	t.Run("NewerShapePeriodsFromItems", func(t *testing.T) {
		s := b.sub(t, "sub_PiiBasil4")
		if s.PeriodStart == nil || !s.PeriodStart.Equal(t0.Add(60*time.Second)) ||
			s.PeriodEnd == nil || !s.PeriodEnd.Equal(t0.Add(60*time.Second+30*24*time.Hour)) {
			t.Fatalf("period %v – %v", s.PeriodStart, s.PeriodEnd)
		}
		if !s.CancelAtEnd || s.InvoiceStatus == nil || *s.InvoiceStatus != "paid" || s.InvoiceAttempts != 2 {
			t.Fatalf("state %+v", s)
		}
		// The created version carried both expanded discounts.
		var ds string
		if err := b.store.DB().Get(&ds, `SELECT v.discounts::text FROM subscription_versions v JOIN subscriptions s USING (subscription_ref)
			WHERE s.stripe_subscription_id = 'sub_PiiBasil4' ORDER BY v.version_at LIMIT 1`); err != nil {
			t.Fatal(err)
		}
		var discounts []map[string]any
		if err := json.Unmarshal([]byte(ds), &discounts); err != nil || len(discounts) != 2 ||
			discounts[0]["percent_off_bp"] != float64(2000) || discounts[1]["amount_off"] != float64(500) {
			t.Fatalf("discounts %s", ds)
		}
	})
	t.Run("OlderShapeDiscount", func(t *testing.T) {
		var ds string
		if err := b.store.DB().Get(&ds, `SELECT v.discounts::text FROM subscription_versions v
			WHERE v.version_event = 'evt_1PiiSubActive'`); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ds, `"percent_off_bp": 2550`) || !strings.Contains(ds, `"duration": "repeating"`) {
			t.Fatalf("discounts %s", ds)
		}
	})
	t.Run("PendingUpdateNotInForce", func(t *testing.T) {
		var items string
		if err := b.store.DB().Get(&items, `SELECT items::text FROM subscription_versions WHERE version_event = 'evt_1PiiSubPauseColl'`); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(items, "price_PiiGoldYear") || strings.Contains(items, `"quantity": 9`) {
			t.Fatalf("pending update stored as current: %s", items)
		}
	})
	t.Run("InvoiceBeforeSubscriptionHeld", func(t *testing.T) {
		var n int
		if err := b.store.DB().Get(&n, `SELECT count(*) FROM pending_invoice_facts WHERE stripe_subscription_id = 'sub_PiiNeverSeen'`); err != nil || n != 1 {
			t.Fatalf("pending facts %d %v", n, err)
		}
	})
	t.Run("ConnectAndUnhandledLeaveNoObject", func(t *testing.T) {
		var n int
		if err := b.store.DB().Get(&n, `SELECT count(*) FROM customers WHERE stripe_customer_id = 'cus_PiiConnected'`); err != nil || n != 0 {
			t.Fatalf("connected customer stored: %d %v", n, err)
		}
		if err := b.store.DB().Get(&n, `SELECT count(*) FROM stripe_events WHERE event_type IN ('charge.succeeded', 'payment_method.attached')`); err != nil || n != 0 {
			t.Fatalf("unhandled events stored: %d %v", n, err)
		}
		if got, want := b.count(t, "stripe_events"), len(want)-2; got != want {
			t.Fatalf("%d stripe_events rows, want %d", got, want)
		}
	})
}

// After replaying every fixture (twice: duplicates too), no table and no
// log line holds any planted personal string.
func TestNoPersonalDataStoredOrLogged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	webhookstest.ReplayFixtures(t, b.handler, webhookstest.Secret)
	webhookstest.ReplayFixtures(t, b.handler, webhookstest.Secret)
	// Rejected payloads are logged too: they must not leak either.
	for _, f := range webhookstest.Fixtures(t)[:3] {
		bad := webhookstest.Rewrite(f.Payload, `"status"`, `"status": 7, "x"`, `"created"`, `"created": "PII-NOTE", "y"`)
		b.post(t, bad)
	}
	dump := b.dump(t)
	if !strings.Contains(dump, "sub_PiiLife1") || !strings.Contains(dump, "acct_kenji_2") {
		t.Fatalf("dump misses stored IDs; is it reading the right tables?\n%s", dump)
	}
	if found := webhookstest.FindPII(t, dump); len(found) > 0 {
		t.Errorf("personal data in tables: %q", found)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "evt_1PiiSubCreated") {
		t.Fatalf("logs are not captured: %q", logs)
	}
	if found := webhookstest.FindPII(t, logs); len(found) > 0 {
		t.Errorf("personal data in logs: %q", found)
	}
}
