package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// qReplaceLedgers rewrites the derived rows of several customers' ledgers
// in one statement, and appends what the transaction's events queue after
// them:
//
//   - f ($1): the ledgers, each (customer, mode) with the time from which
//     its rows are replaced; derivation is causal (rows before that time
//     depend only on versions before it), so the rows kept stay right;
//   - the movements ($2) and activity ($3) from those times on;
//   - outbox rows ($4..$7, inserted in array order, so their IDs keep the
//     order the events were applied in), cache invalidations ($8, $9) and
//     the events' final outcomes ($10, $11);
//   - the revenue_daily rollup: the net change per mode, currency and day,
//     in numeric (migration 0094): no sum of stored amounts can overflow.
//     Rollup rows are appended, never updated, so concurrent transactions
//     never queue on a shared day row; a day whose changes cancel out
//     appends nothing.
//
// The DELETEs and INSERTs of one statement share a snapshot, so the
// deletes cannot see (and remove) the rows being inserted. Unreferenced
// data-modifying CTEs still run to completion. Rows are found by LATERAL
// index probes and deleted or updated by ctid (the transaction holds the
// customers' row locks, so nobody else moves them): the statement is
// prepared once, and a generic plan made while the tables were small
// would otherwise scan them whole on every batch.
const qReplaceLedgers = `
WITH f AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS f(cref uuid, livemode boolean, since timestamptz)
), del_m AS (
    DELETE FROM mrr_movements d USING (
        SELECT x.ctid AS row FROM f CROSS JOIN LATERAL (
            SELECT ctid FROM mrr_movements m
            WHERE m.customer_ref = f.cref AND m.livemode = f.livemode AND m.effective_at >= f.since OFFSET 0
        ) AS x) AS x
    WHERE d.ctid = x.row
    RETURNING -1 AS sign, d.livemode, d.currency, d.effective_at, d.kind, d.delta_minor
), del_a AS (
    DELETE FROM subscription_activity d USING (
        SELECT x.ctid AS row FROM f CROSS JOIN LATERAL (
            SELECT ctid FROM subscription_activity a
            WHERE a.customer_ref = f.cref AND a.livemode = f.livemode AND a.effective_at >= f.since OFFSET 0
        ) AS x) AS x
    WHERE d.ctid = x.row
    RETURNING -1 AS sign, d.livemode, d.currency, d.effective_at, d.delta
), ins_m AS (
    INSERT INTO mrr_movements (customer_ref, subscription_ref, livemode, currency, effective_at, kind,
                               delta_minor, customer_mrr_before, customer_mrr_after)
    SELECT u.cref, NULLIF(u.sub_ref, '')::uuid, u.livemode, u.currency, u.at, u.kind, u.delta, u.before, u.after
    FROM jsonb_to_recordset($2::jsonb) AS u(cref uuid, sub_ref text, livemode boolean, currency text,
                                           at timestamptz, kind text, delta bigint, before bigint, after bigint)
    RETURNING 1 AS sign, livemode, currency, effective_at, kind, delta_minor
), ins_a AS (
    INSERT INTO subscription_activity (customer_ref, subscription_ref, livemode, currency, effective_at, delta)
    SELECT u.cref, u.sub_ref::uuid, u.livemode, u.currency, u.at, u.delta
    FROM jsonb_to_recordset($3::jsonb) AS u(cref uuid, sub_ref text, livemode boolean, currency text,
                                           at timestamptz, delta smallint)
    RETURNING 1 AS sign, livemode, currency, effective_at, delta
), changes AS (
    SELECT sign, livemode, currency, effective_at, kind, delta_minor, 0 AS active FROM del_m
    UNION ALL SELECT sign, livemode, currency, effective_at, kind, delta_minor, 0 FROM ins_m
    UNION ALL SELECT sign, livemode, currency, effective_at, NULL, 0, delta FROM del_a
    UNION ALL SELECT sign, livemode, currency, effective_at, NULL, 0, delta FROM ins_a
), ob AS (
    INSERT INTO outbox (kind, ordering_key, action, payload)
    SELECT u.kind, u.ordering_key, u.action, u.payload::jsonb
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
         AS u(kind, ordering_key, action, payload, n)
    ORDER BY u.n
    RETURNING id
), inv AS (
    INSERT INTO cache_invalidations (kind, bucket)
    SELECT u.kind, u.bucket FROM unnest($8::smallint[], $9::integer[]) AS u(kind, bucket)
), dirty AS (
    INSERT INTO entitlement_dirty (account_id) SELECT unnest($12::text[]) -- the change feed (changes.go)
), oc AS (
    UPDATE stripe_events e SET outcome = x.outcome
    FROM (SELECT u.outcome, s.ctid AS row
          FROM unnest($10::text[], $11::text[]) AS u(event_id, outcome) CROSS JOIN LATERAL (
              SELECT ctid FROM stripe_events WHERE event_id = u.event_id OFFSET 0
          ) AS s) AS x
    WHERE e.ctid = x.row
)
INSERT INTO revenue_daily (livemode, currency, day, mrr_delta, new_minor, expansion_minor, contraction_minor,
                           churn_minor, reactivation_minor, paying_delta, churned_customers, active_delta)
SELECT livemode, currency, day, sum(mrr_delta), sum(new_minor), sum(expansion_minor), sum(contraction_minor),
       sum(churn_minor), sum(reactivation_minor), sum(paying_delta), sum(churned_customers), sum(active_delta)
FROM (
    SELECT livemode, currency, (effective_at AT TIME ZONE 'UTC')::date AS day,
           sign * delta_minor::numeric AS mrr_delta,
           CASE WHEN kind = 'new' THEN sign * delta_minor::numeric ELSE 0 END AS new_minor,
           CASE WHEN kind = 'expansion' THEN sign * delta_minor::numeric ELSE 0 END AS expansion_minor,
           CASE WHEN kind = 'contraction' THEN -sign * delta_minor::numeric ELSE 0 END AS contraction_minor,
           CASE WHEN kind = 'churn' THEN -sign * delta_minor::numeric ELSE 0 END AS churn_minor,
           CASE WHEN kind = 'reactivation' THEN sign * delta_minor::numeric ELSE 0 END AS reactivation_minor,
           CASE WHEN kind IN ('new', 'reactivation') THEN sign WHEN kind = 'churn' THEN -sign ELSE 0 END AS paying_delta,
           CASE WHEN kind = 'churn' THEN sign ELSE 0 END AS churned_customers,
           sign * active AS active_delta
    FROM changes
) c
GROUP BY livemode, currency, day
HAVING sum(mrr_delta) <> 0 OR sum(new_minor) <> 0 OR sum(expansion_minor) <> 0 OR sum(contraction_minor) <> 0
    OR sum(churn_minor) <> 0 OR sum(reactivation_minor) <> 0 OR sum(paying_delta) <> 0
    OR sum(churned_customers) <> 0 OR sum(active_delta) <> 0`

// ledgerWrite collects one qReplaceLedgers statement.
type ledgerWrite struct {
	ledgers   []ledgerRange
	movements []movementInput
	activity  []activityInput
	outbox    []outboxRow
	accounts  []string // entitlement caches to invalidate
	outcomes  map[string]billing.Outcome
}

type ledgerRange struct {
	CustomerRef string    `json:"cref"`
	Livemode    bool      `json:"livemode"`
	Since       time.Time `json:"since"`
}

type movementInput struct {
	CustomerRef     string               `json:"cref"`
	SubscriptionRef string               `json:"sub_ref"`
	Livemode        bool                 `json:"livemode"`
	Currency        string               `json:"currency"`
	At              time.Time            `json:"at"`
	Kind            billing.MovementKind `json:"kind"`
	Delta           int64                `json:"delta"`
	Before          int64                `json:"before"`
	After           int64                `json:"after"`
}

type activityInput struct {
	CustomerRef     string    `json:"cref"`
	SubscriptionRef string    `json:"sub_ref"`
	Livemode        bool      `json:"livemode"`
	Currency        string    `json:"currency"`
	At              time.Time `json:"at"`
	Delta           int       `json:"delta"`
}

// add replaces customerRef's ledger in one mode from `from` on with l's
// rows in that range; stored false: the customer has no rows yet, so
// there is nothing to delete.
func (w *ledgerWrite) add(customerRef string, livemode bool, from time.Time, l billing.Ledger, stored bool) {
	if stored {
		w.ledgers = append(w.ledgers, ledgerRange{CustomerRef: customerRef, Livemode: livemode, Since: from})
	}
	for _, m := range l.Movements {
		if m.At.Before(from) || m.Livemode != livemode {
			continue
		}
		w.movements = append(w.movements, movementInput{CustomerRef: customerRef, SubscriptionRef: m.SubscriptionRef,
			Livemode: m.Livemode, Currency: m.Currency, At: m.At.UTC(), Kind: m.Kind, Delta: m.Delta,
			Before: m.Before, After: m.After})
	}
	for _, a := range l.Activity {
		if a.At.Before(from) || a.Livemode != livemode {
			continue
		}
		w.activity = append(w.activity, activityInput{CustomerRef: customerRef, SubscriptionRef: a.SubscriptionRef,
			Livemode: a.Livemode, Currency: a.Currency, At: a.At.UTC(), Delta: a.Delta})
	}
}

func (w *ledgerWrite) empty() bool {
	return len(w.ledgers) == 0 && len(w.movements) == 0 && len(w.activity) == 0 && len(w.outbox) == 0 &&
		len(w.accounts) == 0 && len(w.outcomes) == 0
}

// exec runs the statement in tx (prepared when tx is the event path's ptx).
func (w *ledgerWrite) exec(ctx context.Context, tx sqlx.ExecerContext) error {
	if w.empty() {
		return nil
	}
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		if string(b) == "null" {
			return "[]", err
		}
		return string(b), err
	}
	ledgers, err := enc(w.ledgers)
	if err != nil {
		return fmt.Errorf("replace ledgers: %w", err)
	}
	movements, err := enc(w.movements)
	if err != nil {
		return fmt.Errorf("replace ledgers: %w", err)
	}
	activity, err := enc(w.activity)
	if err != nil {
		return fmt.Errorf("replace ledgers: %w", err)
	}
	oKind, oKey, oAction, oPayload := []string{}, []string{}, []string{}, []string{}
	for _, r := range w.outbox {
		oKind = append(oKind, r.Kind)
		oKey = append(oKey, r.OrderingKey)
		oAction = append(oAction, r.Action)
		oPayload = append(oPayload, string(r.Payload))
	}
	iKind, iBucket := []int64{}, []int64{}
	buckets := map[uint16]bool{}
	for _, a := range w.accounts { // as notifyAccountChange, one row per bucket
		if b := billing.CacheBucket(a); a != "" && !buckets[b] {
			buckets[b] = true
			iKind = append(iKind, invalidationAccount)
			iBucket = append(iBucket, int64(b))
		}
	}
	dirty := []string{}
	for _, a := range w.accounts {
		if a != "" {
			dirty = append(dirty, a)
		}
	}
	eIDs, eOut := []string{}, []string{}
	for id, o := range w.outcomes {
		eIDs = append(eIDs, id)
		eOut = append(eOut, string(o))
	}
	_, err = tx.ExecContext(ctx, qReplaceLedgers, ledgers, movements, activity,
		pq.Array(oKind), pq.Array(oKey), pq.Array(oAction), pq.Array(oPayload),
		pq.Array(iKind), pq.Array(iBucket), pq.Array(eIDs), pq.Array(eOut), pq.Array(dirty))
	if err != nil {
		return fmt.Errorf("replace ledgers: %w", translate(err))
	}
	return nil
}

// replaceLedger deletes a customer's derived rows (movements and activity)
// effective at or after from, inserts l's rows in that range and appends
// the net change per day to the revenue_daily rollup, in one statement.
func replaceLedger(ctx context.Context, tx *sqlx.Tx, customerRef string, livemode bool, from time.Time, l billing.Ledger) error {
	var w ledgerWrite
	w.add(customerRef, livemode, from, l, true)
	if err := w.exec(ctx, tx); err != nil {
		return fmt.Errorf("customer %s: %w", customerRef, err)
	}
	return nil
}

// writeLedgers re-derives the ledgers the batch's subscription events
// touched and appends the batch's outbox rows, cache invalidations and
// final outcomes, in one statement.
func (b *batch) writeLedgers(ctx context.Context, ledgers map[ledgerKey]*ledgerWork) error {
	w := ledgerWrite{outbox: b.outbox, outcomes: map[string]billing.Outcome{}}
	keys := make([]ledgerKey, 0, len(ledgers))
	for k := range ledgers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y ledgerKey) int {
		if x.ref != y.ref {
			if x.ref < y.ref {
				return -1
			}
			return 1
		}
		if x.livemode == y.livemode {
			return 0
		}
		if x.livemode {
			return 1
		}
		return -1
	})
	for _, k := range keys {
		l := ledgers[k]
		w.add(k.ref, k.livemode, l.since, billing.DeriveCustomerLedger(l.history()), !l.fresh)
	}
	for a := range b.accounts {
		w.accounts = append(w.accounts, a)
	}
	slices.Sort(w.accounts)
	for _, it := range b.items {
		if it.fresh && it.copyOf < 0 && !it.ev.FromAPI() && it.out != it.first {
			w.outcomes[it.ev.ID] = it.out
		}
	}
	return w.exec(ctx, b.tx)
}
