package billing

import (
	"reflect"
	"testing"
	"time"
)

// TestResolveEntitlement drives the resolution rules with a table: union
// over entitled subscriptions, the largest limit, per-unit limits, price
// over product, Stripe Entitlements features, overrides and their expiry,
// the trial and grace flags, and the scheduled change of the deciding
// subscription.
func TestResolveEntitlement(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 2, 10, 12, 0, 0, 0, time.UTC)
	grace := 72 * time.Hour
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	n := func(v int64) *int64 { return &v }
	cat, err := ParseCatalog([]byte(`{
	 "features": {"sso": {}, "projects": {}, "seats": {}, "reports": {}, "api": {}},
	 "products": {"prod_Pro": {"sso": true, "projects": 50, "seats": {"per_unit": 1}, "api": 1000},
	              "prod_Addon": {"projects": 20, "reports": true},
	              "prod_Team": {"projects": "unlimited"}},
	 "prices":   {"price_ProYearly": {"projects": 100, "api": false}}}`))
	if err != nil {
		t.Fatal(err)
	}
	sub := func(id string, st Status, items ...Item) AccountSubscription {
		return AccountSubscription{Subscription: Subscription{ID: id, CustomerID: "cus_1", Livemode: true, Status: st, Items: items,
			CurrentPeriodStart: at(-24 * time.Hour), CurrentPeriodEnd: at(20 * 24 * time.Hour)}}
	}
	pro := Item{PriceID: "price_ProMonthly", ProductID: "prod_Pro", Quantity: 10}
	proYearly := Item{PriceID: "price_ProYearly", ProductID: "prod_Pro", Quantity: 3}
	addon := Item{PriceID: "price_Addon", ProductID: "prod_Addon", Quantity: 1}
	team := Item{PriceID: "price_Team", ProductID: "prod_Team", Quantity: 1}

	tests := []struct {
		name     string
		in       ResolveInput
		features map[string]FeatureGrant
		check    func(t *testing.T, e Entitlement)
	}{
		{name: "NoCatalogNoFeatures", in: ResolveInput{Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, pro)}},
			features: map[string]FeatureGrant{}},
		{name: "ProductGrantsAndPerUnit", in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, pro)}},
			features: map[string]FeatureGrant{"sso": {}, "projects": {n(50)}, "seats": {n(10)}, "api": {n(1000)}},
			check: func(t *testing.T, e Entitlement) {
				if e.Quantity != 10 || e.Trial || e.InGrace || e.ScheduledChange != nil {
					t.Errorf("quantity %d trial %v grace %v change %+v", e.Quantity, e.Trial, e.InGrace, e.ScheduledChange)
				}
			}},
		{name: "PriceOverridesProduct", in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, proYearly)}},
			features: map[string]FeatureGrant{"sso": {}, "projects": {n(100)}, "seats": {n(3)}}},
		{name: "UnionBaseAndAddonLargestWins",
			in:       ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, pro), sub("sub_2", StatusActive, addon)}},
			features: map[string]FeatureGrant{"sso": {}, "projects": {n(50)}, "seats": {n(10)}, "api": {n(1000)}, "reports": {}}},
		{name: "UnlimitedBeatsNumbers",
			in:       ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, pro), sub("sub_2", StatusActive, team)}},
			features: map[string]FeatureGrant{"sso": {}, "projects": {}, "seats": {n(10)}, "api": {n(1000)}}},
		{name: "OnlyEntitledSubscriptionsGrant",
			in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusCanceled, pro), sub("sub_2", StatusActive, addon),
				{Subscription: sub("sub_3", StatusActive, team).Subscription, CustomerDeleted: true}}},
			features: map[string]FeatureGrant{"projects": {n(20)}, "reports": {}}},
		{name: "OtherModeIgnored",
			in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{{Subscription: Subscription{ID: "sub_t", Livemode: false,
				Status: StatusActive, Items: []Item{pro}}}}},
			features: map[string]FeatureGrant{}},
		{name: "StripeFeaturesAddedNeverLiftLimits",
			in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, addon)},
				Summaries: []EntitlementSummary{{Livemode: true, Features: []string{"projects", "beta"}, Complete: true},
					{Livemode: false, Features: []string{"test_only"}, Complete: false}}},
			features: map[string]FeatureGrant{"projects": {n(20)}, "reports": {}, "beta": {}},
			check: func(t *testing.T, e Entitlement) {
				if e.FeaturesIncomplete {
					t.Error("the other mode's incomplete summary marks this answer incomplete")
				}
			}},
		{name: "IncompleteSummarySaysSo",
			in:       ResolveInput{Summaries: []EntitlementSummary{{Livemode: true, Features: []string{"sso"}}}},
			features: map[string]FeatureGrant{"sso": {}},
			check: func(t *testing.T, e Entitlement) {
				if !e.FeaturesIncomplete || e.Entitled {
					t.Errorf("incomplete %v entitled %v", e.FeaturesIncomplete, e.Entitled)
				}
			}},
		{name: "OverrideWinsLast",
			in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, pro)},
				Override: &Override{Features: map[string]Grant{"projects": {Kind: GrantLimit, N: 200}, "beta_reports": {Kind: GrantOn},
					"api": {Kind: GrantOff}, "seats": {Kind: GrantLimit, N: 2}}, ExpiresAt: at(time.Hour)}},
			features: map[string]FeatureGrant{"sso": {}, "projects": {n(200)}, "seats": {n(2)}, "beta_reports": {}},
			check: func(t *testing.T, e Entitlement) {
				if !e.RecheckAt.Equal(now.Add(time.Hour)) {
					t.Errorf("recheck %v, want the override's expiry", e.RecheckAt)
				}
			}},
		{name: "ExpiredOverrideIgnored",
			in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, addon)},
				Override: &Override{Features: map[string]Grant{"projects": {Kind: GrantLimit, N: 200}}, ExpiresAt: at(-time.Second)}},
			features: map[string]FeatureGrant{"projects": {n(20)}, "reports": {}}},
		{name: "OverrideWithoutSubscription",
			in:       ResolveInput{Catalog: &cat, Override: &Override{Features: map[string]Grant{"sso": {Kind: GrantUnlimited}}}},
			features: map[string]FeatureGrant{"sso": {}}},
		{name: "TrialFlag", in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusTrialing, addon)}},
			features: map[string]FeatureGrant{"projects": {n(20)}, "reports": {}},
			check: func(t *testing.T, e Entitlement) {
				if !e.Trial || e.InGrace {
					t.Errorf("trial %v grace %v", e.Trial, e.InGrace)
				}
			}},
		{name: "GraceFlag", in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusPastDue, addon)}},
			features: map[string]FeatureGrant{"projects": {n(20)}, "reports": {}},
			check: func(t *testing.T, e Entitlement) {
				if !e.InGrace || e.Trial || !e.Entitled {
					t.Errorf("grace %v trial %v entitled %v", e.InGrace, e.Trial, e.Entitled)
				}
			}},
		{name: "PastGraceGrantsNothing", in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{func() AccountSubscription {
			s := sub("sub_1", StatusPastDue, addon)
			s.Subscription.CurrentPeriodStart = at(-100 * time.Hour)
			return s
		}()}},
			features: map[string]FeatureGrant{},
			check: func(t *testing.T, e Entitlement) {
				if e.InGrace || e.Entitled {
					t.Errorf("grace %v entitled %v", e.InGrace, e.Entitled)
				}
			}},
		{name: "ScheduledDowngrade", in: ResolveInput{Catalog: &cat, Subscriptions: []AccountSubscription{sub("sub_1", StatusActive, pro)},
			Schedules: []Schedule{{ID: "sub_sched_1", SubscriptionID: "sub_1", Livemode: true, Status: ScheduleActive, EndBehavior: "release",
				Phases: []SchedulePhase{{Start: at(-24 * time.Hour), End: at(48 * time.Hour), Items: []PhaseItem{{"price_ProMonthly", 10}}},
					{Start: at(48 * time.Hour), Items: []PhaseItem{{"price_Basic", 5}}}}}}},
			features: map[string]FeatureGrant{"sso": {}, "projects": {n(50)}, "seats": {n(10)}, "api": {n(1000)}},
			check: func(t *testing.T, e Entitlement) {
				want := &ScheduledChange{At: at(48 * time.Hour), Plan: "price_Basic", Quantity: n(5)}
				if !reflect.DeepEqual(e.ScheduledChange, want) || !e.RecheckAt.Equal(now.Add(48*time.Hour)) {
					t.Errorf("change %+v recheck %v, want %+v", e.ScheduledChange, e.RecheckAt, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ResolveEntitlement(tt.in, true, now, grace)
			if !reflect.DeepEqual(e.Features, tt.features) {
				t.Errorf("features %s, want %s", show(e.Features), show(tt.features))
			}
			if tt.check != nil {
				tt.check(t, e)
			}
			// The verdict is AccountEntitlement's, unchanged.
			base := AccountEntitlement(tt.in.Subscriptions, true, now, grace)
			if e.Entitled != base.Entitled || e.Status != base.Status || e.Plan != base.Plan {
				t.Errorf("verdict %v/%s/%s differs from AccountEntitlement's %v/%s/%s", e.Entitled, e.Status, e.Plan, base.Entitled, base.Status, base.Plan)
			}
		})
	}
}

func show(fs map[string]FeatureGrant) map[string]any {
	out := map[string]any{}
	for k, f := range fs {
		if f.Limit == nil {
			out[k] = "on"
		} else {
			out[k] = *f.Limit
		}
	}
	return out
}

// TestNextChange: which change of a subscription is next, by source and
// time.
func TestNextChange(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 2, 10, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	n := func(v int64) *int64 { return &v }
	base := Subscription{ID: "sub_1", Livemode: true, Status: StatusActive, CurrentPeriodEnd: at(10 * 24 * time.Hour)}
	schedule := func(st ScheduleStatus, end string, phases ...SchedulePhase) Schedule {
		return Schedule{ID: "sub_sched_1", SubscriptionID: "sub_1", Livemode: true, Status: st, EndBehavior: end, Phases: phases}
	}
	current := SchedulePhase{Start: at(-time.Hour), End: at(5 * 24 * time.Hour), Items: []PhaseItem{{"price_Pro", 10}}}
	next := SchedulePhase{Start: at(5 * 24 * time.Hour), End: at(30 * 24 * time.Hour), Items: []PhaseItem{{"price_Basic", 5}, {"price_Addon", 1}}}
	tests := []struct {
		name      string
		sub       func(s *Subscription)
		schedules []Schedule
		want      *ScheduledChange
	}{
		{name: "Nothing", want: nil},
		{name: "CancelAtPeriodEnd", sub: func(s *Subscription) { s.CancelAtPeriodEnd = true },
			want: &ScheduledChange{At: at(10 * 24 * time.Hour), Cancel: true}},
		{name: "CancelAt", sub: func(s *Subscription) { s.CancelAt = at(3 * time.Hour) }, want: &ScheduledChange{At: at(3 * time.Hour), Cancel: true}},
		{name: "NextPhase", schedules: []Schedule{schedule(ScheduleActive, "release", current, next)},
			want: &ScheduledChange{At: at(5 * 24 * time.Hour), Plan: "price_Basic", Quantity: n(5)}},
		{name: "EarlierCancelWins", sub: func(s *Subscription) { s.CancelAt = at(time.Hour) },
			schedules: []Schedule{schedule(ScheduleActive, "release", current, next)}, want: &ScheduledChange{At: at(time.Hour), Cancel: true}},
		{name: "ScheduleEndsInCancel", schedules: []Schedule{schedule(ScheduleActive, "cancel", current)},
			want: &ScheduledChange{At: at(5 * 24 * time.Hour), Cancel: true}},
		{name: "ReleasedScheduleIgnored", schedules: []Schedule{schedule(ScheduleReleased, "release", current, next)}, want: nil},
		{name: "OtherSubscriptionsScheduleIgnored", schedules: []Schedule{func() Schedule {
			s := schedule(ScheduleActive, "release", current, next)
			s.SubscriptionID = "sub_2"
			return s
		}()}, want: nil},
		{name: "PendingUpdateFirst", sub: func(s *Subscription) {
			s.CancelAt = at(time.Hour)
			s.PendingUpdate = &PendingUpdate{ExpiresAt: at(23 * time.Hour), Items: []PhaseItem{{"price_Max", 20}}}
		}, want: &ScheduledChange{Plan: "price_Max", Quantity: n(20)}},
		{name: "ExpiredPendingUpdateIgnored", sub: func(s *Subscription) {
			s.PendingUpdate = &PendingUpdate{ExpiresAt: at(-time.Minute), Items: []PhaseItem{{"price_Max", 20}}}
		}, want: nil},
		{name: "EndedSubscriptionHasNone", sub: func(s *Subscription) { s.Status = StatusCanceled; s.CancelAtPeriodEnd = true },
			schedules: []Schedule{schedule(ScheduleActive, "release", current, next)}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.sub != nil {
				tt.sub(&s)
			}
			if got := NextChange(s, tt.schedules, now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestScheduleVersionOrder: versions of a schedule within one second are
// ordered along its life, so a tie never revives a released or canceled
// schedule.
func TestScheduleVersionOrder(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_800_000_000, 0)
	active := ScheduleVersionKey(Schedule{Status: ScheduleActive}, at, "evt_b")
	for _, st := range []ScheduleStatus{ScheduleReleased, ScheduleCompleted, ScheduleCanceled} {
		if !ScheduleVersionKey(Schedule{Status: st}, at, "evt_a").NewerThan(active) {
			t.Errorf("%s does not outrank active in the same second", st)
		}
	}
	if ScheduleVersionKey(Schedule{Status: ScheduleCanceled}, at.Add(-time.Second), "evt_z").NewerThan(active) {
		t.Error("an older second outranks a newer one")
	}
}
