package billing

import (
	"testing"
	"time"
)

func TestSubscriptionEntitlement(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	grace := 72 * time.Hour
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	day := 24 * time.Hour
	base := Subscription{ID: "sub_1", Livemode: true, Items: []Item{{PriceID: "price_pro", ProductID: "prod_pro"}},
		CurrentPeriodStart: at(-10 * day), CurrentPeriodEnd: at(20 * day)}
	with := func(f func(*Subscription)) Subscription { s := base; f(&s); return s }

	tests := []struct {
		name      string
		sub       Subscription
		entitled  bool
		until     *time.Time
		recheckAt *time.Time
	}{
		{"ActiveUntilPeriodEnd", with(func(s *Subscription) { s.Status = StatusActive }), true, at(20 * day), nil},
		{"ActivePastPeriodEndStillEntitled", with(func(s *Subscription) { s.Status = StatusActive; s.CurrentPeriodEnd = at(-time.Hour) }), true, at(-time.Hour), nil},
		{"ActiveCancelAtPeriodEnd", with(func(s *Subscription) { s.Status = StatusActive; s.CancelAtPeriodEnd = true }), true, at(20 * day), at(20 * day)},
		{"ActiveCancelAtEarlier", with(func(s *Subscription) { s.Status = StatusActive; s.CancelAt = at(5 * day) }), true, at(5 * day), at(5 * day)},
		{"ActiveScheduledEndPassed", with(func(s *Subscription) { s.Status = StatusActive; s.CancelAt = at(-time.Second) }), false, nil, nil},
		{"TrialingUntilTrialEnd", with(func(s *Subscription) { s.Status = StatusTrialing; s.TrialEnd = at(3 * day) }), true, at(3 * day), nil},
		{"TrialingNoTrialEnd", with(func(s *Subscription) { s.Status = StatusTrialing }), true, at(20 * day), nil},
		{"PastDueWithinGrace", with(func(s *Subscription) { s.Status = StatusPastDue; s.CurrentPeriodStart = at(-time.Hour) }), true, at(grace - time.Hour), at(grace - time.Hour)},
		{"PastDueGraceOver", with(func(s *Subscription) { s.Status = StatusPastDue; s.CurrentPeriodStart = at(-grace) }), false, nil, nil},
		{"PastDueGraceCutByCancel", with(func(s *Subscription) {
			s.Status = StatusPastDue
			s.CurrentPeriodStart = at(-time.Hour)
			s.CancelAt = at(time.Hour)
		}), true, at(time.Hour), at(time.Hour)},
		{"PastDueNoPeriodStart", with(func(s *Subscription) { s.Status = StatusPastDue; s.CurrentPeriodStart = nil }), false, nil, nil},
		{"Canceled", with(func(s *Subscription) { s.Status = StatusCanceled }), false, nil, nil},
		{"Unpaid", with(func(s *Subscription) { s.Status = StatusUnpaid }), false, nil, nil},
		{"Incomplete", with(func(s *Subscription) { s.Status = StatusIncomplete }), false, nil, nil},
		{"IncompleteExpired", with(func(s *Subscription) { s.Status = StatusIncompleteExpired }), false, nil, nil},
		{"Paused", with(func(s *Subscription) { s.Status = StatusPaused }), false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := SubscriptionEntitlement(tt.sub, now, grace)
			if e.Entitled != tt.entitled {
				t.Errorf("entitled = %v, want %v", e.Entitled, tt.entitled)
			}
			if e.Status != tt.sub.Status || e.Plan != "price_pro" || !e.Livemode {
				t.Errorf("status/plan/livemode = %s/%s/%v, want %s/price_pro/true", e.Status, e.Plan, e.Livemode, tt.sub.Status)
			}
			if !sameTime(e.ValidUntil, tt.until) {
				t.Errorf("valid_until = %v, want %v", e.ValidUntil, tt.until)
			}
			var wantRecheck time.Time
			if tt.recheckAt != nil {
				wantRecheck = *tt.recheckAt
			}
			if !e.RecheckAt.Equal(wantRecheck) {
				t.Errorf("recheck_at = %v, want %v", e.RecheckAt, wantRecheck)
			}
		})
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func TestAccountEntitlement(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	grace := 72 * time.Hour
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	day := 24 * time.Hour
	sub := func(id string, st Status, price string, end time.Duration) AccountSubscription {
		return AccountSubscription{Subscription: Subscription{ID: id, Status: st, Livemode: true,
			Items: []Item{{PriceID: price}}, CurrentPeriodStart: at(-time.Hour), CurrentPeriodEnd: at(end)}}
	}
	deleted := func(as AccountSubscription) AccountSubscription { as.CustomerDeleted = true; return as }
	test := func(as AccountSubscription) AccountSubscription { as.Subscription.Livemode = false; return as }
	metered := AccountSubscription{Subscription: Subscription{ID: "sub_m", Status: StatusActive, Livemode: true,
		Items: []Item{{PriceID: "price_usage", UsageType: "metered"}, {ProductID: "prod_seat"}}}}

	tests := []struct {
		name     string
		subs     []AccountSubscription
		livemode bool
		entitled bool
		status   Status
		plan     string
		until    *time.Time
	}{
		{"NoSubscriptions", nil, true, false, StatusNone, "", nil},
		{"ActiveBeatsTrialing", []AccountSubscription{sub("sub_t", StatusTrialing, "price_t", 30*day), sub("sub_a", StatusActive, "price_a", 10*day)}, true, true, StatusActive, "price_a", at(10 * day)},
		{"EntitledBeatsCanceled", []AccountSubscription{sub("sub_c", StatusCanceled, "price_c", 90*day), sub("sub_p", StatusPastDue, "price_p", 10*day)}, true, true, StatusPastDue, "price_p", at(grace - time.Hour)},
		{"LaterEndWinsAmongEqualStatus", []AccountSubscription{sub("sub_1", StatusActive, "price_1", 5*day), sub("sub_2", StatusActive, "price_2", 50*day)}, true, true, StatusActive, "price_2", at(50 * day)},
		{"LowerIDBreaksFullTie", []AccountSubscription{sub("sub_b", StatusActive, "price_b", 5*day), sub("sub_a", StatusActive, "price_a", 5*day)}, true, true, StatusActive, "price_a", at(5 * day)},
		{"NotEntitledReportsMostUseful", []AccountSubscription{sub("sub_c", StatusCanceled, "price_c", day), sub("sub_u", StatusUnpaid, "price_u", day)}, true, false, StatusUnpaid, "price_u", nil},
		{"DeletedCustomerGrantsNothing", []AccountSubscription{deleted(sub("sub_a", StatusActive, "price_a", 10*day))}, true, false, StatusNone, "", nil},
		{"DeletedCustomerLosesToOther", []AccountSubscription{deleted(sub("sub_a", StatusActive, "price_a", 10*day)), sub("sub_c", StatusCanceled, "price_c", day)}, true, false, StatusCanceled, "price_c", nil},
		{"TestModeIgnoredForLive", []AccountSubscription{test(sub("sub_t", StatusActive, "price_t", day))}, true, false, StatusNone, "", nil},
		{"TestModeAsked", []AccountSubscription{test(sub("sub_t", StatusActive, "price_t", day)), sub("sub_l", StatusCanceled, "price_l", day)}, false, true, StatusActive, "price_t", at(day)},
		{"PlanFromLicensedItemOrProduct", []AccountSubscription{metered}, true, true, StatusActive, "prod_seat", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := AccountEntitlement(tt.subs, tt.livemode, now, grace)
			if e.Entitled != tt.entitled || e.Status != tt.status || e.Plan != tt.plan || e.Livemode != tt.livemode {
				t.Errorf("got entitled=%v status=%s plan=%q livemode=%v, want %v %s %q %v",
					e.Entitled, e.Status, e.Plan, e.Livemode, tt.entitled, tt.status, tt.plan, tt.livemode)
			}
			if !sameTime(e.ValidUntil, tt.until) {
				t.Errorf("valid_until = %v, want %v", e.ValidUntil, tt.until)
			}
			// Order independence: the reversed list gives the same answer.
			rev := make([]AccountSubscription, len(tt.subs))
			for i, s := range tt.subs {
				rev[len(rev)-1-i] = s
			}
			r := AccountEntitlement(rev, tt.livemode, now, grace)
			if r.Entitled != e.Entitled || r.Status != e.Status || r.Plan != e.Plan || !sameTime(r.ValidUntil, e.ValidUntil) {
				t.Errorf("answer depends on order: %+v vs %+v", r, e)
			}
		})
	}
}

func TestAccountEntitlementRecheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	start := now.Add(-time.Hour)
	cancel := now.Add(time.Hour)
	subs := []AccountSubscription{
		{Subscription: Subscription{ID: "sub_a", Status: StatusActive, Livemode: true, CancelAt: &cancel}},
		{Subscription: Subscription{ID: "sub_p", Status: StatusPastDue, Livemode: true, CurrentPeriodStart: &start}},
	}
	e := AccountEntitlement(subs, true, now, 24*time.Hour)
	if !e.RecheckAt.Equal(cancel) {
		t.Fatalf("recheck_at = %v, want the earliest clock %v", e.RecheckAt, cancel)
	}
	// At the recheck time the answer indeed changes: the past_due one wins.
	later := AccountEntitlement(subs, true, cancel, 24*time.Hour)
	if later.Status != StatusPastDue || !later.Entitled {
		t.Fatalf("after recheck: %+v, want past_due entitled", later)
	}
}
