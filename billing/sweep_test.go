package billing

import (
	"testing"
	"time"
)

func TestSweepStart(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	recent, old := now.Add(-2*time.Hour), now.Add(-31*24*time.Hour)
	tests := []struct {
		name     string
		c        *SweepCursor
		fallback *time.Time
		since    time.Duration
		after    string
		from     time.Time
		gap      bool
	}{
		{"FirstSweepLooksBack", nil, nil, 0, "", now.Add(-72 * time.Hour), false},
		{"FromCursor", &SweepCursor{EventID: "evt_1", EventCreated: &recent}, nil, 0, "evt_1", time.Time{}, false},
		{"SinceOverridesCursor", &SweepCursor{EventID: "evt_1", EventCreated: &recent}, nil, 240 * time.Hour, "", now.Add(-240 * time.Hour), false},
		{"SinceCappedAtRetention", nil, nil, 1000 * time.Hour, "", now.Add(-EventRetention + time.Hour), false},
		{"ExpiredCursorIsAGap", &SweepCursor{EventID: "evt_1", EventCreated: &old}, nil, 0, "", now.Add(-EventRetention + time.Hour), true},
		{"NewGroupFromOthersPosition", nil, &recent, 0, "", recent, false},
		{"NewGroupFallbackExpired", nil, &old, 0, "", now.Add(-EventRetention + time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after, from, gap := SweepStart(tt.c, tt.fallback, tt.since, 72*time.Hour, time.Hour, now)
			if after != tt.after || !from.Equal(tt.from) || gap != tt.gap {
				t.Fatalf("SweepStart = %q, %v, %t; want %q, %v, %t", after, from, gap, tt.after, tt.from, tt.gap)
			}
		})
	}
}
