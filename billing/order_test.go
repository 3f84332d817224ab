package billing

import (
	"testing"
	"time"
)

func TestVersionKeyCompare(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0).UTC()
	tests := []struct {
		name string
		a, b VersionKey
		want int
	}{
		{"LaterSecondWins", VersionKey{t0.Add(time.Second), StatusRank(StatusActive), "evt_a"}, VersionKey{t0, StatusRank(StatusCanceled), "evt_z"}, 1},
		{"EarlierSecondLoses", VersionKey{t0, StatusRank(StatusCanceled), "evt_z"}, VersionKey{t0.Add(time.Second), StatusRank(StatusTrialing), "evt_a"}, -1},
		{"SameSecondCanceledBeatsActive", VersionKey{t0, StatusRank(StatusCanceled), "evt_a"}, VersionKey{t0, StatusRank(StatusActive), "evt_z"}, 1},
		{"SameSecondActiveBeatsTrialing", VersionKey{t0, StatusRank(StatusActive), "evt_a"}, VersionKey{t0, StatusRank(StatusTrialing), "evt_b"}, 1},
		{"SameSecondPastDueBeatsActive", VersionKey{t0, StatusRank(StatusPastDue), "evt_a"}, VersionKey{t0, StatusRank(StatusActive), "evt_b"}, 1},
		{"SameRankEventIDBreaksTie", VersionKey{t0, 3, "evt_b"}, VersionKey{t0, 3, "evt_a"}, 1},
		{"ByteOrderNotLocale", VersionKey{t0, 3, "evt_a"}, VersionKey{t0, 3, "evt_B"}, 1},
		{"APIFetchLosesTieToEvent", VersionKey{t0, 3, ""}, VersionKey{t0, 3, "evt_a"}, -1},
		{"Equal", VersionKey{t0, 3, "evt_a"}, VersionKey{t0, 3, "evt_a"}, 0},
		{"SubSecondFetchAfterEvent", VersionKey{t0.Add(time.Millisecond), 0, ""}, VersionKey{t0, 8, "evt_z"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Compare(tt.b); got != tt.want {
				t.Fatalf("Compare = %d, want %d", got, tt.want)
			}
			if got := tt.b.Compare(tt.a); got != -tt.want {
				t.Fatalf("reverse Compare = %d, want %d", got, -tt.want)
			}
			if tt.a.NewerThan(tt.b) != (tt.want > 0) {
				t.Fatalf("NewerThan disagrees with Compare")
			}
		})
	}
}

// The lifecycle order must rank every documented status, terminal ones
// last, so a same-second tie never resurrects an ended subscription.
func TestStatusRankLifecycle(t *testing.T) {
	t.Parallel()
	order := []Status{StatusIncomplete, StatusTrialing, StatusActive, StatusPastDue, StatusUnpaid,
		StatusPaused, StatusIncompleteExpired, StatusCanceled}
	for i := 1; i < len(order); i++ {
		if StatusRank(order[i-1]) >= StatusRank(order[i]) {
			t.Errorf("%s ranks %d, not below %s (%d)", order[i-1], StatusRank(order[i-1]), order[i], StatusRank(order[i]))
		}
	}
	if StatusRank("bogus") != 0 {
		t.Errorf("unknown status ranks %d, want 0", StatusRank("bogus"))
	}
}

func TestInvoiceFactsNewer(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1700000000, 0).UTC()
	t1 := t0.Add(time.Second)
	tests := []struct {
		name     string
		at       time.Time
		s        InvoiceStatus
		attempts int64
		curAt    *time.Time
		cur      InvoiceStatus
		curAtt   int64
		want     bool
	}{
		{"NoFactsYet", t0, InvoicePaymentFailed, 1, nil, "", 0, true},
		{"Later", t1, InvoicePaymentFailed, 1, &t0, InvoicePaid, 1, true},
		{"Earlier", t0, InvoicePaid, 1, &t1, InvoicePaymentFailed, 1, false},
		{"TiePaidBeatsFailed", t0, InvoicePaid, 1, &t0, InvoicePaymentFailed, 2, true},
		{"TieFailedLosesToPaid", t0, InvoicePaymentFailed, 3, &t0, InvoicePaid, 1, false},
		{"TieMoreAttempts", t0, InvoicePaymentFailed, 2, &t0, InvoicePaymentFailed, 1, true},
		{"SameFactsNotNewer", t0, InvoicePaid, 1, &t0, InvoicePaid, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InvoiceFactsNewer(tt.at, tt.s, tt.attempts, tt.curAt, tt.cur, tt.curAtt); got != tt.want {
				t.Fatalf("InvoiceFactsNewer = %v, want %v", got, tt.want)
			}
		})
	}
}
