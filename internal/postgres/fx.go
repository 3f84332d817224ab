package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/lib/pq"
)

// PutFXRates inserts or replaces daily rates in one statement (a rate of
// a day already stored is replaced: the ECB corrects rates now and then).
func (s *Store) PutFXRates(ctx context.Context, rates []billing.FXRate, source string) (int, error) {
	if source != "import" && source != "api" {
		return 0, fmt.Errorf("put fx rates: %w: source %q", billing.ErrInvalid, source)
	}
	if len(rates) > billing.MaxFXRates {
		return 0, fmt.Errorf("put fx rates: %w: more than %d rates", billing.ErrInvalid, billing.MaxFXRates)
	}
	days, curs, vals := make([]string, 0, len(rates)), make([]string, 0, len(rates)), make([]string, 0, len(rates))
	for _, r := range rates {
		if err := billing.ValidFXRate(r); err != nil {
			return 0, fmt.Errorf("put fx rates: %w", err)
		}
		days = append(days, r.Day.Format(time.DateOnly))
		curs = append(curs, r.Currency)
		vals = append(vals, r.PerEUR)
	}
	// DISTINCT ON: a file naming one day twice keeps its last value, not
	// an "ON CONFLICT cannot affect row a second time" error.
	const q = `
INSERT INTO fx_rates (day, currency, per_eur, source)
SELECT DISTINCT ON (currency, day) day, currency, per_eur, $4
FROM unnest($1::date[], $2::text[], $3::numeric[]) WITH ORDINALITY AS u(day, currency, per_eur, n)
ORDER BY currency, day, n DESC
ON CONFLICT (currency, day) DO UPDATE SET per_eur = EXCLUDED.per_eur, source = EXCLUDED.source, updated_at = now()`
	res, err := s.db.ExecContext(ctx, q, pq.Array(days), pq.Array(curs), pq.Array(vals), source)
	if err != nil {
		return 0, fmt.Errorf("put fx rates: %w", translate(err))
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// FXRates returns the rates of every currency from `from` to `to` (days,
// inclusive).
func (s *Store) FXRates(ctx context.Context, from, to time.Time) ([]billing.FXRate, error) {
	const q = `SELECT day, currency, per_eur::text AS per_eur FROM fx_rates WHERE day BETWEEN $1::date AND $2::date`
	var rows []struct {
		Day      time.Time `db:"day"`
		Currency string    `db:"currency"`
		PerEUR   string    `db:"per_eur"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, from.Format(time.DateOnly), to.Format(time.DateOnly)); err != nil {
		return nil, fmt.Errorf("fx rates: %w", translate(err))
	}
	out := make([]billing.FXRate, len(rows))
	for i, r := range rows {
		out[i] = billing.FXRate{Day: r.Day.UTC(), Currency: r.Currency, PerEUR: r.PerEUR}
	}
	return out, nil
}
