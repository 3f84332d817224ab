package billing

import (
	"testing"
	"time"
)

// A subscription whose customer is on a test clock is judged at the
// clock's time, and its answer has no wall-clock recheck (the clock moves
// only by events, which invalidate it); others at now.
func TestAccountEntitlementOnTestClock(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clock := now.AddDate(-1, 0, 0)
	periodStart := clock.Add(-24 * time.Hour)
	pastDue := Subscription{ID: "sub_1", Status: StatusPastDue, CurrentPeriodStart: &periodStart}
	end := clock.Add(time.Hour)
	cancelling := Subscription{ID: "sub_2", Status: StatusActive, CancelAt: &end}
	tests := []struct {
		name      string
		as        AccountSubscription
		entitled  bool
		recheckAt bool
	}{
		{"PastDueInGraceAtClockTime", AccountSubscription{Subscription: pastDue, ClockTime: &clock}, true, false},
		{"PastDueAtWallClock", AccountSubscription{Subscription: pastDue}, false, false},
		{"ScheduledEndAheadOfClock", AccountSubscription{Subscription: cancelling, ClockTime: &clock}, true, false},
		{"ScheduledEndPassedAtWallClock", AccountSubscription{Subscription: cancelling}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := AccountEntitlement([]AccountSubscription{tt.as}, false, now, 72*time.Hour)
			if e.Entitled != tt.entitled || !e.RecheckAt.IsZero() != tt.recheckAt {
				t.Fatalf("entitled %t recheck %v; want %t, recheck %t", e.Entitled, e.RecheckAt, tt.entitled, tt.recheckAt)
			}
		})
	}
}
