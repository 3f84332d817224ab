package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
)

// TestReportsSurviveAbsurdAmounts stores what decoders now refuse (and an
// older database may hold): items at unit_amount and quantity near 2^62
// through the event path, movements at the int64 extremes, and a rollup
// day far beyond int64. Every report, compaction and rebuild still
// answers; the absurd currency's figures are clamped and say so, and the
// figures of an ordinary currency beside it are exact and unflagged.
func TestReportsSurviveAbsurdAmounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	now := time.Now().UTC()
	t0 := now.Add(-72 * time.Hour).Truncate(time.Second)
	apply := func(id, cus, cur string, created time.Time, amount, qty int64) {
		t.Helper()
		ev := billing.Event{ID: "evt_" + id, Type: "customer.subscription.created", Created: created, Livemode: true,
			Subscription: &billing.Subscription{ID: "sub_" + id, CustomerID: cus, Livemode: true, Status: billing.StatusActive,
				Currency: cur, Items: []billing.Item{{PriceID: "price_x", Quantity: qty, UnitAmount: amount,
					Interval: billing.IntervalMonth, IntervalCount: 1}}}}
		if out, err := st.ApplyEvent(ctx, ev); err != nil || out != billing.OutcomeApplied {
			t.Fatalf("apply %s: %v %v", id, out, err)
		}
	}
	// Two saturated subscriptions of one customer (their sum used to wrap
	// to a negative MRR), and another customer's: days whose rollup sums
	// pass 2^63.
	apply("Huge1", "cus_Huge1", "usd", t0, 1<<62, 1<<62)
	apply("Huge2", "cus_Huge1", "usd", t0.Add(time.Second), 1<<62, 1<<62)
	apply("Huge3", "cus_Huge3", "usd", t0.Add(2*time.Second), 1<<62, 3)
	// An ordinary currency beside it.
	apply("Fine1", "cus_Fine1", "eur", t0, 2500, 2)
	db := st.DB()
	// Legacy rows: movements at the extremes (a negated -2^63 has no
	// bigint) today and on an older day, and a rollup row beyond int64.
	var ref string
	if err := db.Get(&ref, `SELECT customer_ref::text FROM customers WHERE stripe_customer_id = 'cus_Huge3'`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO mrr_movements (customer_ref, livemode, currency, effective_at, kind, delta_minor, customer_mrr_before, customer_mrr_after)
		 VALUES ($1, true, 'usd', now() - interval '1 minute', 'contraction', -9223372036854775808, 9223372036854775807, -1)`,
		`INSERT INTO mrr_movements (customer_ref, livemode, currency, effective_at, kind, delta_minor, customer_mrr_before, customer_mrr_after)
		 VALUES ($1, true, 'usd', now() - interval '50 hours', 'churn', -9223372036854775808, 9223372036854775807, 0)`,
	} {
		if _, err := db.Exec(q, ref); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, paying_delta, active_delta)
		VALUES (true, 'usd', (now() - interval '60 hours')::date, 1e30, 1e30, 1, 1)`); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, name string, flag bool, figures ...int64) {
		t.Helper()
		if !flag {
			t.Errorf("%s: not flagged clamped", name)
		}
		for _, v := range figures {
			if v > billing.MaxReportAmount || v < -billing.MaxReportAmount {
				t.Errorf("%s: figure %d beyond the report range", name, v)
			}
		}
	}
	for _, run := range []string{"AsStored", "Compacted", "Rebuilt"} {
		t.Run(run, func(t *testing.T) {
			switch run {
			case "Compacted":
				if _, err := st.CompactRevenueRollup(ctx); err != nil {
					t.Fatalf("compact: %v", err)
				}
			case "Rebuilt":
				if err := st.RebuildRevenueRollup(ctx); err != nil {
					t.Fatalf("rebuild: %v", err)
				}
			}
			sum, err := st.Summary(ctx, true, now)
			if err != nil {
				t.Fatalf("summary: %v", err)
			}
			var seen int
			for _, c := range sum.Currencies {
				switch c.Currency {
				case "usd":
					seen++
					check(t, "summary usd", c.Clamped, c.MRR, c.ARR, c.Movements30d.New, c.Movements30d.Contraction, c.Movements30d.Churn)
				case "eur":
					seen++
					if c.Clamped || c.MRR != 5000 || c.ARR != 60000 || c.PayingCustomers != 1 {
						t.Errorf("summary eur %+v, want MRR 5000, unflagged", c)
					}
				}
			}
			if seen != 2 {
				t.Fatalf("summary currencies %+v", sum.Currencies)
			}
			for _, b := range []billing.Bucket{billing.BucketDay, billing.BucketWeek, billing.BucketMonth} {
				for _, cur := range []string{"", "usd"} {
					from := b.Truncate(now.AddDate(0, 0, -10))
					periods, err := st.Revenue(ctx, billing.RevenueQuery{Livemode: true, Currency: cur, Bucket: b,
						From: from, To: b.Next(b.Truncate(now)), AsOf: now})
					if err != nil {
						t.Fatalf("revenue %s %q: %v", b, cur, err)
					}
					flagged := false
					for _, p := range periods {
						f := p.Figures(b)
						for _, v := range []int64{f.MRRStart, f.MRREnd, f.ARR, f.NetNew, f.Movements.New, f.Movements.Churn, f.Movements.Contraction} {
							if v > billing.MaxReportAmount || v < -billing.MaxReportAmount {
								t.Errorf("revenue %s %s %s: figure %d beyond the report range", b, p.Currency, p.Start, v)
							}
						}
						switch p.Currency {
						case "usd":
							flagged = flagged || f.Clamped
						case "eur":
							if f.Clamped || (p.End.After(t0) && f.MRREnd != 5000) {
								t.Errorf("revenue %s eur %s: %+v", b, p.Start, f)
							}
						}
					}
					if !flagged {
						t.Errorf("revenue %s %q: no usd bucket flagged clamped", b, cur)
					}
				}
			}
		})
	}
	// The customer of two saturated subscriptions never went negative.
	var neg int
	if err := db.Get(&neg, `SELECT count(*) FROM mrr_movements m JOIN customers c USING (customer_ref)
		WHERE c.stripe_customer_id = 'cus_Huge1' AND (customer_mrr_after < 0 OR customer_mrr_before < 0)`); err != nil {
		t.Fatal(err)
	}
	if neg != 0 {
		t.Fatalf("%d movements with a negative customer MRR: the sum wrapped", neg)
	}
}
