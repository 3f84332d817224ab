package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// recomputeMovements re-derives one customer's MRR movements (mrr_movements)
// from its state history (subscription_versions) from time `from` onward, in
// the caller's transaction. The event path calls it after inserting a
// version, with from = that version's time, so a late version rewrites the
// ledger after it and any delivery order ends with the same ledger.
// The caller holds the customer's row lock, which serialises recomputes of
// one customer.
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
	if err := replaceLedger(ctx, tx, customerRef, livemode, from, billing.DeriveLedger(versions)); err != nil {
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
	}
	if err := json.Unmarshal(r.Items, &s.Items); err != nil {
		return billing.SubscriptionVersion{}, fmt.Errorf("decode items of subscription %s: %w", r.SubscriptionRef, err)
	}
	if err := json.Unmarshal(r.Discounts, &s.Discounts); err != nil {
		return billing.SubscriptionVersion{}, fmt.Errorf("decode discounts of subscription %s: %w", r.SubscriptionRef, err)
	}
	return billing.SubscriptionVersion{
		SubscriptionRef: r.SubscriptionRef, At: r.VersionAt, Rank: r.VersionRank, Event: r.VersionEvent, State: s,
	}, nil
}

// historyRow is a versionRow as json_agg renders it (qWriteSubscription).
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
	VersionAt          time.Time       `json:"version_at"`
	VersionRank        int             `json:"version_rank"`
	VersionEvent       string          `json:"version_event"`
}

// decodeHistory decodes a customer's history as qWriteSubscription returns
// it (a JSON array of historyColumns rows, or NULL for none): what
// customerHistory would read after the write, without a round trip.
func decodeHistory(b []byte) ([]billing.SubscriptionVersion, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var rows []historyRow
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("decode customer history: %w", err)
	}
	out := make([]billing.SubscriptionVersion, 0, len(rows))
	for _, r := range rows {
		v, err := versionRow{
			SubscriptionRef: r.SubscriptionRef, Livemode: r.Livemode, Status: r.Status, Currency: r.Currency,
			Items: r.Items, Discounts: r.Discounts, CurrentPeriodStart: r.CurrentPeriodStart,
			CurrentPeriodEnd: r.CurrentPeriodEnd, TrialEnd: r.TrialEnd, CancelAt: r.CancelAt,
			CancelAtPeriodEnd: r.CancelAtPeriodEnd, EndedAt: r.EndedAt, VersionAt: r.VersionAt,
			VersionRank: r.VersionRank, VersionEvent: r.VersionEvent,
		}.toVersion()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

var qCustomerHistory = eventStatement(`
SELECT subscription_ref, livemode, status, currency, items, discounts,
       current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end, ended_at,
       version_at, version_rank, version_event
FROM subscription_versions
WHERE customer_ref = $1 AND livemode = $2`)

// customerHistory loads every version of every subscription of a customer
// in one mode (index subscription_versions_customer_idx).
func customerHistory(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool) ([]billing.SubscriptionVersion, error) {
	var rows []versionRow
	if err := txSelect(ctx, tx, &rows, qCustomerHistory, customerRef, livemode); err != nil {
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

// qLedgerCTEs and qLedgerRollup make up qReplaceLedger; the event path's
// variant (qReplaceLedgerAndQueue) adds its outbox and cache-invalidation
// inserts between them.
const qLedgerCTEs = `
WITH del_m AS (
    DELETE FROM mrr_movements WHERE customer_ref = $1 AND livemode = $2 AND effective_at >= $3
    RETURNING -1 AS sign, currency, effective_at, kind, delta_minor
), del_a AS (
    DELETE FROM subscription_activity WHERE customer_ref = $1 AND livemode = $2 AND effective_at >= $3
    RETURNING -1 AS sign, currency, effective_at, delta
), ins_m AS (
    INSERT INTO mrr_movements (customer_ref, subscription_ref, livemode, currency, effective_at, kind,
                               delta_minor, customer_mrr_before, customer_mrr_after)
    SELECT $1, NULLIF(u.sub_ref, '')::uuid, $2, u.currency, u.at, u.kind, u.delta, u.before, u.after
    FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[])
         AS u(sub_ref, currency, at, kind, delta, before, after)
    RETURNING 1 AS sign, currency, effective_at, kind, delta_minor
), ins_a AS (
    INSERT INTO subscription_activity (customer_ref, subscription_ref, livemode, currency, effective_at, delta)
    SELECT $1, u.sub_ref::uuid, $2, u.currency, u.at, u.delta
    FROM unnest($11::text[], $12::text[], $13::timestamptz[], $14::smallint[]) AS u(sub_ref, currency, at, delta)
    RETURNING 1 AS sign, currency, effective_at, delta
), changes AS (
    SELECT sign, currency, effective_at, kind, delta_minor, 0 AS active FROM del_m
    UNION ALL SELECT sign, currency, effective_at, kind, delta_minor, 0 FROM ins_m
    UNION ALL SELECT sign, currency, effective_at, NULL, 0, delta FROM del_a
    UNION ALL SELECT sign, currency, effective_at, NULL, 0, delta FROM ins_a
)`

const qLedgerRollup = `
INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                           churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
SELECT $2, currency, day, sum(mrr_delta), sum(new_minor), sum(expansion_minor), sum(contraction_minor),
       sum(churn_minor), sum(reactivation_minor), sum(paying_delta), sum(churned_customers), sum(active_delta)
FROM (
    SELECT currency, (effective_at AT TIME ZONE 'UTC')::date AS day,
           sign * delta_minor AS mrr_delta,
           CASE WHEN kind = 'new' THEN sign * delta_minor ELSE 0 END AS new_minor,
           CASE WHEN kind = 'expansion' THEN sign * delta_minor ELSE 0 END AS expansion_minor,
           CASE WHEN kind = 'contraction' THEN -sign * delta_minor ELSE 0 END AS contraction_minor,
           CASE WHEN kind = 'churn' THEN -sign * delta_minor ELSE 0 END AS churn_minor,
           CASE WHEN kind = 'reactivation' THEN sign * delta_minor ELSE 0 END AS reactivation_minor,
           CASE WHEN kind IN ('new', 'reactivation') THEN sign WHEN kind = 'churn' THEN -sign ELSE 0 END AS paying_delta,
           CASE WHEN kind = 'churn' THEN sign ELSE 0 END AS churned_customers,
           sign * active AS active_delta
    FROM changes
) c
GROUP BY currency, day
HAVING sum(mrr_delta) <> 0 OR sum(new_minor) <> 0 OR sum(expansion_minor) <> 0 OR sum(contraction_minor) <> 0
    OR sum(churn_minor) <> 0 OR sum(reactivation_minor) <> 0 OR sum(paying_delta) <> 0
    OR sum(churned_customers) <> 0 OR sum(active_delta) <> 0`

var qReplaceLedger = eventStatement(qLedgerCTEs + qLedgerRollup)

// qReplaceLedgerAndQueue is qReplaceLedger plus the rows the event appends
// after the rewrite: outbox rows ($15..$18, inserted in array order, so
// their IDs keep enqueueSubscriptionSync's order) and cache invalidations
// ($19, $20). Unreferenced data-modifying CTEs still run to completion.
var qReplaceLedgerAndQueue = eventStatement(qLedgerCTEs + `, ob AS (
    INSERT INTO outbox (kind, ordering_key, action, payload)
    SELECT u.kind, u.ordering_key, u.action, u.payload::jsonb
    FROM unnest($15::text[], $16::text[], $17::text[], $18::text[]) WITH ORDINALITY
         AS u(kind, ordering_key, action, payload, n)
    ORDER BY u.n
    RETURNING id
), inv AS (
    INSERT INTO cache_invalidations (kind, bucket)
    SELECT u.kind, u.bucket FROM unnest($19::smallint[], $20::integer[]) AS u(kind, bucket)
)` + qLedgerRollup)

// replaceLedger deletes a customer's derived rows (movements and activity)
// effective at or after from and inserts the derived ones in that range,
// and appends the net change per day to the revenue_daily rollup, in one
// statement. The DELETEs and INSERTs of one statement share a snapshot, so
// the deletes cannot see (and remove) the rows being inserted. Rollup rows
// are appended, never updated, so concurrent events never queue on a
// shared day row; a day whose rows cancel out appends nothing.
func replaceLedger(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool, from time.Time, l billing.Ledger) error {
	return replaceLedgerAndQueue(ctx, tx, customerRef, livemode, from, l, nil)
}

// ledgerQueue is what the event path appends after a ledger rewrite: the
// outbox rows of enqueueSubscriptionSync and the account whose entitlement
// caches notifyAccountChange invalidates ("" for none).
type ledgerQueue struct {
	outbox  []outboxRow
	account string
}

// replaceLedgerAndQueue is replaceLedger that also appends q's rows, in the
// same statement (one round trip for the event's last writes); q nil is
// replaceLedger.
func replaceLedgerAndQueue(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool, from time.Time, l billing.Ledger, q *ledgerQueue) error {
	var (
		mRef, mCur, mAt, mKind  []string
		mDelta, mBefore, mAfter []int64
		aRef, aCur, aAt         []string
		aDelta                  []int64
	)
	for _, m := range l.Movements {
		if m.At.Before(from) || m.Livemode != livemode {
			continue
		}
		mRef = append(mRef, m.SubscriptionRef)
		mCur = append(mCur, m.Currency)
		mAt = append(mAt, m.At.UTC().Format(time.RFC3339Nano))
		mKind = append(mKind, string(m.Kind))
		mDelta = append(mDelta, m.Delta)
		mBefore = append(mBefore, m.Before)
		mAfter = append(mAfter, m.After)
	}
	for _, a := range l.Activity {
		if a.At.Before(from) || a.Livemode != livemode {
			continue
		}
		aRef = append(aRef, a.SubscriptionRef)
		aCur = append(aCur, a.Currency)
		aAt = append(aAt, a.At.UTC().Format(time.RFC3339Nano))
		aDelta = append(aDelta, int64(a.Delta))
	}
	args := []any{customerRef, livemode, from,
		pq.Array(mRef), pq.Array(mCur), pq.Array(mAt), pq.Array(mKind), pq.Array(mDelta), pq.Array(mBefore), pq.Array(mAfter),
		pq.Array(aRef), pq.Array(aCur), pq.Array(aAt), pq.Array(aDelta)}
	query := qReplaceLedger
	if q != nil {
		query = qReplaceLedgerAndQueue
		oKind, oKey, oAction, oPayload := []string{}, []string{}, []string{}, []string{}
		for _, r := range q.outbox {
			oKind = append(oKind, r.Kind)
			oKey = append(oKey, r.OrderingKey)
			oAction = append(oAction, r.Action)
			oPayload = append(oPayload, string(r.Payload))
		}
		iKind, iBucket := []int64{}, []int64{}
		if q.account != "" { // as notifyAccountChange
			iKind = append(iKind, invalidationAccount)
			iBucket = append(iBucket, int64(billing.CacheBucket(q.account)))
		}
		args = append(args, pq.Array(oKind), pq.Array(oKey), pq.Array(oAction), pq.Array(oPayload),
			pq.Array(iKind), pq.Array(iBucket))
	}
	_, err := txExec(ctx, tx, query, args...)
	if err != nil {
		return fmt.Errorf("replace ledger of customer %s: %w", customerRef, translate(err))
	}
	return nil
}
