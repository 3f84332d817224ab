package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// The change feed with entitlements v2 (issue 18): overrides, the
// features catalog, schedules, Stripe Entitlements summaries and test
// clocks change answers, and the feed's answers are the endpoint's.

// featureAnswer is the part of an entry these tests read.
type featureAnswer struct {
	Entitled bool                              `json:"entitled"`
	Livemode bool                              `json:"livemode"`
	Features map[string]struct{ Limit *int64 } `json:"features"`
}

func featuresOf(t *testing.T, c billing.Change) featureAnswer {
	t.Helper()
	var a featureAnswer
	if err := json.Unmarshal(c.Entitlement, &a); err != nil {
		t.Fatalf("entry %d: %v: %s", c.Seq, err, c.Entitlement)
	}
	return a
}

// featureList renders an entry's features as "key=limit" (limit "on" for
// none), sorted: one string to compare.
func featureList(a featureAnswer) string {
	var out []string
	for k, f := range a.Features {
		v := "on"
		if f.Limit != nil {
			v = fmt.Sprint(*f.Limit)
		}
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// entriesByKey groups entries as "account/live|test".
func entriesByKey(cs []billing.Change) map[string][]billing.Change {
	out := map[string][]billing.Change{}
	for _, c := range cs {
		mode := "test"
		if c.Livemode {
			mode = "live"
		}
		out[c.AccountID+"/"+mode] = append(out[c.AccountID+"/"+mode], c)
	}
	return out
}

// proEvent is a live active subscription of account's customer cus to
// prod_Pro, quantity 10.
func proEvent(id, account, cus, sub string, live bool, at time.Time) billing.Event {
	s := subscriptionOf(cus, sub, live, billing.StatusActive, 1000, at.Add(-time.Hour))
	s.Items[0].PriceID, s.Items[0].ProductID, s.Items[0].Quantity = "price_Pro", "prod_Pro", 10
	s.AccountHint = account
	return billing.Event{ID: id, Type: "customer.subscription.updated", Created: at, Livemode: live, Subscription: s}
}

func putCatalog(t *testing.T, st *postgres.Store, doc string) {
	t.Helper()
	c, err := billing.ParseCatalog([]byte(doc))
	if err != nil {
		t.Fatalf("catalog %s: %v", doc, err)
	}
	if err := st.CatalogPut(context.Background(), c, "test"); err != nil {
		t.Fatal(err)
	}
}

// An override put, replaced and deleted: each change gives exactly one
// entry per mode of the account (an override applies in both) with the
// new features, other accounts none; the same override again, and an event
// that changes nothing, give none.
func TestChangeFeedOverrideChange(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	apply(t, st, proEvent("evt_ov1", "acct_ov", "cus_Ov", "sub_Ov", true, t0))
	apply(t, st, proEvent("evt_ov2", "acct_ov_other", "cus_OvOther", "sub_OvOther", true, t0))
	produceAll(t, st, feedProducer)
	after := lastSeq(t, st)

	step := func(name string, change func(), want map[string]string) {
		t.Helper()
		change()
		produceAll(t, st, feedProducer)
		got := readFeed(t, st, after)
		by := entriesByKey(got)
		for k, cs := range by {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %d entries for %s, want none", name, len(cs), k)
			}
		}
		for k, features := range want {
			cs := by[k]
			if len(cs) != 1 {
				t.Errorf("%s: %d entries for %s, want 1", name, len(cs), k)
				continue
			}
			if f := featureList(featuresOf(t, cs[0])); f != features {
				t.Errorf("%s: %s features %q, want %q", name, k, f, features)
			}
		}
		if len(got) > 0 {
			after = got[len(got)-1].Seq
		}
	}
	put := func(feats map[string]billing.Grant) func() {
		return func() {
			if _, err := st.OverridePut(ctx, billing.Override{AccountID: "acct_ov", UpdatedBy: "support", Features: feats}); err != nil {
				t.Fatal(err)
			}
		}
	}
	step("Put", put(map[string]billing.Grant{"seats": {Kind: billing.GrantLimit, N: 50}}),
		map[string]string{"acct_ov/live": "seats=50", "acct_ov/test": "seats=50"})
	step("SameAgain", put(map[string]billing.Grant{"seats": {Kind: billing.GrantLimit, N: 50}}), nil)
	step("NothingChangingEvent", func() {
		apply(t, st, billing.Event{ID: "evt_ov3", Type: "customer.updated", Created: t0.Add(time.Minute), Livemode: true,
			Customer: &billing.Customer{ID: "cus_Ov", Livemode: true}})
		apply(t, st, proEvent("evt_ov4", "acct_ov", "cus_Ov", "sub_Ov", true, t0.Add(-time.Minute))) // stale
	}, nil)
	step("Replace", put(map[string]billing.Grant{"seats": {Kind: billing.GrantLimit, N: 80}, "sso": {Kind: billing.GrantOn}}),
		map[string]string{"acct_ov/live": "seats=80,sso=on", "acct_ov/test": "seats=80,sso=on"})
	step("Delete", func() {
		if err := st.OverrideDelete(ctx, "acct_ov", "support"); err != nil {
			t.Fatal(err)
		}
	}, map[string]string{"acct_ov/live": "", "acct_ov/test": ""})
}

// A catalog change marks every account with one statement; the producer
// then gives exactly one entry to each account-and-mode whose features it
// changes (across passes of a small batch), none to the others, and none
// at all for a catalog change that moves no answer.
func TestChangeFeedCatalogChange(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		apply(t, st, proEvent(fmt.Sprintf("evt_cat%d", i), fmt.Sprintf("acct_cat%d", i), fmt.Sprintf("cus_Cat%d", i), fmt.Sprintf("sub_Cat%d", i), true, t0))
	}
	apply(t, st, proEvent("evt_cat_test", "acct_cat_test", "cus_CatTest", "sub_CatTest", false, t0))
	basic := feedEvent("evt_cat_basic", "acct_cat_basic", "cus_CatBasic", "sub_CatBasic", billing.StatusActive, t0)
	apply(t, st, basic)
	p := feedProducer
	p.Batch = 2 // the catalog's marks span passes
	produceAll(t, st, p)
	after := lastSeq(t, st)

	step := func(name, doc string, want map[string]string) {
		t.Helper()
		putCatalog(t, st, doc)
		if n := countRows(t, st, `SELECT count(*) FROM entitlement_dirty`); n != 1 {
			t.Errorf("%s: %d dirty rows after the catalog change, want 1 (the all-accounts mark)", name, n)
		}
		produceAll(t, st, p)
		got := readFeed(t, st, after)
		by := entriesByKey(got)
		for k, cs := range by {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %d entries for %s, want none", name, len(cs), k)
			}
		}
		for k, features := range want {
			if cs := by[k]; len(cs) != 1 {
				t.Errorf("%s: %d entries for %s, want 1", name, len(cs), k)
			} else if f := featureList(featuresOf(t, cs[0])); f != features {
				t.Errorf("%s: %s features %q, want %q", name, k, f, features)
			}
		}
		if len(got) > 0 {
			after = got[len(got)-1].Seq
		}
		if n := countRows(t, st, `SELECT count(*) FROM entitlement_dirty`); n != 0 {
			t.Errorf("%s: %d dirty rows left", name, n)
		}
	}
	pro := map[string]string{"acct_cat_test/test": "seats=10,sso=on"}
	for i := range 5 {
		pro[fmt.Sprintf("acct_cat%d/live", i)] = "seats=10,sso=on"
	}
	step("ProGrants", `{"features": {"sso": {}, "seats": {}}, "products": {"prod_Pro": {"sso": true, "seats": {"per_unit": 1}}}}`, pro)
	step("UnsubscribedProductOnly", `{"features": {"sso": {}, "seats": {}, "api": {}},
		"products": {"prod_Pro": {"sso": true, "seats": {"per_unit": 1}}, "prod_Max": {"api": true}}}`, nil)
	step("BasicGrants", `{"features": {"sso": {}, "seats": {}, "api": {}},
		"products": {"prod_Pro": {"sso": true, "seats": {"per_unit": 1}}, "prod_basic": {"api": true}}}`,
		map[string]string{"acct_cat_basic/live": "api=on"})
}

func lastSeq(t *testing.T, st *postgres.Store) int64 {
	t.Helper()
	all := readFeed(t, st, 0)
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Seq
}

// Every kind of input an answer reads (catalog grants per unit, a
// schedule's next phase, a pending update, Stripe Entitlements summaries,
// an override with an expiry, a test clock a year behind, a past_due
// subscription in grace, a deleted customer): the last feed entry of each
// account and mode is byte for byte what the entitlement cache (the
// endpoint's source) answers, and accounts the feed never reported on
// answer what the feed assumes of them.
func TestChangeFeedSameAnswerAsEndpoint(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-time.Hour)
	putCatalog(t, st, `{"features": {"sso": {}, "seats": {}, "projects": {}},
		"products": {"prod_Pro": {"sso": true, "seats": {"per_unit": 2}, "projects": 100}, "prod_basic": {"projects": 10}}}`)
	apply(t, st, proEvent("evt_eq_cat", "acct_eq_cat", "cus_EqCat", "sub_EqCat", true, t0))
	apply(t, st, proEvent("evt_eq_cat_t", "acct_eq_cat", "cus_EqCatT", "sub_EqCatT", false, t0))

	// A schedule whose next phase moves to prod_basic in 10 days.
	apply(t, st, proEvent("evt_eq_sched", "acct_eq_sched", "cus_EqSched", "sub_EqSched", true, t0))
	next := now.Add(10 * 24 * time.Hour)
	apply(t, st, billing.Event{ID: "evt_eq_sched2", Type: "subscription_schedule.updated", Created: t0.Add(time.Second), Livemode: true,
		Schedule: &billing.Schedule{ID: "sub_sched_Eq", CustomerID: "cus_EqSched", SubscriptionID: "sub_EqSched", Livemode: true,
			Status: billing.ScheduleActive, EndBehavior: "release",
			Phases: []billing.SchedulePhase{{Start: &t0, End: &next, Items: []billing.PhaseItem{{PriceID: "price_Pro", Quantity: 10}}},
				{Start: &next, Items: []billing.PhaseItem{{PriceID: "price_basic", Quantity: 3}}}}}})

	// A pending update and Stripe Entitlements features.
	pending := proEvent("evt_eq_pend", "acct_eq_pend", "cus_EqPend", "sub_EqPend", true, t0)
	exp := now.Add(23 * time.Hour)
	pending.Subscription.PendingUpdate = &billing.PendingUpdate{ExpiresAt: &exp, Items: []billing.PhaseItem{{PriceID: "price_Max", Quantity: 20}}}
	apply(t, st, pending)
	apply(t, st, billing.Event{ID: "evt_eq_sum", Type: "entitlements.active_entitlement_summary.updated", Created: t0.Add(time.Second),
		Livemode: true, Entitlements: &billing.EntitlementSummary{CustomerID: "cus_EqPend", Livemode: true, Features: []string{"sso", "audit_log"}}})

	// An override alone, expiring tomorrow.
	oexp := now.Add(24 * time.Hour)
	if _, err := st.OverridePut(ctx, billing.Override{AccountID: "acct_eq_ovr", UpdatedBy: "support", ExpiresAt: &oexp,
		Features: map[string]billing.Grant{"projects": {Kind: billing.GrantLimit, N: 7}}}); err != nil {
		t.Fatal(err)
	}

	// A test-mode customer on a clock a year behind: past_due since the
	// clock's period start, in grace at the clock's time, long out of it
	// at the wall clock's.
	const clock = "clock_1Eq"
	frozen := now.AddDate(-1, 0, 0)
	apply(t, st, billing.Event{ID: "evt_eq_clock", Type: "test_helpers.test_clock.ready", Created: t0, Livemode: false,
		TestClock: &billing.TestClock{ID: clock, FrozenTime: frozen, Status: billing.TestClockReady}})
	apply(t, st, billing.Event{ID: "evt_eq_clock_cus", Type: "customer.updated", Created: t0, Livemode: false,
		Customer: &billing.Customer{ID: "cus_EqClock", AccountHint: "acct_eq_clock", TestClock: clock}})
	clocked := subscriptionOf("cus_EqClock", "sub_EqClock", false, billing.StatusPastDue, 1000, frozen.Add(-time.Hour))
	clocked.AccountHint, clocked.TestClock = "acct_eq_clock", clock
	apply(t, st, billing.Event{ID: "evt_eq_clock_sub", Type: "customer.subscription.updated", Created: t0.Add(time.Second), Subscription: clocked})

	// A deleted customer's subscription grants nothing.
	apply(t, st, proEvent("evt_eq_del", "acct_eq_del", "cus_EqDel", "sub_EqDel", true, t0))
	apply(t, st, billing.Event{ID: "evt_eq_del2", Type: "customer.deleted", Created: t0.Add(time.Second), Livemode: true,
		Customer: &billing.Customer{ID: "cus_EqDel", Livemode: true, Deleted: true}})

	produceAll(t, st, feedProducer)
	by := entriesByKey(readFeed(t, st, 0))
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: feedProducer.Grace, Log: slog.New(slog.DiscardHandler)})
	none := map[bool]string{}
	for _, live := range []bool{true, false} {
		r, err := cache.FreshEntitlement(ctx, "acct_eq_never", live)
		if err != nil {
			t.Fatal(err)
		}
		none[live] = string(r.Body)
	}
	checks := 0
	for _, acct := range []string{"acct_eq_cat", "acct_eq_sched", "acct_eq_pend", "acct_eq_ovr", "acct_eq_clock", "acct_eq_del"} {
		for _, live := range []bool{true, false} {
			r, err := cache.FreshEntitlement(ctx, acct, live)
			if err != nil {
				t.Fatal(err)
			}
			mode := map[bool]string{true: "live", false: "test"}[live]
			cs := by[acct+"/"+mode]
			want := strings.TrimSpace(string(r.Body))
			if len(cs) == 0 {
				if string(r.Body) != none[live] {
					t.Errorf("%s/%s: no entry, but the endpoint answers %s", acct, mode, want)
				}
				continue
			}
			checks++
			if got := string(cs[len(cs)-1].Entitlement); got != want {
				t.Errorf("%s/%s: feed entry\n%s\nendpoint\n%s", acct, mode, got, want)
			}
		}
	}
	if checks < 6 {
		t.Errorf("%d accounts and modes with entries, want at least 6: the fixtures made too few changes", checks)
	}
	// The fixtures exercise what they claim.
	for k, want := range map[string]string{
		"acct_eq_cat/live":   `"features":{"projects":{"limit":100},"seats":{"limit":20},"sso":{"limit":null}}`,
		"acct_eq_sched/live": `"plan":"price_basic","quantity":3`,
		"acct_eq_pend/live":  `"audit_log":{"limit":null}`,
		"acct_eq_ovr/test":   `"projects":{"limit":7}`,
		"acct_eq_clock/test": `"entitled":true,"status":"past_due"`,
	} {
		cs := by[k]
		if len(cs) == 0 || !strings.Contains(string(cs[len(cs)-1].Entitlement), want) {
			t.Errorf("%s: entries %d, last does not hold %s", k, len(cs), want)
		}
	}
	if cs := by["acct_eq_del/live"]; len(cs) > 0 && featuresOf(t, cs[len(cs)-1]).Entitled {
		t.Errorf("deleted customer: last entry entitled")
	}
}

// A test clock advancing moves its customers' answers, judged at the
// clock's time: an advance within the grace period makes no entry, one
// past it exactly one (test mode only), whatever the wall clock says.
func TestChangeFeedTestClockAdvance(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	const clock = "clock_1Feed"
	frozen := t0.AddDate(-1, 0, 0)
	tick := func(id string, at time.Time, to time.Time) {
		apply(t, st, billing.Event{ID: id, Type: "test_helpers.test_clock.ready", Created: at,
			TestClock: &billing.TestClock{ID: clock, FrozenTime: to, Status: billing.TestClockReady}})
	}
	tick("evt_tc0", t0, frozen)
	apply(t, st, billing.Event{ID: "evt_tc_cus", Type: "customer.updated", Created: t0,
		Customer: &billing.Customer{ID: "cus_Tc", AccountHint: "acct_tc", TestClock: clock}})
	s := subscriptionOf("cus_Tc", "sub_Tc", false, billing.StatusPastDue, 1000, frozen.Add(-time.Hour))
	s.AccountHint, s.TestClock = "acct_tc", clock
	apply(t, st, billing.Event{ID: "evt_tc_sub", Type: "customer.subscription.updated", Created: t0.Add(time.Second), Subscription: s})
	produceAll(t, st, feedProducer)
	first := readFeed(t, st, 0)
	if len(first) != 1 || first[0].Livemode || !featuresOf(t, first[0]).Entitled {
		t.Fatalf("entries %v, want one test-mode entry, entitled in grace at the clock's time", first)
	}
	after := first[0].Seq
	tick("evt_tc1", t0.Add(2*time.Second), frozen.Add(24*time.Hour))
	produceAll(t, st, feedProducer)
	if got := readFeed(t, st, after); len(got) != 0 {
		t.Fatalf("advance within grace: %d entries, want none", len(got))
	}
	tick("evt_tc2", t0.Add(3*time.Second), frozen.Add(73*time.Hour))
	produceAll(t, st, feedProducer)
	got := readFeed(t, st, after)
	if len(got) != 1 || got[0].AccountID != "acct_tc" || got[0].Livemode || featuresOf(t, got[0]).Entitled {
		t.Fatalf("advance past grace: %v, want one test-mode entry, not entitled", got)
	}
}
