package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/stripefake"
)

// TestStripeCommands runs `billingd stripe backfill` and `stripe reconcile`
// in-process against the fake Stripe API and a real database.
func TestStripeCommands(t *testing.T) {
	t.Parallel()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	now := time.Now().UTC().Truncate(time.Second)
	fake.PutCustomer(stripefake.Customer{ID: "cus_Cmd1", Created: now.Add(-time.Hour), AccountID: "acct_cmd1"})
	sub := stripefake.Subscription{ID: "sub_Cmd1", CustomerID: "cus_Cmd1", Status: "active", Created: now.Add(-time.Hour),
		Currency: "usd", PeriodStart: now.Add(-time.Hour), PeriodEnd: now.AddDate(0, 1, 0),
		Items: []stripefake.Item{{PriceID: "price_x", ProductID: "prod_x", UnitAmount: 500, Interval: "month", Quantity: 1}}}
	fake.PutSubscription(sub)
	env := map[string]string{
		"DATABASE_URL": pgtest.URL(t), "STRIPE_API_KEY": stripefake.Key, "STRIPE_API_BASE": fake.URL, "LOG_LEVEL": "error",
	}
	getenv := func(k string) string { return env[k] }
	cmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, getenv, &out, &errb)
		return out.String(), err
	}

	out, err := cmd("stripe", "backfill")
	if err != nil || !strings.Contains(out, "subscriptions 1 listed, 1 applied") {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	fake.Advance(time.Second)
	fake.UpdateSubscription("sub_Cmd1", func(s *stripefake.Subscription) { s.Status = "past_due" })

	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
		usage   bool
	}{
		// Drift without --fix is exit 1, as diff's: a cron job or CI step
		// notices.
		{"ReportOnly", []string{"stripe", "reconcile"}, []string{"KIND", "changed", "sub_Cmd1", "status: active → past_due",
			"checked 1 subscriptions (1 listed by Stripe, 0 asked for by ID): 0 in step, 0 missing, 1 changed"},
			"1 differences from Stripe (run with --fix", false},
		{"Fix", []string{"stripe", "reconcile", "--fix"}, []string{"fixed", "1 fixed"}, "", false},
		{"NoDriftAfterFix", []string{"stripe", "reconcile", "--since", "24h"}, []string{"checked 1 subscriptions (1 listed by Stripe, 0 asked for by ID): 1 in step, 0 missing, 0 changed"}, "", false},
		{"BadSince", []string{"stripe", "reconcile", "--since", "soon"}, nil, "invalid value", true},
		{"NegativeSince", []string{"stripe", "reconcile", "--since", "-1h"}, nil, "--since must be positive", true},
		{"UnknownSubcommand", []string{"stripe", "sync"}, nil, `unknown stripe command "sync"`, true},
	}
	for _, tt := range tests { // sequential: each step sees the previous one's fix
		t.Run(tt.name, func(t *testing.T) {
			out, err := cmd(tt.args...)
			var ue usageError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("%v\n%s", err, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			case tt.usage != errors.As(err, &ue):
				t.Fatalf("usage error %t, want %t (%v)", !tt.usage, tt.usage, err)
			}
			want := map[bool]int{true: 2, false: 1}[tt.usage]
			if tt.wantErr == "" {
				want = 0
			}
			if code := report(err, io.Discard); code != want {
				t.Errorf("exit status %d, want %d", code, want)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	t.Run("WrongKeyIsOneLine", func(t *testing.T) {
		env2 := map[string]string{"DATABASE_URL": env["DATABASE_URL"], "STRIPE_API_KEY": "sk_test_nope", "STRIPE_API_BASE": fake.URL, "LOG_LEVEL": "error"}
		err := run(context.Background(), []string{"stripe", "backfill"}, func(k string) string { return env2[k] }, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "rejected STRIPE_API_KEY") {
			t.Errorf("err %v, want one line about the key", err)
		}
	})
	t.Run("NoKey", func(t *testing.T) {
		err := run(context.Background(), []string{"stripe", "backfill"}, func(k string) string { return map[string]string{"DATABASE_URL": env["DATABASE_URL"]}[k] }, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "STRIPE_API_KEY is not set") {
			t.Errorf("err %v", err)
		}
	})
}

func TestReconcileIntervalConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"Off", map[string]string{}, ""},
		{"NeedsKey", map[string]string{"RECONCILE_INTERVAL": "1h"}, "needs STRIPE_API_KEY"},
		{"TooOften", map[string]string{"RECONCILE_INTERVAL": "5s", "STRIPE_API_KEY": "sk_test_x"}, "from 1m to 720h"},
		{"OK", map[string]string{"RECONCILE_INTERVAL": "6h", "STRIPE_API_KEY": "sk_test_x"}, ""},
		{"SweepNeedsKey", map[string]string{"SWEEP_INTERVAL": "15m"}, "the missed-event sweeper needs STRIPE_API_KEY"},
		{"SweepTooRarely", map[string]string{"SWEEP_INTERVAL": "400h", "STRIPE_API_KEY": "sk_test_x"}, "from 1m to 168h"},
		{"SweepOK", map[string]string{"SWEEP_INTERVAL": "15m", "STRIPE_API_KEY": "sk_test_x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(func(k string) string { return tt.env[k] })
			if err == nil {
				err = c.validateServe()
			}
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validateServe: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestStripeSweepCommand runs `billingd stripe sweep` in-process against
// the fake Stripe's Events API: an event no webhook delivered is applied,
// a second sweep finds nothing new, --since re-reads it as delivered.
func TestStripeSweepCommand(t *testing.T) {
	t.Parallel()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	now := time.Now().UTC().Truncate(time.Second)
	sub := stripefake.Subscription{ID: "sub_Swp1", CustomerID: "cus_Swp1", Status: "active", Created: now.Add(-time.Hour),
		Currency: "usd", PeriodStart: now.Add(-time.Hour), PeriodEnd: now.AddDate(0, 1, 0), APIVersion: stripefake.Version20250331,
		Items: []stripefake.Item{{PriceID: "price_x", ProductID: "prod_x", UnitAmount: 500, Interval: "month", Quantity: 1}}}
	raw, err := stripefake.EventVersion("evt_Swp1", "customer.subscription.created", stripefake.Version20250331, now.Add(-time.Hour), false, sub.JSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.PutEvent(raw); err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	env := map[string]string{"DATABASE_URL": url, "STRIPE_API_KEY": stripefake.Key, "STRIPE_API_BASE": fake.URL, "LOG_LEVEL": "error"}
	cmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
		return out.String(), err
	}
	for _, step := range []struct {
		name, want string
		args       []string
	}{
		{"Recovers", "1 events listed, 1 recovered", []string{"stripe", "sweep"}},
		{"NothingNew", "0 events listed, 0 recovered", []string{"stripe", "sweep"}},
		{"Since", "1 events listed, 0 recovered (no webhook had delivered them), 1 already delivered", []string{"stripe", "sweep", "--since", "24h"}},
	} {
		out, err := cmd(step.args...)
		if err != nil || !strings.Contains(out, step.want) {
			t.Fatalf("%s: %v\n%s", step.name, err, out)
		}
	}
	var status string
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT status FROM subscriptions WHERE stripe_subscription_id = 'sub_Swp1'`).Scan(&status); err != nil || status != "active" {
		t.Fatalf("swept subscription: %q, %v", status, err)
	}
	var ue usageError
	if _, err := cmd("stripe", "sweep", "--since", "800h"); !errors.As(err, &ue) {
		t.Errorf("--since 800h: %v, want a usage error", err)
	}
}
