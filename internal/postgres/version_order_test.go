package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// orderVersion is one version of a subscription as delivered: when, in
// which status (its lifecycle rank), by which event ("" for an API fetch).
type orderVersion struct {
	at     time.Time
	status billing.Status
	event  string
}

// versionOrderCases is the one table of the version-order rule
// (billing/order.go): want is the sign of a against b. Both the Go rule and
// the guard in the event path's subscription statement are held to it.
func versionOrderCases() []struct {
	name string
	a, b orderVersion
	want int
} {
	t0 := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	plus5 := time.FixedZone("UTC+5", 5*3600)
	return []struct {
		name string
		a, b orderVersion
		want int
	}{
		{"LaterSecondWins", orderVersion{t0.Add(time.Second), billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusCanceled, "evt_z"}, 1},
		{"SameSecondCanceledBeatsActive", orderVersion{t0, billing.StatusCanceled, "evt_a"}, orderVersion{t0, billing.StatusActive, "evt_z"}, 1},
		{"SameSecondPastDueBeatsActive", orderVersion{t0, billing.StatusPastDue, "evt_a"}, orderVersion{t0, billing.StatusActive, "evt_b"}, 1},
		{"SameSecondActiveBeatsTrialing", orderVersion{t0, billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusTrialing, "evt_b"}, 1},
		{"SameSecondExpiredBeatsPaused", orderVersion{t0, billing.StatusIncompleteExpired, "evt_a"}, orderVersion{t0, billing.StatusPaused, "evt_b"}, 1},
		{"SameRankEventIDDecides", orderVersion{t0, billing.StatusActive, "evt_b"}, orderVersion{t0, billing.StatusActive, "evt_a"}, 1},
		{"EventIDCaseByteOrder", orderVersion{t0, billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusActive, "evt_B"}, 1},
		{"EventIDUnderscoreByteOrder", orderVersion{t0, billing.StatusActive, "evt_A_1"}, orderVersion{t0, billing.StatusActive, "evt_AB1"}, 1},
		{"EventIDDigitsBeforeLetters", orderVersion{t0, billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusActive, "evt_9"}, 1},
		{"EventIDNonASCIIAfterASCII", orderVersion{t0, billing.StatusActive, "evt_é"}, orderVersion{t0, billing.StatusActive, "evt_f"}, 1},
		{"EventIDNonASCIIByteOrder", orderVersion{t0, billing.StatusActive, "evt_Ω"}, orderVersion{t0, billing.StatusActive, "evt_é"}, 1},
		{"EventIDLongerAfterItsPrefix", orderVersion{t0, billing.StatusActive, "evt_ab"}, orderVersion{t0, billing.StatusActive, "evt_a"}, 1},
		{"APIFetchLosesTieToEvent", orderVersion{t0, billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusActive, ""}, 1},
		{"SameKey", orderVersion{t0, billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusActive, "evt_a"}, 0},
		{"SubMicrosecondIsTheSameInstant", orderVersion{t0.Add(1900 * time.Nanosecond), billing.StatusActive, ""}, orderVersion{t0.Add(1500 * time.Nanosecond), billing.StatusActive, ""}, 0},
		{"MicrosecondsTruncateNotRound", orderVersion{t0.Add(1001 * time.Nanosecond), billing.StatusActive, ""}, orderVersion{t0.Add(999 * time.Nanosecond), billing.StatusActive, ""}, 1},
		{"OneMicrosecondLater", orderVersion{t0.Add(time.Microsecond), billing.StatusIncomplete, ""}, orderVersion{t0, billing.StatusCanceled, "evt_z"}, 1},
		{"SubSecondFetchAfterEvent", orderVersion{t0.Add(time.Millisecond), billing.StatusActive, ""}, orderVersion{t0, billing.StatusCanceled, "evt_z"}, 1},
		{"SameInstantOtherZone", orderVersion{t0.In(plus5), billing.StatusActive, "evt_a"}, orderVersion{t0, billing.StatusActive, "evt_a"}, 0},
		{"FarFutureAfterEpoch", orderVersion{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), billing.StatusIncomplete, ""}, orderVersion{time.Unix(1, 0), billing.StatusCanceled, "evt_z"}, 1},
	}
}

// TestVersionOrderSQLMatchesGo holds both places of the version-order rule
// to one table of cases: billing.VersionKey, which decides each event's
// outcome (applied or stale) and the ProfitWell sync, and the guard of the
// event path's subscription statement (qWriteSubscriptions), which decides
// what current state becomes. The guard stays in SQL for speed: deciding
// in Go would cost a read of current state before every write. The event
// path also checks at run time that the two agreed on every batch; this
// test finds a disagreement before a batch does. version_event is given a
// linguistic (ICU) collation here, so the guard has to order event IDs by
// their bytes, as Go does, whatever collation a server defaults to.
func TestVersionOrderSQLMatchesGo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if _, err := st.DB().ExecContext(ctx, `ALTER TABLE subscriptions ALTER COLUMN version_event TYPE text COLLATE "und-x-icu"`); err != nil {
		t.Fatalf("a linguistic collation for version_event (PostgreSQL built with ICU): %v", err)
	}
	var customerRef string
	if err := st.DB().GetContext(ctx, &customerRef, `INSERT INTO customers (stripe_customer_id, livemode) VALUES ('cus_Order1', true) RETURNING customer_ref::text`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range versionOrderCases() {
		t.Run(tt.name, func(t *testing.T) {
			sub := func(v orderVersion) billing.Subscription {
				s := *subscriptionOf("cus_Order1", "sub_Order1", true, v.status, 1000, month(2026, time.January))
				s.AccountHint = "" // never stored
				return s
			}
			sa, sb := sub(tt.a), sub(tt.b)
			ka := postgres.VersionKeyForTest(sa, tt.a.at, tt.a.event)
			kb := postgres.VersionKeyForTest(sb, tt.b.at, tt.b.event)
			if got := ka.Compare(kb); got != tt.want {
				t.Fatalf("Go: a.Compare(b) = %d, want %d", got, tt.want)
			}
			if got := kb.Compare(ka); got != -tt.want {
				t.Fatalf("Go: b.Compare(a) = %d, want %d", got, -tt.want)
			}
			// SQL, both delivery orders: the second version replaces the
			// first exactly when Go says it is newer, and current state
			// ends at the newer key.
			for _, order := range []struct {
				name          string
				first, second billing.Subscription
				k1, k2        billing.VersionKey
				replaces      bool
			}{
				{"BThenA", sb, sa, kb, ka, tt.want > 0},
				{"AThenB", sa, sb, ka, kb, tt.want < 0},
			} {
				tx, err := st.DB().BeginTxx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				changed, prev, _, err := postgres.WriteVersionForTest(ctx, tx, order.first, order.k1, customerRef)
				if err != nil || !changed || prev != nil {
					tx.Rollback()
					t.Fatalf("%s: first version: changed %v prev %v err %v", order.name, changed, prev, err)
				}
				changed, _, prevKey, err := postgres.WriteVersionForTest(ctx, tx, order.second, order.k2, customerRef)
				if err != nil {
					tx.Rollback()
					t.Fatalf("%s: second version: %v", order.name, err)
				}
				var cur struct {
					At    time.Time `db:"version_at"`
					Rank  int       `db:"version_rank"`
					Event string    `db:"version_event"`
				}
				err = tx.GetContext(ctx, &cur, `SELECT version_at, version_rank, version_event FROM subscriptions WHERE stripe_subscription_id = 'sub_Order1'`)
				tx.Rollback()
				if err != nil {
					t.Fatal(err)
				}
				if changed != order.replaces {
					t.Errorf("%s: SQL replaced current state: %v; Go says the second version is newer: %v", order.name, changed, order.replaces)
				}
				if prevKey == nil || prevKey.Compare(order.k1) != 0 {
					t.Errorf("%s: SQL read the previous key as %+v, want %+v", order.name, prevKey, order.k1)
				}
				want := order.k1
				if order.k2.NewerThan(order.k1) {
					want = order.k2
				}
				if got := (billing.VersionKey{At: cur.At, Rank: cur.Rank, Event: cur.Event}); got.Compare(want) != 0 {
					t.Errorf("%s: current state at %+v, want %+v", order.name, got, want)
				}
			}
		})
	}
}
