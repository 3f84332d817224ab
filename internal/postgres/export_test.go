package postgres_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/privacy"
)

// seedAccount links customer cus to account (empty: unlinked) and gives it
// one subscription with two versions and one movement, written as the event
// path would: history keyed by surrogate references.
func seedAccount(t *testing.T, st *postgres.Store, account, cus, sub string, livemode bool) {
	t.Helper()
	ctx := context.Background()
	var acct any
	if account != "" {
		acct = account
	}
	db := st.DB()
	var cref string
	if err := db.QueryRowContext(ctx, `INSERT INTO customers (stripe_customer_id, account_id, linked_via, linked_at, livemode)
		VALUES ($1, $2, 'api', now(), $3) RETURNING customer_ref`, cus, acct, livemode).Scan(&cref); err != nil {
		t.Fatalf("seed customer: %v", err)
	}
	var sref string
	if err := db.QueryRowContext(ctx, `INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode,
		status, currency, items, mrr_minor, version_at, version_rank, version_event)
		VALUES ($1, $2, $3, $4, 'active', 'eur', '[{"price_id":"price_1","quantity":2,"unit_amount":1500,"interval":"month","interval_count":1}]',
		3000, now(), 3, 'evt_2') RETURNING subscription_ref`, sub, cus, cref, livemode).Scan(&sref); err != nil {
		t.Fatalf("seed subscription: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO pending_invoice_facts (stripe_subscription_id, stripe_customer_id, latest_invoice_status,
		invoice_attempt_count, invoice_version_at) VALUES ($1, $2, 'payment_failed', 1, now())`, sub+"Later", cus); err != nil {
		t.Fatalf("seed pending invoice: %v", err)
	}
	for i, status := range []string{"trialing", "active"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency,
			items, mrr_minor, version_at, version_rank, version_event)
			VALUES ($1, $2, $3, $4, 'eur', '[]', $5, now() - make_interval(days => $6), $7, $8)`,
			sref, cref, livemode, status, i*3000, 10-i, i+2, "evt_"+status); err != nil {
			t.Fatalf("seed version: %v", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO mrr_movements (customer_ref, subscription_ref, livemode, currency, effective_at, kind,
		delta_minor, customer_mrr_before, customer_mrr_after) VALUES ($1, $2, $3, 'eur', now(), 'new', 3000, 0, 3000)`,
		cref, sref, livemode); err != nil {
		t.Fatalf("seed movement: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO customer_discount_versions (customer_ref, livemode, version_at, version_event, discounts)
		VALUES ($1, $2, now(), 'evt_disc', '[{"percent_off_bp": 2500, "duration": "forever"}]')`, cref, livemode); err != nil {
		t.Fatalf("seed customer discount: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO invoice_line_amounts (customer_ref, subscription_ref, livemode, currency, price_id,
		usage_kind, period_start, period_end, amount_minor, net_minor, paid_at)
		VALUES ($1, $2, $3, 'eur', 'price_m', 'metered', now() - interval '30 days', now(), 1200, 1000, now())`, cref, sref, livemode); err != nil {
		t.Fatalf("seed invoice line: %v", err)
	}
	if account != "" {
		subject, err := st.SubjectHMAC(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_log (actor, action, subject_hmac, details)
			VALUES ('backend', 'link', $1, '{"customers":1}')`, subject); err != nil {
			t.Fatalf("seed audit: %v", err)
		}
	}
	// Issue 18: a Stripe Entitlements summary and a schedule of the
	// customer, and the account's override.
	if _, err := db.ExecContext(ctx, `INSERT INTO stripe_entitlement_summaries (stripe_customer_id, livemode, lookup_keys,
		complete, version_at, version_event) VALUES ($1, $2, '{sso,reports}', true, now(), 'evt_sum')`, cus, livemode); err != nil {
		t.Fatalf("seed entitlement summary: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO subscription_schedules (stripe_schedule_id, stripe_customer_id, stripe_subscription_id,
		livemode, status, end_behavior, phases, version_at, version_rank, version_event)
		VALUES ($1, $2, $3, $4, 'active', 'release', '[{"start":"2027-03-01T00:00:00Z","items":[{"price_id":"price_basic","quantity":5}]}]',
		now(), 2, 'evt_sched')`, "sub_sched_"+cus[len("cus_"):], cus, sub, livemode); err != nil {
		t.Fatalf("seed schedule: %v", err)
	}
	if account != "" {
		if _, err := db.ExecContext(ctx, `INSERT INTO account_overrides (account_id, features, updated_by)
			VALUES ($1, '{"projects":200}', 'backend') ON CONFLICT DO NOTHING`, account); err != nil {
			t.Fatalf("seed override: %v", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO subscription_activity (customer_ref, subscription_ref, livemode, currency, effective_at, delta)
		VALUES ($1, $2, $3, 'eur', now(), 1)`, cref, sref, livemode); err != nil {
		t.Fatalf("seed activity: %v", err)
	}
}

func TestAccountExport(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	seedAccount(t, st, "acct_a", "cus_Alive", "sub_Alive", true)
	seedAccount(t, st, "acct_a", "cus_Atest", "sub_Atest", false)
	seedAccount(t, st, "acct_b", "cus_B", "sub_B", true)
	seedAccount(t, st, "", "cus_Unlinked", "sub_Unlinked", true)

	t.Run("OK", func(t *testing.T) {
		exp, err := st.AccountExport(ctx, "acct_a")
		if err != nil {
			t.Fatal(err)
		}
		if exp.AccountID != "acct_a" {
			t.Errorf("account_id = %q", exp.AccountID)
		}
		var cus, subs []string
		for _, c := range exp.Customers {
			cus = append(cus, c.StripeCustomerID)
			if c.AccountID == nil || *c.AccountID != "acct_a" {
				t.Errorf("customer %s has account %v", c.StripeCustomerID, c.AccountID)
			}
		}
		for _, s := range exp.Subscriptions {
			subs = append(subs, s.StripeSubscriptionID)
			if !json.Valid(s.Items) || !strings.Contains(string(s.Items), "price_1") {
				t.Errorf("subscription %s items = %s", s.StripeSubscriptionID, s.Items)
			}
		}
		sort.Strings(cus)
		sort.Strings(subs)
		if strings.Join(cus, ",") != "cus_Alive,cus_Atest" || strings.Join(subs, ",") != "sub_Alive,sub_Atest" {
			t.Errorf("customers %v subscriptions %v, want both of acct_a's and no other", cus, subs)
		}
		if len(exp.PendingInvoices) != 2 {
			t.Errorf("pending invoice facts %+v, want one per customer", exp.PendingInvoices)
		}
		for _, p := range exp.PendingInvoices {
			if p.StripeCustomerID != "cus_Alive" && p.StripeCustomerID != "cus_Atest" {
				t.Errorf("pending invoice fact of %s", p.StripeCustomerID)
			}
		}
		if len(exp.SubscriptionHistory) != 4 || len(exp.Movements) != 2 || len(exp.Activity) != 2 || len(exp.Audit) != 2 {
			t.Errorf("history %d, movements %d, activity %d, audit %d; want 4, 2, 2 and 2",
				len(exp.SubscriptionHistory), len(exp.Movements), len(exp.Activity), len(exp.Audit))
		}
		refs := map[string]bool{}
		for _, c := range exp.Customers {
			refs[c.CustomerRef] = true
		}
		for _, v := range exp.SubscriptionHistory {
			if !refs[v.CustomerRef] {
				t.Errorf("history row %d belongs to another customer", v.ID)
			}
		}
		for _, m := range exp.Movements {
			if !refs[m.CustomerRef] {
				t.Errorf("movement %d belongs to another customer", m.ID)
			}
		}
		for _, a := range exp.Activity {
			if !refs[a.CustomerRef] {
				t.Errorf("activity %d belongs to another customer", a.ID)
			}
		}
		if len(exp.Overrides) != 1 || exp.Overrides[0].AccountID != "acct_a" || len(exp.EntitlementSummaries) != 2 || len(exp.Schedules) != 2 {
			t.Errorf("overrides %+v, summaries %d, schedules %d; want acct_a's one override and one of each per customer",
				exp.Overrides, len(exp.EntitlementSummaries), len(exp.Schedules))
		}
		body, _ := json.Marshal(exp)
		for _, other := range []string{"acct_b", "cus_B", "sub_B", "cus_Unlinked", "sub_Unlinked"} {
			if strings.Contains(string(body), other) {
				t.Errorf("export of acct_a mentions %s", other)
			}
		}
	})
	t.Run("UnknownAccountIsEmpty", func(t *testing.T) {
		exp, err := st.AccountExport(ctx, "acct_nobody")
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Empty() {
			t.Errorf("export of an unknown account = %+v, want empty", exp)
		}
		body, _ := json.Marshal(exp)
		if !strings.Contains(string(body), `"customers":[]`) {
			t.Errorf("empty lists should encode as [], got %s", body)
		}
	})
}

// exportOmits are columns of exported tables deliberately left out of the
// export, with the reason.
var exportOmits = map[string]string{
	// The keyed hash the entries are found by; the export's account_id
	// already says whom they are about.
	"audit_log.subject_hmac": "lookup key",
	// Keyed hash of the former account of a customer Stripe deleted: the
	// export is found by it and its account_id says whom it is about.
	"customers.former_account_hmac": "lookup key",
}

// Every table the inventory says is exported appears in the export under its
// section, with every column under its column name: a column added to one
// of these tables (and so to the inventory) without being exported fails
// here, and so does a table marked exported that the export lacks.
func TestAccountExportCoversInventory(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	seedAccount(t, st, "acct_a", "cus_A", "sub_A", true)
	exp, err := st.AccountExport(ctx, "acct_a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(exp)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, tb := range privacy.Tables() {
		if tb.Export == "-" {
			continue
		}
		t.Run(tb.Name, func(t *testing.T) {
			var rows []map[string]json.RawMessage
			if err := json.Unmarshal(doc[tb.Export], &rows); err != nil {
				t.Fatalf("export section %q: %v", tb.Export, err)
			}
			if len(rows) == 0 {
				t.Fatalf("no rows in export section %q; seed some", tb.Export)
			}
			want := map[string]bool{}
			for _, c := range tb.Columns {
				want[c.Name] = true
				if _, omitted := exportOmits[tb.Name+"."+c.Name]; omitted {
					continue
				}
				if _, ok := rows[0][c.Name]; !ok {
					t.Errorf("column %s.%s is not in the export", tb.Name, c.Name)
				}
			}
			for k := range rows[0] {
				if !want[k] {
					t.Errorf("export field %s.%s is not a column in the inventory", tb.Export, k)
				}
			}
		})
	}
}
