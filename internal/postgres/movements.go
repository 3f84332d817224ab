package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// recomputeMovements re-derives one customer's MRR movements (mrr_movements)
// from its state history (subscription_versions) from time `from` onward, in
// the caller's transaction: the ledger rebuild's per-customer step. The
// event path does the same for every customer of a batch at once, from the
// batch's earliest version of each (applySubscriptions, writeLedgers), so
// a late version rewrites the ledger after it and any delivery order ends
// with the same ledger. The caller holds the customer's row lock, which
// serialises recomputes of one customer.
//
// Two round trips: read the customer's history, then one statement that
// deletes the derived rows from `from` on and inserts the new ones.
// Derivation is causal (rows before `from` depend only on versions before
// it), so the rows kept before `from` stay right.
func recomputeMovements(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool, from time.Time) error {
	versions, err := customerHistory(ctx, tx, customerRef, livemode)
	if err != nil {
		return fmt.Errorf("recompute movements: %w", err)
	}
	l := &ledgerWork{versions: versions}
	if _, err := loadLedgerInputs(ctx, tx, map[ledgerKey]*ledgerWork{{ref: customerRef, livemode: livemode}: l}); err != nil {
		return fmt.Errorf("recompute movements: %w", err)
	}
	if err := replaceLedger(ctx, tx, customerRef, livemode, from, billing.DeriveCustomerLedger(l.history())); err != nil {
		return fmt.Errorf("recompute movements: %w", err)
	}
	return nil
}

// versionRow is one subscription_versions row as the derivation reads it.
type versionRow struct {
	SubscriptionRef    string     `db:"subscription_ref"`
	Livemode           bool       `db:"livemode"`
	Status             string     `db:"status"`
	Currency           string     `db:"currency"`
	Items              []byte     `db:"items"`
	Discounts          []byte     `db:"discounts"`
	CurrentPeriodStart *time.Time `db:"current_period_start"`
	CurrentPeriodEnd   *time.Time `db:"current_period_end"`
	TrialEnd           *time.Time `db:"trial_end"`
	CancelAt           *time.Time `db:"cancel_at"`
	CancelAtPeriodEnd  bool       `db:"cancel_at_period_end"`
	EndedAt            *time.Time `db:"ended_at"`
	AutomaticTax       bool       `db:"automatic_tax"`
	VersionAt          time.Time  `db:"version_at"`
	VersionRank        int        `db:"version_rank"`
	VersionEvent       string     `db:"version_event"`
}

func (r versionRow) toVersion() (billing.SubscriptionVersion, error) {
	s := billing.Subscription{
		Livemode:           r.Livemode,
		Status:             billing.Status(r.Status),
		Currency:           r.Currency,
		CurrentPeriodStart: r.CurrentPeriodStart,
		CurrentPeriodEnd:   r.CurrentPeriodEnd,
		TrialEnd:           r.TrialEnd,
		CancelAt:           r.CancelAt,
		CancelAtPeriodEnd:  r.CancelAtPeriodEnd,
		EndedAt:            r.EndedAt,
		AutomaticTax:       r.AutomaticTax,
	}
	var err error
	if s.Items, err = decodeItems(r.Items); err != nil {
		return billing.SubscriptionVersion{}, fmt.Errorf("subscription %s: %w", r.SubscriptionRef, err)
	}
	if s.Discounts, err = decodeDiscounts(r.Discounts); err != nil {
		return billing.SubscriptionVersion{}, fmt.Errorf("subscription %s: %w", r.SubscriptionRef, err)
	}
	return billing.SubscriptionVersion{
		SubscriptionRef: r.SubscriptionRef, At: r.VersionAt, Rank: r.VersionRank, Event: r.VersionEvent, State: s,
	}, nil
}

// historyRow is a versionRow as json_agg renders it (qWriteSubscriptions).
type historyRow struct {
	SubscriptionRef    string          `json:"subscription_ref"`
	Livemode           bool            `json:"livemode"`
	Status             string          `json:"status"`
	Currency           string          `json:"currency"`
	Items              json.RawMessage `json:"items"`
	Discounts          json.RawMessage `json:"discounts"`
	CurrentPeriodStart *time.Time      `json:"current_period_start"`
	CurrentPeriodEnd   *time.Time      `json:"current_period_end"`
	TrialEnd           *time.Time      `json:"trial_end"`
	CancelAt           *time.Time      `json:"cancel_at"`
	CancelAtPeriodEnd  bool            `json:"cancel_at_period_end"`
	EndedAt            *time.Time      `json:"ended_at"`
	AutomaticTax       bool            `json:"automatic_tax"`
	VersionAt          time.Time       `json:"version_at"`
	VersionRank        int             `json:"version_rank"`
	VersionEvent       string          `json:"version_event"`
}

func (r historyRow) toVersion() (billing.SubscriptionVersion, error) {
	return versionRow{
		SubscriptionRef: r.SubscriptionRef, Livemode: r.Livemode, Status: r.Status, Currency: r.Currency,
		Items: r.Items, Discounts: r.Discounts, CurrentPeriodStart: r.CurrentPeriodStart,
		CurrentPeriodEnd: r.CurrentPeriodEnd, TrialEnd: r.TrialEnd, CancelAt: r.CancelAt,
		CancelAtPeriodEnd: r.CancelAtPeriodEnd, EndedAt: r.EndedAt, AutomaticTax: r.AutomaticTax, VersionAt: r.VersionAt,
		VersionRank: r.VersionRank, VersionEvent: r.VersionEvent,
	}.toVersion()
}

const qCustomerHistory = `
SELECT subscription_ref, livemode, status, currency, items, discounts,
       current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end, ended_at,
       automatic_tax, version_at, version_rank, version_event
FROM subscription_versions
WHERE customer_ref = $1 AND livemode = $2`

// customerHistory loads every version of every subscription of a customer
// in one mode (index subscription_versions_customer_idx).
func customerHistory(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool) ([]billing.SubscriptionVersion, error) {
	var rows []versionRow
	if err := tx.SelectContext(ctx, &rows, qCustomerHistory, customerRef, livemode); err != nil {
		return nil, fmt.Errorf("load history of customer %s: %w", customerRef, translate(err))
	}
	out := make([]billing.SubscriptionVersion, 0, len(rows))
	for _, r := range rows {
		v, err := r.toVersion()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
