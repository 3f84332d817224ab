package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// qUsageDays sums the paid metered and tiered invoice lines (net of tax)
// per currency and the day of their period's last instant, for periods
// ending in ($3, $4] (their last instant in [$3, $4)); index
// invoice_line_amounts_usage_idx.
const qUsageDays = `
SELECT currency, ((period_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC' AS day,
       sum(net_minor::numeric) AS amount
FROM invoice_line_amounts
WHERE livemode = $1 AND ($2 = '' OR currency = $2) AND usage_kind IN ('metered', 'tiered')
  AND period_end > $3 AND period_end <= $4
GROUP BY 1, 2
ORDER BY 1, 2`

// UsageDays implements billing.UsageReader.
func (s *Store) UsageDays(ctx context.Context, livemode bool, currency string, from, to time.Time) ([]billing.UsageDay, error) {
	rows, err := s.db.QueryxContext(ctx, qUsageDays, livemode, currency, from, to)
	if err != nil {
		return nil, fmt.Errorf("usage revenue: %w", translate(err))
	}
	defer rows.Close()
	var out []billing.UsageDay
	for rows.Next() {
		var (
			d   billing.UsageDay
			sum numericSum
		)
		if err := rows.Scan(&d.Currency, &d.Day, &sum); err != nil {
			return nil, fmt.Errorf("usage revenue: %w", translate(err))
		}
		d.Amount, _ = billing.ClampAmount(&sum.v)
		d.Day = d.Day.UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("usage revenue: %w", translate(err))
	}
	return out, nil
}
