package postgres

import (
	"context"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// SetBeforeEraseCommit lets the external tests hold an erasure open just
// before it commits, to race it against the event path deterministically.
func SetBeforeEraseCommit(s *Store, f func()) { s.keys.beforeEraseCommit = f }

// IsTombstoned exposes the tombstone check (checkTombstones, IDs only) to
// the external tests.
func IsTombstoned(ctx context.Context, s *Store, tx *sqlx.Tx, ids ...string) (bool, error) {
	ring, err := s.erasureRingTx(ctx, tx)
	if err != nil {
		return false, err
	}
	dead, _, err := checkTombstones(ctx, tx, ring, ids, "")
	return dead, err
}

// ApplyBatch applies evs as one group-commit batch (one transaction), as
// concurrent deliveries would be, and returns each event's result.
func ApplyBatch(ctx context.Context, s *Store, evs []billing.Event) ([]billing.Outcome, []error, error) {
	res, err := s.applyBatch(ctx, evs, txLimits{})
	if err != nil {
		return nil, nil, err
	}
	outs, errs := make([]billing.Outcome, len(res)), make([]error, len(res))
	for i, r := range res {
		outs[i], errs[i] = r.out, r.err
	}
	return outs, errs, nil
}

// SetBeforeBatchCommit lets the external tests hold an event batch open
// just before it commits, to race it against an erasure deterministically.
func SetBeforeBatchCommit(s *Store, f func()) { s.keys.beforeBatchCommit = f }

// SetCustomersOneByOne has every customer event applied alone
// (applyCustomer), as before plain customer events were applied together.
func SetCustomersOneByOne(s *Store) { s.keys.customersOneByOne = true }
