package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/profitwell/profitwelltest"
)

func TestProfitWellCommandUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantUsage bool
		wantErr   string
	}{
		{"NoSubcommand", []string{"profitwell"}, nil, true, "profitwell needs a command: worker, status, retry, backfill"},
		{"StatusArgs", []string{"profitwell", "status", "now"}, nil, true, `profitwell status: unexpected argument "now"`},
		{"UnknownSubcommand", []string{"profitwell", "sync"}, nil, true, "unknown profitwell command"},
		{"RetryNeedsTarget", []string{"profitwell", "retry"}, nil, true, "--all or one outbox row ID"},
		{"RetryNotBoth", []string{"profitwell", "retry", "--all", "7"}, nil, true, "--all or one outbox row ID"},
		{"RetryBadID", []string{"profitwell", "retry", "x7"}, nil, true, "not an outbox row ID"},
		{"BackfillExtraArg", []string{"profitwell", "backfill", "now"}, nil, true, "unexpected argument"},
		{"BackfillUnknownFlag", []string{"profitwell", "backfill", "--force"}, nil, true, "profitwell backfill: unknown flag --force"},
		{"WorkerArgs", []string{"profitwell", "worker", "fast"}, nil, true, `profitwell worker: unexpected argument "fast"`},
		{"WorkerNeedsToken", []string{"profitwell", "worker"}, nil, false, "PROFITWELL_API_TOKEN is not set"},
		{"BackfillNeedsToken", []string{"profitwell", "backfill"}, nil, false, "PROFITWELL_API_TOKEN is not set"},
		{"TokenWithoutAliasKey", []string{"profitwell", "worker"}, map[string]string{"PROFITWELL_API_TOKEN": "x"}, false,
			"PROFITWELL_ALIAS_KEY: required when PROFITWELL_API_TOKEN is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
			var ue usageError
			if err == nil || errors.As(err, &ue) != tt.wantUsage || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want usage=%v containing %q", err, tt.wantUsage, tt.wantErr)
			}
		})
	}
}

// TestProfitWellBackfillAndRetry runs the commands as an operator would,
// against a real database and the fake ProfitWell.
func TestProfitWellBackfillAndRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	fake := profitwelltest.New(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	items, _ := json.Marshal([]billing.Item{{PriceID: "price_cli", Quantity: 2, UnitAmount: 1500, Interval: billing.IntervalYear, IntervalCount: 1}})
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO customers (stripe_customer_id, livemode) VALUES ('cus_Cli1', true), ('cus_Cli2', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode,
		status, currency, items, start_date, version_at, version_rank, version_event)
		SELECT 'sub_' || substr(stripe_customer_id, 5), stripe_customer_id, customer_ref, true, 'active', 'usd', $1,
		       now() - interval '40 days', now(), 0, 'evt_seed'
		FROM customers`, string(items)); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		var stdout bytes.Buffer
		env := map[string]string{"DATABASE_URL": url, "PROFITWELL_API_TOKEN": profitwelltest.Token,
			"PROFITWELL_ALIAS_KEY": "cli-test-alias-key-0123", "PROFITWELL_API_BASE": fake.URL}
		err := run(ctx, args, func(k string) string { return env[k] }, &stdout, &bytes.Buffer{})
		return stdout.String(), err
	}
	t.Run("DryRunSendsNothing", func(t *testing.T) {
		out, err := cli("profitwell", "backfill", "--dry-run")
		if err != nil || !strings.Contains(out, "would queue 2 rows (create 2) for 2 subscriptions of 2 customers") {
			t.Fatalf("out %q, err %v", out, err)
		}
		if len(fake.Requests()) != 0 {
			t.Fatalf("dry run sent %d requests", len(fake.Requests()))
		}
	})
	t.Run("DeadRowReported", func(t *testing.T) {
		fake.FailNext(profitwelltest.Fault{Status: 400, Body: `{"detail":"Invalid plan."}`})
		out, err := cli("profitwell", "backfill")
		if err == nil || !strings.Contains(err.Error(), "1 row(s) dead-lettered") || !strings.Contains(out, "queued 2 rows") {
			t.Fatalf("out %q, err %v", out, err)
		}
		if n := len(fake.Subscriptions()); n != 1 {
			t.Fatalf("fake holds %d subscriptions, want 1", n)
		}
	})
	t.Run("StatusListsDeadRow", func(t *testing.T) {
		out, err := cli("profitwell", "status")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"pending: 0", "dead: 1", "create", "400", "http 400: Invalid plan.", "billingd profitwell retry"} {
			if !strings.Contains(out, want) {
				t.Errorf("status output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("RetryUnknownID", func(t *testing.T) {
		if _, err := cli("profitwell", "retry", "999999"); err == nil || !strings.Contains(err.Error(), "no dead ProfitWell row with ID 999999") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("RetryAllThenBackfillAgainIsIdempotent", func(t *testing.T) {
		out, err := cli("profitwell", "retry", "--all")
		if err != nil || !strings.Contains(out, "re-queued 1 dead ProfitWell row(s)") {
			t.Fatalf("out %q, err %v", out, err)
		}
		if _, err := cli("profitwell", "backfill"); err != nil {
			t.Fatal(err)
		}
		subs := fake.Subscriptions()
		if len(subs) != 2 {
			t.Fatalf("fake holds %d subscriptions, want 2", len(subs))
		}
		for _, s := range subs {
			if s.Value != 3000 || s.PlanInterval != "year" || s.PlanID != "price_cli" || s.Churned {
				t.Errorf("held %+v, want price_cli yearly 3000", s)
			}
			if s.Ops[0] != "create" || strings.Contains(strings.Join(s.Ops[1:], ","), "create") {
				t.Errorf("ops %v: created more than once", s.Ops)
			}
		}
	})
}
