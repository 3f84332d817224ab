package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// The merchant's catalog (catalog_products, catalog_prices; migration
// 0611). Each row keeps its newest version: the upsert's guard compares
// (version_at, version_event) as the subscription guard does, so any
// delivery order, on any replica, ends with the same rows. An API fetch
// (no event ID) is keyed by its time alone.

const qUpsertProduct = `
INSERT INTO catalog_products (product_id, livemode, name, active, deleted, version_at, version_event)
VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7)
ON CONFLICT (product_id) DO UPDATE SET livemode = EXCLUDED.livemode, name = EXCLUDED.name,
    active = EXCLUDED.active, deleted = EXCLUDED.deleted, version_at = EXCLUDED.version_at,
    version_event = EXCLUDED.version_event, updated_at = now()
WHERE (catalog_products.version_at, catalog_products.version_event COLLATE "C")
    < (EXCLUDED.version_at, EXCLUDED.version_event COLLATE "C")`

const qUpsertPrice = `
INSERT INTO catalog_prices (price_id, livemode, product_id, nickname, currency, unit_amount, interval, interval_count,
    usage_type, billing_scheme, tax_behavior, active, deleted, version_at, version_event)
VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), $6, NULLIF($7, ''), NULLIF($8, 0), NULLIF($9, ''),
    NULLIF($10, ''), NULLIF($11, ''), $12, $13, $14, $15)
ON CONFLICT (price_id) DO UPDATE SET livemode = EXCLUDED.livemode, product_id = EXCLUDED.product_id,
    nickname = EXCLUDED.nickname, currency = EXCLUDED.currency, unit_amount = EXCLUDED.unit_amount,
    interval = EXCLUDED.interval, interval_count = EXCLUDED.interval_count, usage_type = EXCLUDED.usage_type,
    billing_scheme = EXCLUDED.billing_scheme, tax_behavior = EXCLUDED.tax_behavior, active = EXCLUDED.active,
    deleted = EXCLUDED.deleted, version_at = EXCLUDED.version_at, version_event = EXCLUDED.version_event,
    updated_at = now()
WHERE (catalog_prices.version_at, catalog_prices.version_event COLLATE "C")
    < (EXCLUDED.version_at, EXCLUDED.version_event COLLATE "C")`

// applyProduct records a product version; an older one is stale.
func applyProduct(ctx context.Context, tx ptx, at time.Time, eventID string, p *billing.Product) (billing.Outcome, error) {
	r, err := tx.ExecContext(ctx, qUpsertProduct, p.ID, p.Livemode, p.Name, p.Active, p.Deleted, at, eventID)
	if err != nil {
		return "", fmt.Errorf("record product: %w", translate(err))
	}
	return catalogOutcome(r.RowsAffected())
}

// applyPrice records a price version; an older one is stale.
func applyPrice(ctx context.Context, tx ptx, at time.Time, eventID string, p *billing.Price) (billing.Outcome, error) {
	r, err := tx.ExecContext(ctx, qUpsertPrice, p.ID, p.Livemode, p.ProductID, p.Nickname, p.Currency, p.UnitAmount,
		string(p.Interval), p.IntervalCount, p.UsageType, p.BillingScheme, p.TaxBehavior, p.Active, p.Deleted, at, eventID)
	if err != nil {
		return "", fmt.Errorf("record price: %w", translate(err))
	}
	return catalogOutcome(r.RowsAffected())
}

func catalogOutcome(n int64, err error) (billing.Outcome, error) {
	if err != nil {
		return "", fmt.Errorf("record catalog: %w", err)
	}
	if n == 0 {
		return billing.OutcomeStale, nil
	}
	return billing.OutcomeApplied, nil
}

// PlanNames implements billing.CatalogReader: every price of one mode as
// screens name it (the catalog_plan_names view), by price ID.
func (s *Store) PlanNames(ctx context.Context, livemode bool) ([]billing.PlanName, error) {
	const q = `
SELECT price_id, livemode, product_id, product_name, nickname, currency, interval, plan_name
FROM catalog_plan_names WHERE livemode = $1 ORDER BY plan_name, price_id LIMIT 10000`
	out := []billing.PlanName{}
	if err := s.db.SelectContext(ctx, &out, q, livemode); err != nil {
		return nil, fmt.Errorf("plan names: %w", translate(err))
	}
	return out, nil
}
