package profitwell

import (
	"strings"
	"testing"
	"time"
)

func TestAlias(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef-key")
	ref := "6f1c1b9e-7d1c-4c55-9f43-2b8a1f0e9a11"
	a := Alias(key, ref)
	tests := []struct {
		name string
		ok   bool
	}{
		{"Length36", len(a) == AliasLen},
		{"Stable", Alias(key, ref) == a},
		{"DependsOnKey", Alias([]byte("another-key-0123456"), ref) != a},
		{"DependsOnRef", Alias(key, "6f1c1b9e-7d1c-4c55-9f43-2b8a1f0e9a12") != a},
		{"NotTheRef", !strings.Contains(a, ref[:8])},
		{"HexOnly", strings.Trim(a, "0123456789abcdef") == ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Errorf("alias %q fails %s", a, tt.name)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{}
	tests := []struct {
		name     string
		n        int
		min, max time.Duration
	}{
		{"FirstRetryWithin2s", 1, time.Second, 2 * time.Second},
		{"Doubles", 2, 2 * time.Second, 4 * time.Second},
		{"Doubles again", 3, 4 * time.Second, 8 * time.Second},
		{"CappedAt5m", 30, 150 * time.Second, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i := 0; i < 200; i++ {
				if d := b.Delay(tt.n); d < tt.min || d > tt.max {
					t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.n, d, tt.min, tt.max)
				}
			}
		})
	}
}

func TestLimiterWindow(t *testing.T) {
	t.Parallel()
	l := NewLimiter(5, 5*time.Second) // one per second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		at   time.Duration
		want time.Duration
	}{
		{"First", 0, 0},
		{"TooSoon", 300 * time.Millisecond, 700 * time.Millisecond},
		{"AfterGap", time.Second, 0},
		{"Later", 3 * time.Second, 0},
		{"TooSoonAgain", 3*time.Second + time.Millisecond, 999 * time.Millisecond},
	}
	for _, s := range steps {
		if got := l.reserve(t0.Add(s.at)); got != s.want {
			t.Fatalf("%s: reserve at +%v = %v, want %v", s.name, s.at, got, s.want)
		}
	}
	t.Run("PauseHoldsEverything", func(t *testing.T) {
		l := NewLimiter(1000, time.Second)
		l.Pause(time.Hour)
		if d := l.reserve(time.Now()); d < 59*time.Minute {
			t.Fatalf("reserve while paused = %v, want about an hour", d)
		}
	})
	t.Run("NeverMoreThanLimitInAnyWindow", func(t *testing.T) {
		l := NewLimiter(DefaultLimit, DefaultWindow)
		var admitted []time.Time
		now := t0
		for len(admitted) < 200 {
			if d := l.reserve(now); d > 0 {
				now = now.Add(d)
				continue
			}
			admitted = append(admitted, now)
			now = now.Add(37 * time.Millisecond)
		}
		for i := range admitted {
			n := 0
			for j := i; j < len(admitted) && admitted[j].Sub(admitted[i]) < DefaultWindow; j++ {
				n++
			}
			if n >= 25 {
				t.Fatalf("%d requests within 5 s from request %d", n, i)
			}
		}
	})
}

func TestSummarizeKeepsNoPersonalData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"Detail", `{"detail":"Not found."}`, "Not found."},
		{"NonField", `{"non_field_errors":["Subscription is already scheduled to churn."]}`, "Subscription is already scheduled to churn."},
		{"FieldErrors", `{"value":["A valid integer is required."]}`, "value: A valid integer is required."},
		{"EmailDropped", `{"email":["jane.doe@example.com is taken"]}`, "email: is taken"},
		{"NotJSONNotKept", `<html>Jane Doe 12 Main St</html>`, ""},
		{"OddCharsStripped", `{"detail":"bad <script>\"x\""}`, "bad scriptx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := summarize([]byte(tt.body)); got != tt.want {
				t.Errorf("summarize = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzSummarize: whatever ProfitWell answers, the stored summary is short,
// holds no '@' and only plain characters.
func FuzzSummarize(f *testing.F) {
	for _, s := range []string{`{"detail":"Not found."}`, `{"non_field_errors":["a@b.c x"]}`, `{"email":["x@y"]}`, `[]`, `{"a":{"b":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s := summarize(body)
		if len(s) > 200 || strings.Contains(s, "@") {
			t.Fatalf("summarize(%q) = %q", body, s)
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" .,:;_'()/-", r)) {
				t.Fatalf("summarize(%q) = %q: unexpected %q", body, s, r)
			}
		}
	})
}
