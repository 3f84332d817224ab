package billing

import (
	"testing"
	"time"
)

func TestDashboardSession(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	p := SessionPolicy{Lifetime: 12 * time.Hour, Idle: time.Hour}
	id, s, err := NewDashboardSession(7, t0, p)
	if err != nil {
		t.Fatal(err)
	}
	if !ValidSessionID(id) || !s.Hash.Equal(HashSessionID(id)) || s.TokenID != 7 {
		t.Fatalf("id %q (valid %v), session %+v", id, ValidSessionID(id), s)
	}
	if id2, _, _ := NewDashboardSession(7, t0, p); id2 == id {
		t.Fatal("two sessions got the same ID")
	}
	tests := []struct {
		name   string
		at     time.Duration // after t0
		active bool
	}{
		{"Fresh", 0, true},
		{"JustBeforeIdle", time.Hour - time.Second, true},
		{"IdleReached", time.Hour, false},
		{"LongAfter", 13 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Active(t0.Add(tt.at)); got != tt.active {
				t.Errorf("Active at +%s = %v, want %v", tt.at, got, tt.active)
			}
		})
	}
	t.Run("TouchWritesAtMostOnceAMinute", func(t *testing.T) {
		if _, write := p.Touch(s, t0.Add(30*time.Second)); write {
			t.Error("a use 30 s after the last write writes again")
		}
		next, write := p.Touch(s, t0.Add(10*time.Minute))
		if !write || !next.Equal(t0.Add(70*time.Minute)) {
			t.Errorf("touch at +10m: %v %v, want +70m and a write", next, write)
		}
	})
	t.Run("TouchNeverPassesTheLifetimeCap", func(t *testing.T) {
		u := s
		u.IdleExpiresAt = t0.Add(11*time.Hour + 30*time.Minute)
		next, _ := p.Touch(u, t0.Add(11*time.Hour+20*time.Minute))
		if !next.Equal(s.ExpiresAt) {
			t.Errorf("idle expiry %v passes the cap %v", next, s.ExpiresAt)
		}
		u.IdleExpiresAt = s.ExpiresAt
		if _, write := p.Touch(u, t0.Add(11*time.Hour+50*time.Minute)); write {
			t.Error("a session at its cap is written again")
		}
	})
	t.Run("ValidSessionID", func(t *testing.T) {
		for _, bad := range []string{"", "x", id + "A", id[:42] + "!", "v1.abc.def"} {
			if ValidSessionID(bad) {
				t.Errorf("ValidSessionID(%q) = true", bad)
			}
		}
	})
}
