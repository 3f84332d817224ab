package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// Revenue computes the revenue report from the movements ledger. MRR,
// paying customers and active subscriptions at a time are running sums
// (Σ delta_minor, Σ ±1 per new/reactivation/churn, Σ subscription_activity
// deltas), so one grouped pass over the rows before the report's end gives
// every bucket: everything before From collapses into one baseline group.
// Both reads are index-only scans of the (livemode, currency, effective_at)
// covering indexes (migration 0030) and share one snapshot.
func (s *Store) Revenue(ctx context.Context, rq billing.RevenueQuery) ([]billing.PeriodTotals, error) {
	if !rq.Bucket.Valid() || !rq.From.Before(rq.To) {
		return nil, fmt.Errorf("revenue: %w: bad bucket or range", billing.ErrInvalid)
	}
	end := rq.To
	if !rq.AsOf.IsZero() && rq.AsOf.Before(end) {
		end = rq.AsOf
	}
	var mov []bucketMovements
	var act []bucketActivity
	err := s.readSnapshot(ctx, func(tx *sqlx.Tx) error {
		const qm = `
SELECT currency,
       CASE WHEN effective_at < $3 THEN NULL ELSE date_trunc($5, effective_at, 'UTC') END AS bucket,
       sum(delta_minor) AS delta,
       coalesce(sum(delta_minor) FILTER (WHERE kind = 'new'), 0) AS new_mrr,
       coalesce(sum(delta_minor) FILTER (WHERE kind = 'expansion'), 0) AS expansion,
       coalesce(-sum(delta_minor) FILTER (WHERE kind = 'contraction'), 0) AS contraction,
       coalesce(-sum(delta_minor) FILTER (WHERE kind = 'churn'), 0) AS churn,
       coalesce(sum(delta_minor) FILTER (WHERE kind = 'reactivation'), 0) AS reactivation,
       count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS paying_delta,
       count(*) FILTER (WHERE kind = 'churn') AS churned
FROM mrr_movements
WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND effective_at < $4
GROUP BY 1, 2`
		if err := tx.SelectContext(ctx, &mov, qm, rq.Livemode, rq.Currency, rq.From, end, string(rq.Bucket)); err != nil {
			return fmt.Errorf("sum movements: %w", translate(err))
		}
		const qa = `
SELECT currency,
       CASE WHEN effective_at < $3 THEN NULL ELSE date_trunc($5, effective_at, 'UTC') END AS bucket,
       sum(delta) AS delta
FROM subscription_activity
WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND effective_at < $4
GROUP BY 1, 2`
		if err := tx.SelectContext(ctx, &act, qa, rq.Livemode, rq.Currency, rq.From, end, string(rq.Bucket)); err != nil {
			return fmt.Errorf("sum subscription activity: %w", translate(err))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("revenue: %w", err)
	}
	return assembleRevenue(rq, mov, act), nil
}

type bucketMovements struct {
	Currency     string     `db:"currency"`
	Bucket       *time.Time `db:"bucket"` // nil: the baseline before From
	Delta        int64      `db:"delta"`
	New          int64      `db:"new_mrr"`
	Expansion    int64      `db:"expansion"`
	Contraction  int64      `db:"contraction"`
	Churn        int64      `db:"churn"`
	Reactivation int64      `db:"reactivation"`
	PayingDelta  int64      `db:"paying_delta"`
	Churned      int64      `db:"churned"`
}

type bucketActivity struct {
	Currency string     `db:"currency"`
	Bucket   *time.Time `db:"bucket"`
	Delta    int64      `db:"delta"`
}

// assembleRevenue turns grouped sums into consecutive buckets per currency,
// carrying the running MRR, paying customers and active subscriptions.
func assembleRevenue(rq billing.RevenueQuery, mov []bucketMovements, act []bucketActivity) []billing.PeriodTotals {
	type key struct {
		cur    string
		bucket int64 // unix seconds; baseline is minInt
	}
	const baseline = -1 << 62
	bk := func(b *time.Time) int64 {
		if b == nil {
			return baseline
		}
		return b.Unix()
	}
	curSet := map[string]bool{}
	if rq.Currency != "" {
		curSet[rq.Currency] = true
	}
	m := map[key]bucketMovements{}
	for _, r := range mov {
		m[key{r.Currency, bk(r.Bucket)}] = r
		curSet[r.Currency] = true
	}
	a := map[key]int64{}
	for _, r := range act {
		a[key{r.Currency, bk(r.Bucket)}] = r.Delta
		curSet[r.Currency] = true
	}
	curs := make([]string, 0, len(curSet))
	for c := range curSet {
		curs = append(curs, c)
	}
	slices.Sort(curs)
	var out []billing.PeriodTotals
	for _, c := range curs {
		base := m[key{c, baseline}]
		mrr, paying, active := base.Delta, base.PayingDelta, a[key{c, baseline}]
		for s := rq.From; s.Before(rq.To); s = rq.Bucket.Next(s) {
			p := billing.PeriodTotals{Start: s, End: rq.Bucket.Next(s), Currency: c, MRRStart: mrr, PayingStart: paying}
			r := m[key{c, s.Unix()}]
			mrr += r.Delta
			paying += r.PayingDelta
			active += a[key{c, s.Unix()}]
			p.MRREnd, p.PayingEnd, p.ActiveSubscriptions = mrr, paying, active
			p.ChurnedCustomers = r.Churned
			p.Movements = billing.MovementSums{New: r.New, Expansion: r.Expansion, Contraction: r.Contraction, Churn: r.Churn, Reactivation: r.Reactivation}
			out = append(out, p)
		}
	}
	return out
}

// Summary computes the current figures per currency from the ledger.
func (s *Store) Summary(ctx context.Context, livemode bool, asOf time.Time) (billing.Summary, error) {
	sum := billing.Summary{AsOf: asOf.UTC(), Livemode: livemode, Currencies: []billing.CurrencySummary{}}
	var rows []struct {
		Currency     string `db:"currency"`
		MRR          int64  `db:"mrr"`
		Paying       int64  `db:"paying"`
		Active       int64  `db:"active"`
		New          int64  `db:"new_mrr"`
		Expansion    int64  `db:"expansion"`
		Contraction  int64  `db:"contraction"`
		Churn        int64  `db:"churn"`
		Reactivation int64  `db:"reactivation"`
	}
	const q = `
WITH m AS (
    SELECT currency,
           sum(delta_minor) AS mrr,
           count(*) FILTER (WHERE kind IN ('new', 'reactivation')) - count(*) FILTER (WHERE kind = 'churn') AS paying,
           coalesce(sum(delta_minor) FILTER (WHERE kind = 'new' AND effective_at > $3), 0) AS new_mrr,
           coalesce(sum(delta_minor) FILTER (WHERE kind = 'expansion' AND effective_at > $3), 0) AS expansion,
           coalesce(-sum(delta_minor) FILTER (WHERE kind = 'contraction' AND effective_at > $3), 0) AS contraction,
           coalesce(-sum(delta_minor) FILTER (WHERE kind = 'churn' AND effective_at > $3), 0) AS churn,
           coalesce(sum(delta_minor) FILTER (WHERE kind = 'reactivation' AND effective_at > $3), 0) AS reactivation
    FROM mrr_movements
    WHERE livemode = $1 AND effective_at <= $2
    GROUP BY currency
), a AS (
    SELECT currency, sum(delta) AS active
    FROM subscription_activity
    WHERE livemode = $1 AND effective_at <= $2
    GROUP BY currency
)
SELECT m.currency, m.mrr, m.paying, coalesce(a.active, 0) AS active,
       m.new_mrr, m.expansion, m.contraction, m.churn, m.reactivation
FROM m LEFT JOIN a ON a.currency = m.currency
ORDER BY m.currency`
	if err := s.db.SelectContext(ctx, &rows, q, livemode, asOf, asOf.Add(-30*24*time.Hour)); err != nil {
		return sum, fmt.Errorf("revenue summary: %w", translate(err))
	}
	for _, r := range rows {
		c := billing.CurrencySummary{Currency: r.Currency, MRR: r.MRR, ActiveSubscriptions: r.Active, PayingCustomers: r.Paying,
			Movements30d: billing.MovementSums{New: r.New, Expansion: r.Expansion, Contraction: r.Contraction, Churn: r.Churn, Reactivation: r.Reactivation}}
		c.FillSummary()
		sum.Currencies = append(sum.Currencies, c)
	}
	return sum, nil
}

// readSnapshot runs fn in a read-only repeatable-read transaction, so
// several reads see one state of the ledger.
func (s *Store) readSnapshot(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return fn(tx)
}
