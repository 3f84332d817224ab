package webhooks_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/billingd/billingd/webhooks/webhookstest"
)

// The same event delivered 20 times at once (as to several replicas) is
// applied exactly once; every delivery gets 200.
func TestDuplicateStorm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f := webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created")
	const n = 20
	var wg sync.WaitGroup
	resps := make([]webhookstest.Response, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resps[i] = b.post(t, f.Payload)
		}()
	}
	wg.Wait()
	outcomes := map[string]int{}
	for _, r := range resps {
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		outcomes[r.Outcome()]++
	}
	if outcomes["applied"] != 1 || outcomes["duplicate"] != n-1 {
		t.Fatalf("outcomes %v, want 1 applied and %d duplicate", outcomes, n-1)
	}
	for table, want := range map[string]int{"stripe_events": 1, "customers": 1, "subscriptions": 1, "subscription_versions": 1} {
		if got := b.count(t, table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	// A later sequential redelivery is a duplicate too.
	if r := b.post(t, f.Payload); r.Outcome() != "duplicate" {
		t.Fatalf("redelivery outcome %q", r.Outcome())
	}
}

// lifecycle is one subscription's life as fixtures: created (trialing) →
// trial ending → active → upgraded → past_due → canceled, with the
// invoice that failed in between.
var lifecycle = []string{
	"v2023_03_customer.subscription.created",
	"v2023_04_customer.subscription.trial_will_end",
	"v2023_05_customer.subscription.updated.active",
	"v2023_06_customer.subscription.updated.upgraded",
	"v2023_07_invoice.payment_failed",
	"v2023_08_customer.subscription.updated.past_due",
	"v2023_15_customer.subscription.deleted",
}

// renamed gives a fixture fresh IDs for run k, so many delivery orders can
// share one database.
func renamed(p []byte, k int) []byte {
	s := fmt.Sprintf("x%d", k)
	return webhookstest.Rewrite(p, "sub_PiiLife1", "sub_PiiLife1"+s, "cus_PiiLife1", "cus_PiiLife1"+s,
		`"acct_life_1"`, `"acct_life_1`+s+`"`, `"evt_1Pii`, `"evt_1Pii`+s)
}

// Delivered in many random orders, the lifecycle converges to the state
// in-order delivery reaches: current state, history and invoice facts.
func TestShuffledLifecycleConverges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var events [][]byte
	for _, name := range lifecycle {
		events = append(events, webhookstest.FixtureNamed(t, name).Payload)
	}
	type final struct {
		state    subState
		versions string
	}
	read := func(k int) final {
		id := fmt.Sprintf("sub_PiiLife1x%d", k)
		st := b.sub(t, id)
		st.VersionEvent = strings.Replace(st.VersionEvent, fmt.Sprintf("x%d", k), "", 1)
		var vs []string
		err := b.store.DB().Select(&vs, `
SELECT v.status || ' ' || v.version_at::text || ' ' || v.version_rank || ' ' || v.mrr_minor || ' ' || v.items::text
FROM subscription_versions v JOIN subscriptions s USING (subscription_ref)
WHERE s.stripe_subscription_id = $1 ORDER BY v.version_at, v.version_rank`, id)
		if err != nil {
			t.Fatal(err)
		}
		return final{st, strings.Join(vs, "\n")}
	}
	for _, e := range events {
		if r := b.post(t, renamed(e, 0)); r.Status != http.StatusOK {
			t.Fatalf("in order: %d %s", r.Status, r.Body)
		}
	}
	want := read(0)
	if want.state.Status != "canceled" {
		t.Fatalf("in-order final status %q", want.state.Status)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for k := 1; k <= 40; k++ {
		order := rng.Perm(len(events))
		if k == 1 { // the exact reverse, the worst case
			for i := range order {
				order[i] = len(events) - 1 - i
			}
		}
		for _, i := range order {
			if r := b.post(t, renamed(events[i], k)); r.Status != http.StatusOK {
				t.Fatalf("order %v: %d %s", order, r.Status, r.Body)
			}
		}
		got := read(k)
		if !reflect.DeepEqual(got.state, want.state) {
			t.Fatalf("order %v: state\n%+v\nwant\n%+v", order, got.state, want.state)
		}
		if got.versions != want.versions {
			t.Fatalf("order %v: history\n%s\nwant\n%s", order, got.versions, want.versions)
		}
	}
	// All at once, as several replicas receive them: the customer's row
	// lock serialises them, and the end state is the same.
	for k := 41; k <= 50; k++ {
		var wg sync.WaitGroup
		for _, e := range events {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := b.post(t, renamed(e, k)); r.Status != http.StatusOK {
					t.Errorf("concurrent: %d %s", r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		got := read(k)
		if !reflect.DeepEqual(got.state, want.state) || got.versions != want.versions {
			t.Fatalf("concurrent delivery %d: state\n%+v\n%s\nwant\n%+v\n%s", k, got.state, got.versions, want.state, want.versions)
		}
	}
}

// Two changes of one subscription in the same second: whichever arrives
// first, the one further along the lifecycle wins, so an update never
// resurrects a subscription deleted in the same second.
func TestSameSecondTieBreak(t *testing.T) {
	t.Parallel()
	b := setup(t)
	upd := webhookstest.FixtureNamed(t, "v2023_06_customer.subscription.updated.upgraded").Payload
	del := webhookstest.FixtureNamed(t, "v2023_15_customer.subscription.deleted").Payload
	// Same created second for both.
	sameSecond := func(p []byte) []byte {
		s := string(p)
		i := strings.LastIndex(s, `"created": `)
		j := i + strings.IndexByte(s[i:], ',')
		return []byte(s[:i] + `"created": 1800000000` + s[j:])
	}
	tests := []struct {
		name  string
		order [][]byte
	}{
		{"UpdateThenDelete", [][]byte{upd, del}},
		{"DeleteThenUpdate", [][]byte{del, upd}},
	}
	for k, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var outcomes []string
			for _, p := range tt.order {
				r := b.post(t, sameSecond(renamed(p, 100+k)))
				if r.Status != http.StatusOK {
					t.Fatalf("%d %s", r.Status, r.Body)
				}
				outcomes = append(outcomes, r.Outcome())
			}
			if s := b.sub(t, fmt.Sprintf("sub_PiiLife1x%d", 100+k)); s.Status != "canceled" {
				t.Fatalf("status %q after %v, want canceled", s.Status, outcomes)
			}
			if tt.name == "DeleteThenUpdate" && outcomes[1] != "stale" {
				t.Fatalf("late update outcome %q, want stale", outcomes[1])
			}
		})
	}
}
