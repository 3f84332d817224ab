package postgres_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
)

// TestRevenueThroughEventPath feeds metrics.md's worked example through
// the real event transaction (Store.ApplyEvent) in several delivery orders:
// every order ends with the same report, and it is the worked example's.
func TestRevenueThroughEventPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subEv := func(id, typ, when string, s billing.Subscription) billing.Event {
		s.Livemode = true
		s.Currency = "usd"
		return billing.Event{ID: id, Type: typ, Created: at(when), Livemode: true, Subscription: &s}
	}
	a := func(status billing.Status, qty int64) billing.Subscription {
		return billing.Subscription{ID: "sub_A1", CustomerID: "cus_A1", Status: status, Items: []billing.Item{monthlyItem(2000, qty)}}
	}
	scheduled := a(billing.StatusActive, 2)
	scheduled.CancelAtPeriodEnd, scheduled.CurrentPeriodEnd = true, ptr(at("2026-04-03T09:00:00Z"))
	b := billing.Subscription{ID: "sub_B1", CustomerID: "cus_B1", Status: billing.StatusActive,
		Items: []billing.Item{{PriceID: "price_y", Quantity: 1, UnitAmount: 24000, Interval: billing.IntervalYear, IntervalCount: 1}}}
	events := []billing.Event{
		subEv("evt_a1", "customer.subscription.created", "2026-01-03T09:00:00Z", a(billing.StatusActive, 1)),
		subEv("evt_a2", "customer.subscription.updated", "2026-02-10T12:00:00Z", a(billing.StatusActive, 2)),
		subEv("evt_a3", "customer.subscription.updated", "2026-03-15T08:00:00Z", scheduled),
		subEv("evt_a4", "customer.subscription.deleted", "2026-04-03T09:00:01Z", a(billing.StatusCanceled, 2)),
		subEv("evt_b1", "customer.subscription.created", "2026-01-20T15:00:00Z", b),
	}
	report := func(t *testing.T, events []billing.Event) []billing.PeriodTotals {
		t.Helper()
		st := pgtest.Open(t)
		for _, ev := range events {
			if _, err := st.ApplyEvent(ctx, ev); err != nil {
				t.Fatalf("apply %s: %v", ev.ID, err)
			}
		}
		r, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: "usd", Bucket: billing.BucketMonth,
			From: at("2026-01-01T00:00:00Z"), To: at("2026-05-01T00:00:00Z"), AsOf: at("2026-06-01T00:00:00Z")})
		if err != nil {
			t.Fatal(err)
		}
		checkRollup(t, st)
		return r
	}
	want := report(t, events)
	mrr := []int64{want[0].MRREnd, want[1].MRREnd, want[2].MRREnd, want[3].MRREnd}
	if !reflect.DeepEqual(mrr, []int64{4000, 6000, 6000, 2000}) || want[0].Movements.New != 4000 ||
		want[1].Movements.Expansion != 2000 || want[3].Movements.Churn != 4000 ||
		*want[3].Figures(billing.BucketMonth).CustomerChurnRate != 0.5 {
		t.Fatalf("in-order report %+v", want)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, name := range []string{"Shuffle1", "Shuffle2", "Reversed"} {
		t.Run(name, func(t *testing.T) {
			evs := append([]billing.Event(nil), events...)
			if name == "Reversed" {
				for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
					evs[i], evs[j] = evs[j], evs[i]
				}
			} else {
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			}
			if got := report(t, evs); !reflect.DeepEqual(got, want) {
				t.Fatalf("order %v:\n got %+v\nwant %+v", ids(evs), got, want)
			}
		})
	}
}

func ids(evs []billing.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}
