package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
)

// Subscription events of a batch: current state (subscriptions) and state
// history (subscription_versions). Every version goes into the history,
// late ones included, because metrics derive from it; current state moves
// only to a newer version key (billing/order.go). All of it is written
// under the owning customers' row locks (qLockCustomers), so versions of
// one customer never interleave between transactions.

// subVersionInput is one version as qWriteSubscriptions reads it
// (jsonb_to_recordset): the subscription under its column names
// (subscriptionDoc, the store's own shape) and what the statement adds.
type subVersionInput struct {
	subscriptionDoc
	CustomerRef string `json:"customer_ref"`
	MRR         int64  `json:"mrr_minor"`
	Fixed       bool   `json:"mrr_fixed"`
	Newest      bool   `json:"newest"`  // the subscription's newest version in the batch
	CusNew      bool   `json:"cus_new"` // customer first seen in this batch: no history to read
}

// qWriteSubscriptions writes a batch's versions ($1) in one statement:
//
//   - old: each subscription's current state before, for the change records;
//   - up: each subscription's newest version of the batch inserted, or
//     replacing current state when its version key is newer (the WHERE
//     guard, byte-order collation as in Go's billing.VersionKey); a first
//     insert takes over invoice facts that arrived before the subscription
//     (pending_invoice_facts, deleted in the same statement);
//   - v: every version into the state history, newer or not (a version
//     already there, same key, is skipped);
//   - h: the touched customers' histories as they were before (the
//     statement's snapshot does not show v's rows), none read for customers
//     first seen in this batch; the caller adds the batch's versions, which
//     it has, instead of decoding them back.
//
// Lookups are LATERAL subqueries with OFFSET 0 (and deletes go by ctid):
// the statement is prepared once, and a generic plan made while a table
// was small would otherwise hash-join a full scan of it on every batch.
// This shape is an index probe per row whatever the statistics said.
const qWriteSubscriptions = `
WITH u AS (
    SELECT r.stripe_subscription_id AS sub_id, r.stripe_customer_id AS cus_id, r.* FROM jsonb_to_recordset($1::jsonb) AS r(
        stripe_subscription_id text, stripe_customer_id text, customer_ref uuid, livemode boolean, status text, currency text, items jsonb,
        items_incomplete boolean, discounts jsonb, mrr_minor bigint, mrr_fixed boolean, created timestamptz,
        start_date timestamptz, current_period_start timestamptz, current_period_end timestamptz,
        trial_start timestamptz, trial_end timestamptz, cancel_at timestamptz, cancel_at_period_end boolean,
        canceled_at timestamptz, ended_at timestamptz, collection_paused boolean, pending_update jsonb,
        automatic_tax boolean, version_at timestamptz,
        version_rank smallint, version_event text, newest boolean, cus_new boolean)
), old AS (
    SELECT u.sub_id, s.subscription_ref, to_jsonb(s) AS state
    FROM u CROSS JOIN LATERAL (
        SELECT * FROM subscriptions s WHERE s.stripe_subscription_id = u.sub_id OFFSET 0
    ) AS s
    WHERE u.newest
), p AS (
    DELETE FROM pending_invoice_facts d USING (
        SELECT x.ctid AS row FROM u CROSS JOIN LATERAL (
            SELECT ctid FROM pending_invoice_facts WHERE stripe_subscription_id = u.sub_id OFFSET 0
        ) AS x
        WHERE u.newest) AS x
    WHERE d.ctid = x.row
    RETURNING stripe_subscription_id AS sub_id, latest_invoice_status, invoice_attempt_count,
              next_payment_attempt, invoice_version_at
), up AS (
    INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, customer_ref, livemode, status,
        currency, items, items_incomplete, discounts, mrr_minor, mrr_fixed, created, start_date,
        current_period_start, current_period_end, trial_start, trial_end, cancel_at, cancel_at_period_end,
        canceled_at, ended_at, collection_paused, pending_update, automatic_tax, version_at, version_rank, version_event,
        latest_invoice_status, invoice_attempt_count, next_payment_attempt, invoice_version_at)
    SELECT u.sub_id, u.cus_id, u.customer_ref, u.livemode, u.status, u.currency, u.items, u.items_incomplete,
        u.discounts, u.mrr_minor, u.mrr_fixed, u.created, u.start_date, u.current_period_start,
        u.current_period_end, u.trial_start, u.trial_end, u.cancel_at, u.cancel_at_period_end, u.canceled_at,
        u.ended_at, u.collection_paused, u.pending_update, u.automatic_tax, u.version_at, u.version_rank, u.version_event,
        p.latest_invoice_status, COALESCE(p.invoice_attempt_count, 0), p.next_payment_attempt, p.invoice_version_at
    FROM u LEFT JOIN p ON p.sub_id = u.sub_id
    WHERE u.newest
    ORDER BY u.sub_id
    ON CONFLICT (stripe_subscription_id) DO UPDATE SET
        livemode = EXCLUDED.livemode, status = EXCLUDED.status, currency = EXCLUDED.currency,
        items = EXCLUDED.items, items_incomplete = EXCLUDED.items_incomplete, discounts = EXCLUDED.discounts,
        mrr_minor = EXCLUDED.mrr_minor, mrr_fixed = EXCLUDED.mrr_fixed, created = EXCLUDED.created,
        start_date = EXCLUDED.start_date, current_period_start = EXCLUDED.current_period_start,
        current_period_end = EXCLUDED.current_period_end, trial_start = EXCLUDED.trial_start,
        trial_end = EXCLUDED.trial_end, cancel_at = EXCLUDED.cancel_at,
        cancel_at_period_end = EXCLUDED.cancel_at_period_end, canceled_at = EXCLUDED.canceled_at,
        ended_at = EXCLUDED.ended_at, collection_paused = EXCLUDED.collection_paused,
        pending_update = EXCLUDED.pending_update, automatic_tax = EXCLUDED.automatic_tax,
        version_at = EXCLUDED.version_at, version_rank = EXCLUDED.version_rank,
        version_event = EXCLUDED.version_event, updated_at = now()
    WHERE (subscriptions.version_at, subscriptions.version_rank, subscriptions.version_event COLLATE "C")
        < (EXCLUDED.version_at, EXCLUDED.version_rank, EXCLUDED.version_event COLLATE "C")
    RETURNING stripe_subscription_id AS sub_id, subscription_ref
), ref AS (
    SELECT n.sub_id, COALESCE(up.subscription_ref, old.subscription_ref) AS r, up.sub_id IS NOT NULL AS changed,
           old.state
    FROM (SELECT sub_id FROM u WHERE newest) AS n LEFT JOIN up USING (sub_id) LEFT JOIN old USING (sub_id)
), v AS (
    INSERT INTO subscription_versions (subscription_ref, customer_ref, livemode, status, currency, items,
        discounts, mrr_minor, mrr_fixed, current_period_start, current_period_end, trial_end, cancel_at,
        cancel_at_period_end, ended_at, automatic_tax, version_at, version_rank, version_event)
    SELECT ref.r, u.customer_ref, u.livemode, u.status, u.currency, u.items, u.discounts, u.mrr_minor, u.mrr_fixed,
        u.current_period_start, u.current_period_end, u.trial_end, u.cancel_at, u.cancel_at_period_end,
        u.ended_at, u.automatic_tax, u.version_at, u.version_rank, u.version_event
    FROM u JOIN ref USING (sub_id)
    ON CONFLICT (subscription_ref, version_at, version_rank, version_event) DO NOTHING
), h AS (
    SELECT x.* FROM (SELECT DISTINCT customer_ref, livemode FROM u WHERE NOT cus_new) AS c CROSS JOIN LATERAL (
        SELECT customer_ref, ` + historyColumns + ` FROM subscription_versions
        WHERE customer_ref = c.customer_ref AND livemode = c.livemode OFFSET 0
    ) AS x
)
SELECT (SELECT json_agg(json_build_object('sub_id', sub_id, 'ref', r, 'changed', changed, 'old', state)) FROM ref) AS subs,
       (SELECT json_agg(h) FROM h) AS history`

// historyColumns are the subscription_versions columns the derivation
// reads (versionRow).
const historyColumns = `subscription_ref, livemode, status, currency, items, discounts,
    current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end, ended_at,
    automatic_tax, version_at, version_rank, version_event`

// ledgerKey names one customer's ledger in one mode.
type ledgerKey struct {
	ref      string
	livemode bool
}

// ledgerWork is a ledger to re-derive: from since (the batch's earliest
// version of the customer) on, from the customer's history.
type ledgerWork struct {
	since    time.Time
	versions []billing.SubscriptionVersion
	fresh    bool // customer first seen in this batch: no stored rows to replace
	// The customer's discounts and tax facts (loadLedgerInputs).
	discounts []billing.CustomerDiscountVersion
	tax       []billing.TaxFact
}

// subscriptionGroup is the batch's versions of one subscription, oldest first.
type subscriptionGroup struct {
	id     string
	items  []*batchItem
	keys   []billing.VersionKey
	newest int // index of the version written as current-state candidate
}

// applySubscriptions links and writes the batch's subscription events
// (ordered as b.ordered) and returns the ledgers they touch. Each event's
// outcome is set; the outbox rows and accounts to invalidate are queued on b.
func (b *batch) applySubscriptions(ctx context.Context, subs []*batchItem) (map[ledgerKey]*ledgerWork, error) {
	if len(subs) == 0 {
		return nil, nil
	}
	var groups []*subscriptionGroup
	byID := map[string]*subscriptionGroup{}
	for _, it := range subs {
		s := it.ev.Subscription
		c := b.customers[s.CustomerID]
		out, linked, err := link(ctx, b.tx, s.CustomerID, c, s.AccountHint, viaSubscriptionMetadata, c.Inserted)
		if err != nil {
			return nil, err
		}
		if out != billing.OutcomeApplied {
			it.linkOut = out // link_conflict or link_erased: reported whatever the version did
		}
		it.linked = linked
		g := byID[s.ID]
		if g == nil {
			g = &subscriptionGroup{id: s.ID}
			byID[s.ID] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, it)
	}
	var in []subVersionInput
	for _, g := range groups {
		slices.SortStableFunc(g.items, func(x, y *batchItem) int { return versionKey(x).Compare(versionKey(y)) })
		for i, it := range g.items {
			g.keys = append(g.keys, versionKey(it))
			if i > 0 && g.keys[i].Compare(g.keys[i-1]) == 0 {
				continue // same key twice (two API fetches in one microsecond): one version
			}
			c := b.customers[it.ev.Subscription.CustomerID]
			row, err := versionInput(it, c.Ref)
			if err != nil {
				return nil, err
			}
			row.CusNew = c.Inserted
			in = append(in, row)
			g.newest = i
		}
		in[len(in)-1].Newest = true
	}
	doc, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("write subscriptions: encode versions: %w", err)
	}
	var res struct {
		Subs    []byte `db:"subs"`
		History []byte `db:"history"`
	}
	if err := b.tx.QueryRowxContext(ctx, qWriteSubscriptions, string(doc)).StructScan(&res); err != nil {
		return nil, fmt.Errorf("write subscriptions: %w", translate(err))
	}
	var written []struct {
		SubID   string          `json:"sub_id"`
		Ref     string          `json:"ref"`
		Changed bool            `json:"changed"`
		Old     json.RawMessage `json:"old"`
	}
	if err := json.Unmarshal(res.Subs, &written); err != nil {
		return nil, fmt.Errorf("write subscriptions: read result: %w", err)
	}
	type change struct {
		it  *batchItem
		row []outboxRow
	}
	var changes []change
	for _, w := range written {
		g := byID[w.SubID]
		if g == nil {
			return nil, fmt.Errorf("write subscriptions: result for a subscription not in the batch")
		}
		// Walk the batch's versions oldest first from the stored state, as
		// one delivery after another: each newer one is a change.
		var cur *billing.Subscription
		var curKey *billing.VersionKey
		if len(w.Old) > 0 && string(w.Old) != "null" {
			var o subscriptionDoc
			if err := json.Unmarshal(w.Old, &o); err != nil {
				return nil, fmt.Errorf("read previous subscription state: %w", err)
			}
			prev, k := o.toSubscription()
			cur, curKey = &prev, &k
		}
		newest := false
		for i, it := range g.items {
			k := g.keys[i]
			s := *it.ev.Subscription
			c := b.customers[s.CustomerID]
			applied := curKey == nil || k.NewerThan(*curKey)
			switch {
			case it.linkOut != "":
				it.out = it.linkOut
			case applied:
				it.out = billing.OutcomeApplied
			default:
				it.out = billing.OutcomeStale
			}
			if it.linked != "" {
				b.accounts[it.linked] = true
			}
			if !applied {
				continue
			}
			newest = i == g.newest
			if c.AccountID.Valid && !c.Deleted {
				b.accounts[c.AccountID.String] = true
			}
			if s.Livemode {
				rows, err := subscriptionSyncRows(SubscriptionChange{Prev: cur, Next: s, CustomerRef: c.Ref, SubscriptionRef: w.Ref, At: it.ev.Created})
				if err != nil {
					return nil, fmt.Errorf("enqueue subscription sync: %w", err)
				}
				changes = append(changes, change{it: it, row: rows})
			}
			cur, curKey = &s, &k
		}
		if newest != w.Changed {
			// The guard in SQL and billing.VersionKey disagree: a bug, and
			// a loud one, rather than a sync that contradicts the rows.
			return nil, fmt.Errorf("write subscriptions: version order in SQL and Go disagree")
		}
	}
	// One customer's outbox rows in the order the batch applied its events.
	slices.SortStableFunc(changes, func(x, y change) int {
		return cmp.Or(cmp.Compare(x.it.customer, y.it.customer), x.it.ev.Created.Compare(y.it.ev.Created), cmp.Compare(x.it.ev.ID, y.it.ev.ID))
	})
	for _, ch := range changes {
		b.outbox = append(b.outbox, ch.row...)
	}

	ledgers := map[ledgerKey]*ledgerWork{}
	for _, it := range subs {
		k := ledgerKey{ref: b.customers[it.ev.Subscription.CustomerID].Ref, livemode: it.ev.Subscription.Livemode}
		l := ledgers[k]
		if l == nil {
			ledgers[k] = &ledgerWork{since: it.ev.Created, fresh: b.customers[it.ev.Subscription.CustomerID].Inserted}
		} else if it.ev.Created.Before(l.since) {
			l.since = it.ev.Created
		}
	}
	if err := addStoredHistory(ledgers, res.History); err != nil {
		return nil, err
	}
	// The batch's versions, except those the history already had (same
	// subscription and key: a redelivered API fetch), as the history
	// stores them (historyState).
	refs := make(map[string]string, len(written))
	for _, w := range written {
		refs[w.SubID] = w.Ref
	}
	for _, g := range groups {
		for i, it := range g.items {
			if i > 0 && g.keys[i].Compare(g.keys[i-1]) == 0 {
				continue
			}
			s := it.ev.Subscription
			l := ledgers[ledgerKey{ref: b.customers[s.CustomerID].Ref, livemode: s.Livemode}]
			v := billing.SubscriptionVersion{SubscriptionRef: refs[s.ID], At: g.keys[i].At, Rank: g.keys[i].Rank,
				Event: g.keys[i].Event, State: historyState(*s)}
			if !slices.ContainsFunc(l.versions, func(o billing.SubscriptionVersion) bool {
				return o.SubscriptionRef == v.SubscriptionRef && o.At.Equal(v.At) && o.Rank == v.Rank && o.Event == v.Event
			}) {
				l.versions = append(l.versions, v)
			}
		}
	}
	return ledgers, nil
}

// historyState is the part of a subscription's state that its history row
// keeps (subscription_versions; versionRow.toVersion reads it back).
func historyState(s billing.Subscription) billing.Subscription {
	items, discounts := s.Items, s.Discounts
	if items == nil {
		items = []billing.Item{}
	}
	if discounts == nil {
		discounts = []billing.Discount{}
	}
	return billing.Subscription{
		Livemode: s.Livemode, Status: s.Status, Currency: s.Currency, Items: items, Discounts: discounts,
		CurrentPeriodStart: s.CurrentPeriodStart, CurrentPeriodEnd: s.CurrentPeriodEnd, TrialEnd: s.TrialEnd,
		CancelAt: s.CancelAt, CancelAtPeriodEnd: s.CancelAtPeriodEnd, EndedAt: s.EndedAt, AutomaticTax: s.AutomaticTax,
	}
}

// addStoredHistory adds the stored versions qWriteSubscriptions returned
// (a JSON array of customer_ref plus historyColumns, or NULL) to their
// ledgers.
func addStoredHistory(ledgers map[ledgerKey]*ledgerWork, history []byte) error {
	if len(history) > 0 {
		var rows []struct {
			CustomerRef string `json:"customer_ref"`
			historyRow
		}
		if err := json.Unmarshal(history, &rows); err != nil {
			return fmt.Errorf("decode customer history: %w", err)
		}
		for _, r := range rows {
			l := ledgers[ledgerKey{ref: r.CustomerRef, livemode: r.Livemode}]
			if l == nil {
				continue
			}
			v, err := r.historyRow.toVersion()
			if err != nil {
				return err
			}
			l.versions = append(l.versions, v)
		}
	}
	return nil
}

// versionTime is a version's time at the precision PostgreSQL stores
// (microseconds, truncated, where the server would round): Go's
// billing.VersionKey and the guard in qWriteSubscriptions then compare the
// same instants.
func versionTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// versionKey is the version key of a subscription event.
func versionKey(it *batchItem) billing.VersionKey {
	return billing.SubscriptionVersionKey(*it.ev.Subscription, it.ev.Created, it.ev.ID)
}

// versionInput is it's version as qWriteSubscriptions reads it.
func versionInput(it *batchItem, customerRef string) (subVersionInput, error) {
	s := *it.ev.Subscription
	mrr, fixed := billing.SubscriptionMRR(s)
	return subVersionInput{subscriptionDoc: toSubscriptionDoc(s, versionKey(it)), CustomerRef: customerRef,
		MRR: mrr, Fixed: fixed}, nil
}
