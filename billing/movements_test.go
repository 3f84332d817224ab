package billing

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// ver builds one version of subscription ref at time at.
func ver(ref, at string, rank int, s Subscription) SubscriptionVersion {
	if s.Currency == "" {
		s.Currency = "usd"
	}
	return SubscriptionVersion{SubscriptionRef: ref, At: *tp(at), Rank: rank, Event: "evt_" + ref + at, State: s}
}

func act(items ...Item) Subscription {
	return Subscription{Status: StatusActive, Livemode: true, Items: items}
}

func st(status Status, items ...Item) Subscription {
	return Subscription{Status: status, Livemode: true, Items: items}
}

// deriveMovements is the movements of DeriveLedger: what most tests here
// check.
func deriveMovements(versions []SubscriptionVersion) []Movement {
	return DeriveLedger(versions).Movements
}

// mv is a compact expected movement.
type mv struct {
	At     string
	Kind   MovementKind
	Delta  int64
	After  int64
	SubRef string
}

func compact(ms []Movement) []mv {
	out := []mv{}
	for _, m := range ms {
		if m.Before+m.Delta != m.After {
			panic(fmt.Sprintf("inconsistent movement %+v", m))
		}
		out = append(out, mv{m.At.UTC().Format(time.RFC3339), m.Kind, m.Delta, m.After, m.SubscriptionRef})
	}
	return out
}

func TestDeriveMovements(t *testing.T) {
	t.Parallel()
	cancelling := func(s Subscription, periodEnd string) Subscription {
		s.CancelAtPeriodEnd = true
		s.CurrentPeriodEnd = tp(periodEnd)
		return s
	}
	discounted := func(s Subscription, d Discount) Subscription { s.Discounts = []Discount{d}; return s }
	testmode := func(s Subscription) Subscription { s.Livemode = false; return s }
	inCurrency := func(s Subscription, c string) Subscription { s.Currency = c; return s }
	tests := []struct {
		name     string
		versions []SubscriptionVersion
		want     []mv
	}{
		{"Empty", nil, []mv{}},
		{"NewThenUpgradeThenCancelAtPeriodEnd", []SubscriptionVersion{
			ver("a", "2026-01-03T10:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-02-10T10:00:00Z", 0, act(monthly(2000, 2))),
			// Scheduled on Mar 20: nothing moves until the period ends.
			ver("a", "2026-03-20T10:00:00Z", 0, cancelling(act(monthly(2000, 2)), "2026-04-03T10:00:00Z")),
			ver("a", "2026-04-03T10:00:00Z", 1, st(StatusCanceled, monthly(2000, 2))),
		}, []mv{
			{"2026-01-03T10:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-10T10:00:00Z", MovementExpansion, 2000, 4000, "a"},
			{"2026-04-03T10:00:00Z", MovementChurn, -4000, 0, "a"},
		}},
		{"CancelAtPeriodEndWithoutDeletedEvent", []SubscriptionVersion{
			ver("a", "2026-01-03T10:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-01-20T10:00:00Z", 0, cancelling(act(monthly(2000, 1)), "2026-02-03T10:00:00Z")),
		}, []mv{
			{"2026-01-03T10:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-03T10:00:00Z", MovementChurn, -2000, 0, "a"},
		}},
		{"CancelScheduledThenUndone", []SubscriptionVersion{
			ver("a", "2026-01-03T10:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-01-20T10:00:00Z", 0, cancelling(act(monthly(2000, 1)), "2026-02-03T10:00:00Z")),
			ver("a", "2026-01-25T10:00:00Z", 0, act(monthly(2000, 1))),
		}, []mv{
			{"2026-01-03T10:00:00Z", MovementNew, 2000, 2000, "a"},
		}},
		{"Downgrade", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(5000, 1))),
			ver("a", "2026-02-01T00:00:00Z", 0, act(monthly(3000, 1))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 5000, 5000, "a"},
			{"2026-02-01T00:00:00Z", MovementContraction, -2000, 3000, "a"},
		}},
		{"TrialThenPaid", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, st(StatusTrialing, monthly(2000, 1))),
			ver("a", "2026-01-15T00:00:00Z", 0, act(monthly(2000, 1))),
		}, []mv{
			{"2026-01-15T00:00:00Z", MovementNew, 2000, 2000, "a"},
		}},
		{"TrialNeverPaid", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, st(StatusTrialing, monthly(2000, 1))),
			ver("a", "2026-01-15T00:00:00Z", 0, st(StatusPaused, monthly(2000, 1))),
			ver("a", "2026-02-15T00:00:00Z", 0, st(StatusCanceled, monthly(2000, 1))),
		}, []mv{}},
		{"PauseAndResumeIsChurnAndReactivation", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-02-01T00:00:00Z", 0, st(StatusPaused, monthly(2000, 1))),
			ver("a", "2026-03-01T00:00:00Z", 0, act(monthly(2000, 1))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-01T00:00:00Z", MovementChurn, -2000, 0, "a"},
			{"2026-03-01T00:00:00Z", MovementReactivation, 2000, 2000, "a"},
		}},
		{"PastDueKeepsMRRUnpaidChurns", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-02-01T00:00:00Z", 0, st(StatusPastDue, monthly(2000, 1))),
			ver("a", "2026-02-20T00:00:00Z", 0, st(StatusUnpaid, monthly(2000, 1))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-20T00:00:00Z", MovementChurn, -2000, 0, "a"},
		}},
		{"ReactivationWithNewSubscriptionMuchLater", []SubscriptionVersion{
			ver("a", "2024-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2024-06-01T00:00:00Z", 0, st(StatusCanceled, monthly(2000, 1))),
			ver("b", "2026-03-01T00:00:00Z", 0, act(monthly(3000, 1))),
		}, []mv{
			{"2024-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2024-06-01T00:00:00Z", MovementChurn, -2000, 0, "a"},
			{"2026-03-01T00:00:00Z", MovementReactivation, 3000, 3000, "b"},
		}},
		{"SecondSubscriptionIsExpansionCancellingOneIsContraction", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("b", "2026-02-01T00:00:00Z", 0, act(monthly(1000, 1))),
			ver("a", "2026-03-01T00:00:00Z", 0, st(StatusCanceled, monthly(2000, 1))),
			ver("b", "2026-04-01T00:00:00Z", 0, st(StatusCanceled, monthly(1000, 1))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-01T00:00:00Z", MovementExpansion, 1000, 3000, "b"},
			{"2026-03-01T00:00:00Z", MovementContraction, -2000, 1000, "a"},
			{"2026-04-01T00:00:00Z", MovementChurn, -1000, 0, "b"},
		}},
		{"SwapAtSameInstantIsOneNetMovement", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-02-01T00:00:00Z", 0, st(StatusCanceled, monthly(2000, 1))),
			ver("b", "2026-02-01T00:00:00Z", 0, act(monthly(3000, 1))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-01T00:00:00Z", MovementExpansion, 1000, 3000, ""},
		}},
		{"CouponEndIsExpansion", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, discounted(act(monthly(2000, 1)),
				Discount{PercentOffBP: 5000, Duration: "repeating", Start: tp("2026-01-01T00:00:00Z"), End: tp("2026-03-01T00:00:00Z")})),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 1000, 1000, "a"},
			{"2026-03-01T00:00:00Z", MovementExpansion, 1000, 2000, "a"},
		}},
		{"AmountOffCouponAddedIsContraction", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("a", "2026-02-01T00:00:00Z", 0, discounted(act(monthly(2000, 1)), Discount{AmountOff: 500, Currency: "usd", Duration: "forever"})),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
			{"2026-02-01T00:00:00Z", MovementContraction, -500, 1500, "a"},
		}},
		{"MeteredOnlyHasNoMRR", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act(Item{UsageType: "metered", UnitAmount: 10, Interval: IntervalMonth, IntervalCount: 1})),
		}, []mv{}},
		{"WeeklyDailyYearly", []SubscriptionVersion{
			ver("w", "2026-01-01T00:00:00Z", 0, act(Item{Quantity: 1, UnitAmount: 1200, Interval: IntervalWeek, IntervalCount: 1})),
			ver("d", "2026-01-02T00:00:00Z", 0, act(Item{Quantity: 1, UnitAmount: 100, Interval: IntervalDay, IntervalCount: 1})),
			ver("y", "2026-01-03T00:00:00Z", 0, act(Item{Quantity: 1, UnitAmount: 12000, Interval: IntervalYear, IntervalCount: 2})),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 5200, 5200, "w"},
			{"2026-01-02T00:00:00Z", MovementExpansion, 3042, 8242, "d"},
			{"2026-01-03T00:00:00Z", MovementExpansion, 500, 8742, "y"},
		}},
		{"TestModeSeparateFromLive", []SubscriptionVersion{
			ver("t", "2026-01-01T00:00:00Z", 0, testmode(act(monthly(2000, 1)))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "t"},
		}},
		{"CurrenciesSeparate", []SubscriptionVersion{
			ver("u", "2026-01-01T00:00:00Z", 0, act(monthly(2000, 1))),
			ver("j", "2026-01-02T00:00:00Z", 0, inCurrency(act(Item{Quantity: 1, UnitAmount: 3000, Interval: IntervalMonth, IntervalCount: 1}), "jpy")),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "u"},
			{"2026-01-02T00:00:00Z", MovementNew, 3000, 3000, "j"},
		}},
		{"SameSecondRankDecides", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, st(StatusIncomplete, monthly(2000, 1))),
			ver("a", "2026-01-01T00:00:00Z", 2, act(monthly(2000, 1))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 2000, 2000, "a"},
		}},
		{"LateVersionIsPlacedByTime", []SubscriptionVersion{
			// Listed in arrival order: the Feb upgrade arrived after the Mar one.
			ver("a", "2026-01-01T00:00:00Z", 0, act(monthly(1000, 1))),
			ver("a", "2026-03-01T00:00:00Z", 0, act(monthly(1000, 3))),
			ver("a", "2026-02-01T00:00:00Z", 0, act(monthly(1000, 2))),
		}, []mv{
			{"2026-01-01T00:00:00Z", MovementNew, 1000, 1000, "a"},
			{"2026-02-01T00:00:00Z", MovementExpansion, 1000, 2000, "a"},
			{"2026-03-01T00:00:00Z", MovementExpansion, 1000, 3000, "a"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := compact(deriveMovements(tc.versions))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("movements:\n got %+v\nwant %+v", got, tc.want)
			}
			for _, m := range deriveMovements(tc.versions) {
				if m.Livemode != (tc.name != "TestModeSeparateFromLive") {
					t.Fatalf("movement %+v has the wrong mode", m)
				}
			}
		})
	}
}

func TestDeriveMovementsOrderIndependent(t *testing.T) {
	t.Parallel()
	// One busy customer: upgrades, a coupon, a second subscription, same
	// second versions, a scheduled cancel and a reactivation.
	coupon := act(monthly(1500, 2))
	coupon.Discounts = []Discount{{PercentOffBP: 2000, Duration: "repeating", End: tp("2026-05-01T00:00:00Z")}}
	cancel := act(monthly(1500, 3))
	cancel.CancelAtPeriodEnd = true
	cancel.CurrentPeriodEnd = tp("2026-07-01T00:00:00Z")
	versions := []SubscriptionVersion{
		ver("a", "2026-01-01T00:00:00Z", 0, st(StatusTrialing, monthly(1500, 1))),
		ver("a", "2026-01-15T00:00:00Z", 0, act(monthly(1500, 1))),
		ver("a", "2026-02-01T00:00:00Z", 0, coupon),
		ver("b", "2026-02-01T00:00:00Z", 1, act(Item{Quantity: 1, UnitAmount: 9900, Interval: IntervalYear, IntervalCount: 1})),
		ver("b", "2026-02-01T00:00:00Z", 2, st(StatusPastDue, Item{Quantity: 1, UnitAmount: 9900, Interval: IntervalYear, IntervalCount: 1})),
		ver("a", "2026-06-01T00:00:00Z", 0, cancel),
		ver("b", "2026-06-10T00:00:00Z", 0, st(StatusCanceled)),
		ver("c", "2026-09-01T00:00:00Z", 0, act(monthly(700, 1))),
	}
	want := deriveMovements(versions)
	if len(want) < 6 {
		t.Fatalf("expected a rich ledger, got %d movements: %+v", len(want), compact(want))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		t.Run(fmt.Sprintf("Shuffle%d", i), func(t *testing.T) {
			vs := append([]SubscriptionVersion(nil), versions...)
			rng.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
			if got := deriveMovements(vs); !reflect.DeepEqual(got, want) {
				t.Fatalf("shuffled ledger differs:\n got %+v\nwant %+v", compact(got), compact(want))
			}
		})
	}
	// Prefixes: a customer's ledger before a time depends only on versions
	// up to that time (so recomputing from a late version's time is enough).
	t.Run("Causal", func(t *testing.T) {
		cut := *tp("2026-06-05T00:00:00Z")
		var early []SubscriptionVersion
		for _, v := range versions {
			if v.At.Before(cut) {
				early = append(early, v)
			}
		}
		var wantEarly []Movement
		for _, m := range want {
			if m.At.Before(cut) {
				wantEarly = append(wantEarly, m)
			}
		}
		var gotEarly []Movement
		for _, m := range deriveMovements(early) {
			if m.At.Before(cut) {
				gotEarly = append(gotEarly, m)
			}
		}
		if !reflect.DeepEqual(gotEarly, wantEarly) {
			t.Fatalf("prefix ledger differs:\n got %+v\nwant %+v", compact(gotEarly), compact(wantEarly))
		}
	})
}

func TestDeriveLedgerActivity(t *testing.T) {
	t.Parallel()
	type act struct {
		Ref   string
		At    string
		Delta int
	}
	tests := []struct {
		name     string
		versions []SubscriptionVersion
		want     []act
	}{
		{"StartUpgradeCancel", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act0(2000, 1)),
			ver("a", "2026-02-01T00:00:00Z", 0, act0(2000, 2)),
			ver("a", "2026-03-01T00:00:00Z", 0, st(StatusCanceled, monthly(2000, 2))),
		}, []act{{"a", "2026-01-01T00:00:00Z", 1}, {"a", "2026-03-01T00:00:00Z", -1}}},
		{"SwapKeepsCountButMovesIt", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, act0(2000, 1)),
			ver("a", "2026-02-01T00:00:00Z", 0, st(StatusCanceled, monthly(2000, 1))),
			ver("b", "2026-02-01T00:00:00Z", 0, act0(2000, 1)),
		}, []act{{"a", "2026-01-01T00:00:00Z", 1}, {"a", "2026-02-01T00:00:00Z", -1}, {"b", "2026-02-01T00:00:00Z", 1}}},
		{"TrialIsNotActive", []SubscriptionVersion{
			ver("a", "2026-01-01T00:00:00Z", 0, st(StatusTrialing, monthly(2000, 1))),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []act
			for _, a := range DeriveLedger(tc.versions).Activity {
				got = append(got, act{a.SubscriptionRef, a.At.UTC().Format(time.RFC3339), a.Delta})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("activity %+v, want %+v", got, tc.want)
			}
		})
	}
}

func act0(amount, qty int64) Subscription { return act(monthly(amount, qty)) }
