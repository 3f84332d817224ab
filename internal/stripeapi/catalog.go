package stripeapi

import (
	"context"
	"fmt"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
)

// CatalogCounts is what a catalog backfill did.
type CatalogCounts struct {
	Products Counts
	Prices   Counts
}

// BackfillCatalog applies every product and price Stripe lists (the
// merchant's catalog: names and nicknames for display) through the event
// path, as *.updated versions as of Stripe's answer: newer than every
// event already seen, and idempotent. The catalog is small, so it has no
// cursor: an interrupted run is simply run again.
func (s *Syncer) BackfillCatalog(ctx context.Context) (CatalogCounts, error) {
	var sum CatalogCounts
	var fails []Failure
	apply := func(typ, object string, counts *Counts) func(Page) error {
		return func(p Page) error {
			evs := make([]billing.Event, 0, len(p.Objects))
			for _, raw := range p.Objects {
				counts.Listed++
				ev, err := webhooks.DecodeCatalogObject(raw, typ, p.At)
				if err != nil {
					counts.Failed++
					fails = append(fails, failure(object, rawID(raw), err))
					continue
				}
				evs = append(evs, ev)
			}
			return s.applyEvents(ctx, object, evs, counts, &fails)
		}
	}
	if err := s.Client.ListProducts(ctx, apply(webhooks.TypeProductUpdated, "product", &sum.Products)); err != nil {
		return sum, fmt.Errorf("backfill products: %w", err)
	}
	if err := s.Client.ListPrices(ctx, apply(webhooks.TypePriceUpdated, "price", &sum.Prices)); err != nil {
		return sum, fmt.Errorf("backfill prices: %w", err)
	}
	s.log().Info("catalog backfill done", "products", sum.Products.Listed, "prices", sum.Prices.Listed, "failed", len(fails))
	if len(fails) > 0 {
		return sum, fmt.Errorf("backfill catalog: %d objects could not be applied", len(fails))
	}
	return sum, nil
}
