package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// objectsLockTimeout bounds how long a page of API-fetched objects waits
// for customer rows a webhook batch holds before it falls back to one
// object per transaction (webhook batches hold them for milliseconds).
const objectsLockTimeout = 5 * time.Second

// ApplyObjects applies objects fetched from the API (backfill: events with
// ID "" and Created = the moment Stripe answered, as ApplyEvent takes
// them) in ONE transaction through the event path's batch, so the rules
// are ApplyEvent's exactly (erasure tombstones, version order, test clocks,
// links, the ledger) and the result equals applying them one by one
// (TestBatchEqualsOneByOne). A page costs one transaction instead of a
// queue slot per object, and leaves the webhook queue to webhooks.
//
// When the transaction fails as a whole (a lock timeout on a customer a
// webhook holds, a deadlock, one object the database refuses), each object
// is applied alone through ApplyEvent: one bad object fails alone, and
// the others' outcomes are theirs. errs[i] is object i's error; err is
// set only when the objects could not be checked.
func (s *Store) ApplyObjects(ctx context.Context, evs []billing.Event) ([]billing.Outcome, []error, error) {
	outs, errs := make([]billing.Outcome, len(evs)), make([]error, len(evs))
	if len(evs) == 0 {
		return outs, errs, nil
	}
	for _, ev := range evs {
		if ev.ID != "" {
			return nil, nil, fmt.Errorf("apply objects: %w: event %s is not an API-fetched object", billing.ErrInvalid, ev.ID)
		}
		if err := checkEvent(ev); err != nil {
			return nil, nil, err
		}
	}
	res, err := safeRun(ctx, evs, txLimits{lock: objectsLockTimeout, statement: noDeadline}, s.applyBatch)
	if err == nil {
		for i, r := range res {
			outs[i], errs[i] = r.out, r.err
		}
		return outs, errs, nil
	}
	if ctx.Err() != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("apply objects: %w: %w", billing.ErrUnavailable, ctx.Err())
		}
		return outs, errs, nil
	}
	s.log.Debug("object batch failed; applying one by one", "objects", len(evs), "error", err)
	for i, ev := range evs {
		outs[i], errs[i] = s.ApplyEvent(ctx, ev)
	}
	return outs, errs, nil
}
