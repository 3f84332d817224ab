package postgres_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// A page of API-fetched objects (backfill) applied by ApplyObjects in one
// transaction leaves the same state and outcomes as the same objects
// applied one by one through ApplyEvent: new customers and subscriptions,
// an upgrade, a hint conflicting with a link, a deleted customer, and a
// subscription of an erased account (tombstoned: skipped). An event that
// is not an API-fetched object is refused.
func TestApplyObjectsEqualsOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	before, batch := batchScenario()
	answered := month(2026, time.August) // when Stripe answered the page
	var page []billing.Event
	seen := map[string]int{}
	for _, ev := range batch {
		if ev.Connect || (ev.Subscription == nil && ev.Customer == nil) {
			continue // lists hold customers and subscriptions only
		}
		id := ""
		if ev.Subscription != nil {
			id = ev.Subscription.ID
		} else {
			id = ev.Customer.ID
		}
		ev.ID, ev.Created = "", answered
		if i, ok := seen[id]; ok {
			page[i] = ev // a page lists an object once, as it is now
			continue
		}
		seen[id] = len(page)
		page = append(page, ev)
	}
	if len(page) < 6 {
		t.Fatalf("page of %d objects: the scenario changed", len(page))
	}
	prepare := func() *postgres.Store {
		st := pgtest.Open(t)
		applyAll(t, st, before)
		if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_B3", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Reference: one object per transaction, in the order a batch applies
	// them (subscriptions first, by customer), so the outbox rows of
	// different customers come in the same order too.
	ref := prepare()
	isSub := func(ev billing.Event) bool { return ev.Subscription != nil }
	slices.SortStableFunc(page, func(x, y billing.Event) int {
		if isSub(x) != isSub(y) {
			if isSub(x) {
				return -1
			}
			return 1
		}
		return strings.Compare(customerOf(x), customerOf(y))
	})
	var want []billing.Outcome
	for _, ev := range page {
		o, err := ref.ApplyEvent(ctx, ev)
		if err != nil {
			t.Fatalf("one by one: %+v: %v", ev, err)
		}
		want = append(want, o)
	}
	if !slices.Contains(want, billing.OutcomeApplied) || !slices.Contains(want, billing.OutcomeTombstoned) {
		t.Fatalf("one by one outcomes %v: want some applied and the erased account's tombstoned", want)
	}

	st := prepare()
	shuffled := slices.Clone(page)
	slices.Reverse(shuffled)
	outs, errs, err := st.ApplyObjects(ctx, shuffled)
	if err != nil {
		t.Fatal(err)
	}
	for i := range shuffled {
		if w := want[len(want)-1-i]; errs[i] != nil || outs[i] != w {
			t.Errorf("object %d: outcome %q (err %v), one by one %q", i, outs[i], errs[i], w)
		}
	}
	got, wantState := normalisedState(t, st), normalisedState(t, ref)
	for _, name := range slices.Sorted(mapsKeys(wantState)) {
		if got[name] != wantState[name] {
			t.Errorf("%s differs from one by one:\n got: %s\nwant: %s", name, got[name], wantState[name])
		}
	}

	if _, _, err := st.ApplyObjects(ctx, batch[:1]); !errors.Is(err, billing.ErrInvalid) {
		t.Errorf("an event with an ID: err %v, want ErrInvalid", err)
	}
}
