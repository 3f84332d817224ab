package billing

import (
	"reflect"
	"testing"
	"time"
)

func TestSyncActions(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	start := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
	ended := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)
	monthly := func(status Status, unit, qty int64) Subscription {
		return Subscription{Livemode: true, Status: status, Currency: "eur", StartDate: &start,
			Items: []Item{{PriceID: "price_m", Quantity: qty, UnitAmount: unit, Interval: IntervalMonth, IntervalCount: 1}}}
	}
	with := func(s Subscription, f func(*Subscription)) *Subscription { f(&s); return &s }
	plan := func(v int64, status string) SyncPlan {
		return SyncPlan{PlanID: "price_m", Interval: "month", Currency: "eur", Value: v, Status: status}
	}
	tests := []struct {
		name string
		prev *Subscription
		next Subscription
		want []SyncAction
	}{
		{"NewActive", nil, monthly(StatusActive, 1000, 2),
			[]SyncAction{{Kind: SyncCreate, Plan: plan(2000, "active"), EffectiveDate: start}}},
		{"NewTrial", nil, monthly(StatusTrialing, 1000, 1),
			[]SyncAction{{Kind: SyncCreate, Plan: plan(1000, "trialing"), EffectiveDate: start}}},
		{"TestModeNeverSent", nil, *with(monthly(StatusActive, 1000, 1), func(s *Subscription) { s.Livemode = false }), nil},
		{"IncompleteNotYet", nil, monthly(StatusIncomplete, 1000, 1), nil},
		{"IncompleteThenActiveAtVersionTime", ptr(monthly(StatusIncomplete, 1000, 1)), monthly(StatusActive, 1000, 1),
			[]SyncAction{{Kind: SyncCreate, Plan: plan(1000, "active"), EffectiveDate: at}}},
		{"IncompleteExpiredNeverSent", ptr(monthly(StatusIncomplete, 1000, 1)), monthly(StatusIncompleteExpired, 1000, 1), nil},
		{"FirstSeenIncompleteExpired", nil, monthly(StatusIncompleteExpired, 1000, 1), nil},
		{"Upgrade", ptr(monthly(StatusActive, 1000, 1)), monthly(StatusActive, 1000, 3),
			[]SyncAction{{Kind: SyncUpdate, Plan: plan(3000, "active"), EffectiveDate: at}}},
		{"TrialConverts", ptr(monthly(StatusTrialing, 1000, 1)), monthly(StatusActive, 1000, 1),
			[]SyncAction{{Kind: SyncUpdate, Plan: plan(1000, "active"), EffectiveDate: at}}},
		{"PastDueStillLiveNoCall", ptr(monthly(StatusActive, 1000, 1)), monthly(StatusPastDue, 1000, 1), nil},
		{"UnrelatedChangeNoCall", ptr(monthly(StatusActive, 1000, 1)),
			*with(monthly(StatusActive, 1000, 1), func(s *Subscription) { s.CancelAtPeriodEnd = true }), nil},
		{"CanceledVoluntary", ptr(monthly(StatusActive, 1000, 1)),
			*with(monthly(StatusCanceled, 1000, 1), func(s *Subscription) { s.EndedAt = &ended }),
			[]SyncAction{{Kind: SyncChurn, EffectiveDate: ended, ChurnType: ChurnVoluntary}}},
		{"CanceledAfterPastDueDelinquent", ptr(monthly(StatusPastDue, 1000, 1)), monthly(StatusCanceled, 1000, 1),
			[]SyncAction{{Kind: SyncChurn, EffectiveDate: at, ChurnType: ChurnDelinquent}}},
		{"UnpaidDelinquent", ptr(monthly(StatusPastDue, 1000, 1)), monthly(StatusUnpaid, 1000, 1),
			[]SyncAction{{Kind: SyncChurn, EffectiveDate: at, ChurnType: ChurnDelinquent}}},
		{"UnpaidThenCanceledAlreadyChurned", ptr(monthly(StatusUnpaid, 1000, 1)), monthly(StatusCanceled, 1000, 1), nil},
		{"TrialCanceledVoluntary", ptr(monthly(StatusTrialing, 1000, 1)), monthly(StatusCanceled, 1000, 1),
			[]SyncAction{{Kind: SyncChurn, EffectiveDate: at, ChurnType: ChurnVoluntary}}},
		{"PausedIsChurn", ptr(monthly(StatusTrialing, 1000, 1)), monthly(StatusPaused, 1000, 1),
			[]SyncAction{{Kind: SyncChurn, EffectiveDate: at, ChurnType: ChurnVoluntary}}},
		{"UnpaidPaidAgainUnchurn", ptr(monthly(StatusUnpaid, 1000, 1)), monthly(StatusActive, 1000, 1),
			[]SyncAction{{Kind: SyncUnchurn}}},
		{"ResumedWithNewPlanUnchurnThenUpdate", ptr(monthly(StatusPaused, 1000, 1)), monthly(StatusActive, 1000, 2),
			[]SyncAction{{Kind: SyncUnchurn}, {Kind: SyncUpdate, Plan: plan(2000, "active"), EffectiveDate: at}}},
		{"FirstSeenEndedCreateThenChurn", nil,
			*with(monthly(StatusCanceled, 1000, 1), func(s *Subscription) { s.EndedAt = &ended }),
			[]SyncAction{{Kind: SyncCreate, Plan: plan(1000, "active"), EffectiveDate: start},
				{Kind: SyncChurn, EffectiveDate: ended, ChurnType: ChurnVoluntary}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := SyncActions(tt.prev, tt.next, at)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SyncActions =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSyncPlanOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	later := at.Add(24 * time.Hour)
	item := func(iv Interval, count, unit, qty int64) Item {
		return Item{PriceID: "price_x", Quantity: qty, UnitAmount: unit, Interval: iv, IntervalCount: count}
	}
	sub := func(items ...Item) Subscription {
		return Subscription{Livemode: true, Status: StatusActive, Currency: "usd", Items: items}
	}
	tests := []struct {
		name         string
		s            Subscription
		wantInterval string
		wantValue    int64
	}{
		{"Monthly", sub(item(IntervalMonth, 1, 1999, 1)), "month", 1999},
		{"YearlySendsYearlyAmountExactly", sub(item(IntervalYear, 1, 10000, 1)), "year", 10000},
		{"YearlyTimesQuantity", sub(item(IntervalYear, 1, 12345, 3)), "year", 37035},
		{"WeeklyAsMonth", sub(item(IntervalWeek, 1, 1200, 1)), "month", 5200},
		{"DailyAsMonth", sub(item(IntervalDay, 1, 100, 1)), "month", 3042},
		{"QuarterlyAsMonth", sub(item(IntervalMonth, 3, 3000, 1)), "month", 1000},
		{"BiennialAsMonth", sub(item(IntervalYear, 2, 24000, 1)), "month", 1000},
		{"MeteredOnlyZero", sub(Item{PriceID: "price_x", UsageType: "metered", Interval: IntervalMonth, IntervalCount: 1}), "month", 0},
		{"PercentOffInForce", func() Subscription {
			s := sub(item(IntervalMonth, 1, 1000, 1))
			s.Discounts = []Discount{{PercentOffBP: 2500, Duration: "forever"}}
			return s
		}(), "month", 750},
		{"DiscountNotYetInForce", func() Subscription {
			s := sub(item(IntervalMonth, 1, 1000, 1))
			s.Discounts = []Discount{{PercentOffBP: 2500, Duration: "forever", Start: &later}}
			return s
		}(), "month", 1000},
		{"CanceledKeepsItsValue", func() Subscription {
			s := sub(item(IntervalMonth, 1, 1000, 1))
			s.Status = StatusCanceled
			return s
		}(), "month", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := SyncPlanOf(tt.s, at)
			if p.Interval != tt.wantInterval || p.Value != tt.wantValue || p.PlanID != "price_x" || p.Currency != "usd" {
				t.Errorf("SyncPlanOf = %+v, want interval %s value %d", p, tt.wantInterval, tt.wantValue)
			}
		})
	}
}

func TestSyncPayloadShapes(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		a    SyncAction
		want SyncPayload
	}{
		{"Create", SyncAction{Kind: SyncCreate, Plan: SyncPlan{PlanID: "price_1", Interval: "year", Currency: "usd", Value: 9900, Status: "active"}, EffectiveDate: at},
			SyncPayload{CustomerRef: "c", SubscriptionRef: "s", PlanID: "price_1", PlanInterval: "year", PlanCurrency: "usd", Status: "active", Value: 9900, EffectiveDate: 1700000000}},
		{"Churn", SyncAction{Kind: SyncChurn, EffectiveDate: at, ChurnType: ChurnDelinquent},
			SyncPayload{CustomerRef: "c", SubscriptionRef: "s", EffectiveDate: 1700000000, ChurnType: ChurnDelinquent}},
		{"Unchurn", SyncAction{Kind: SyncUnchurn}, SyncPayload{CustomerRef: "c", SubscriptionRef: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.a.Payload("c", "s"); got != tt.want {
				t.Errorf("Payload = %+v, want %+v", got, tt.want)
			}
		})
	}
}
