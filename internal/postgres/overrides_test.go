package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestOverridesAuditedExportedErased: an override is set, replaced and
// read back; each change is audited under the token's name with the keyed
// hash of the account; the export holds it; erasing the account removes it
// with the account's summaries, schedules and pending fetch jobs, and an
// erased account gets no new override.
func TestOverridesAuditedExportedErased(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	const acct, cus = "acct_o", "cus_O1"
	if _, err := st.AccountLink(ctx, acct, cus, billing.LinkOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := st.OverrideDelete(ctx, acct, "backend"); !errors.Is(err, billing.ErrNotFound) {
		t.Errorf("delete without override: %v, want not found", err)
	}
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	o, err := st.OverridePut(ctx, billing.Override{AccountID: acct, UpdatedBy: "backend", ExpiresAt: &exp,
		Features: map[string]billing.Grant{"projects": {Kind: billing.GrantLimit, N: 200}, "beta_reports": {Kind: billing.GrantOn}}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Features["projects"].N != 200 || o.ExpiresAt == nil || !o.ExpiresAt.Equal(exp) || o.UpdatedBy != "backend" {
		t.Errorf("stored override %+v", o)
	}
	if _, err := st.OverridePut(ctx, billing.Override{AccountID: acct, UpdatedBy: "support",
		Features: map[string]billing.Grant{"sso": {Kind: billing.GrantUnlimited}}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Override(ctx, acct)
	if err != nil || len(got.Features) != 1 || got.Features["sso"].Kind != billing.GrantUnlimited || got.ExpiresAt != nil || got.UpdatedBy != "support" {
		t.Fatalf("replaced override %+v (%v)", got, err)
	}
	// The summary with more pages queues a fetch job holding the customer ID.
	ev := billing.Event{ID: "evt_O1sum", Type: "entitlements.active_entitlement_summary.updated", Created: time.Now().Truncate(time.Second),
		Livemode: true, Entitlements: &billing.EntitlementSummary{CustomerID: cus, Livemode: true, Features: []string{"sso"}}}
	if _, err := st.ApplyEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	sched := billing.Event{ID: "evt_O1sched", Type: "subscription_schedule.created", Created: time.Now().Truncate(time.Second), Livemode: true,
		Schedule: &billing.Schedule{ID: "sub_sched_O1", CustomerID: cus, Livemode: true, Status: billing.ScheduleNotStarted, EndBehavior: "release"}}
	if _, err := st.ApplyEvent(ctx, sched); err != nil {
		t.Fatal(err)
	}

	x, err := st.AccountExport(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Overrides) != 1 || !strings.Contains(string(x.Overrides[0].Features), "unlimited") || len(x.EntitlementSummaries) != 1 || len(x.Schedules) != 1 {
		t.Errorf("export overrides %+v summaries %d schedules %d", x.Overrides, len(x.EntitlementSummaries), len(x.Schedules))
	}
	var actions []string
	for _, a := range x.Audit {
		actions = append(actions, a.Actor+":"+a.Action)
	}
	if strings.Join(actions, ",") != "backend:override.put,support:override.put" {
		t.Errorf("audit %v, want both puts under their token names", actions)
	}

	if err := st.OverrideDelete(ctx, acct, "support"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Override(ctx, acct); !errors.Is(err, billing.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if _, err := st.OverridePut(ctx, billing.Override{AccountID: acct, UpdatedBy: "backend",
		Features: map[string]billing.Grant{"projects": {Kind: billing.GrantLimit, N: 5}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: acct, Actor: "backend"}); err != nil {
		t.Fatal(err)
	}
	for table, q := range map[string]string{
		"account_overrides":            `SELECT count(*) FROM account_overrides`,
		"stripe_entitlement_summaries": `SELECT count(*) FROM stripe_entitlement_summaries`,
		"subscription_schedules":       `SELECT count(*) FROM subscription_schedules`,
		"fetch jobs":                   `SELECT count(*) FROM outbox WHERE action = '` + postgres.StripeFetchEntitlements + `'`,
	} {
		var n int
		if err := st.DB().Get(&n, q); err != nil || n != 0 {
			t.Errorf("%s after erasure: %d rows (%v)", table, n, err)
		}
	}
	x, err = st.AccountExport(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Overrides) != 0 || len(x.EntitlementSummaries) != 0 || len(x.Schedules) != 0 {
		t.Errorf("export after erasure still holds %+v", x)
	}
	if _, err := st.OverridePut(ctx, billing.Override{AccountID: acct, UpdatedBy: "backend",
		Features: map[string]billing.Grant{"sso": {Kind: billing.GrantOn}}}); !errors.Is(err, billing.ErrAccountErased) {
		t.Errorf("override of an erased account: %v, want ErrAccountErased", err)
	}
}
