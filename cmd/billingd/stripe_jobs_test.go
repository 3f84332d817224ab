package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestStripeJobsCommands: `stripe-jobs status` shows the erasure jobs'
// queue (never their Stripe IDs), `stripe-jobs retry` re-queues dead ones
// with their ID intact, so the worker can still finish them.
func TestStripeJobsCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	st, err := postgres.Open(ctx, dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Three jobs: one refused by Stripe (dead), one failing with a bad key
	// (pending, retried), one not tried yet.
	for i, cus := range []string{"cus_JobDead", "cus_JobAuth", "cus_JobNew"} {
		if _, err := st.OutboxEnqueue(ctx, postgres.OutboxEntry{Kind: billing.OutboxStripe, OrderingKey: fmt.Sprintf("erasure:%d", i),
			Action: billing.StripeDeleteCustomer, Payload: billing.StripeJobPayload{CustomerID: cus}}); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := st.OutboxClaim(ctx, billing.OutboxStripe, 2, time.Minute)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	if err := st.StripeJobDead(ctx, jobs[0].ID, jobs[0].Attempts, 400, "delete_customer: stripe 400 invalid_request_error parameter_invalid"); err != nil {
		t.Fatal(err)
	}
	if err := st.OutboxRetryLater(ctx, jobs[1].ID, jobs[1].Attempts, time.Hour, 401, "delete_customer: stripe 401 invalid_request_error ", true); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return map[string]string{"DATABASE_URL": dbURL, "LOG_LEVEL": "error"}[k] }
	cli := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, getenv, &out, &bytes.Buffer{})
		return out.String(), err
	}

	out, err := cli("stripe-jobs", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pending: 2 (oldest", "dead: 1", "stripe 401", "stripe 400 invalid_request_error parameter_invalid",
		fmt.Sprintf("\n%d ", jobs[0].ID), "billingd stripe-jobs retry --all"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cus_") {
		t.Errorf("status shows a Stripe ID:\n%s", out)
	}

	if _, err := cli("stripe-jobs", "retry", "999999"); err == nil || !strings.Contains(err.Error(), "no dead Stripe job with ID 999999") {
		t.Errorf("retry of an unknown ID: %v", err)
	}
	var ue usageError
	if _, err := cli("stripe-jobs", "retry", "--all", "3"); !errors.As(err, &ue) {
		t.Errorf("retry --all and an ID: %v, want a usage error", err)
	}
	out, err = cli("stripe-jobs", "retry", fmt.Sprint(jobs[0].ID))
	if err != nil || !strings.Contains(out, "re-queued 1 dead Stripe job(s)") {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	rows, err := st.OutboxRows(ctx, billing.OutboxStripe, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := rows[0]; r.State != "pending" || r.Attempts != 0 || !strings.Contains(string(r.Payload), "cus_JobDead") {
		t.Errorf("re-queued job %+v: want pending, a fresh attempt budget and its customer ID", r)
	}
	if again, err := st.OutboxClaim(ctx, billing.OutboxStripe, 10, time.Minute); err != nil || len(again) != 2 || again[0].ID != jobs[0].ID {
		t.Errorf("after retry the worker claims %+v (%v), want the re-queued job among the due ones", again, err)
	}
	out, err = cli("stripe-jobs", "status")
	if err != nil || !strings.Contains(out, "dead: 0") {
		t.Errorf("status after retry: %v\n%s", err, out)
	}
}
