package postgres

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// applyBatch applies events in one transaction (group commit, event2_group.go)
// with the rules of ApplyEvent, in a fixed number of statements whatever
// the batch's size for the common events (subscriptions):
//
//  1. qRecordEvents: every event ID (ON CONFLICT DO NOTHING: a duplicate,
//     sequential or concurrent on any replica, stops there), then the
//     shared subject locks of the first deliveries, sorted;
//  2. qLockCustomers: the tombstone lookup (a new statement, so its
//     snapshot sees an erasure that committed while the locks were
//     awaited), of the subjects and of the accounts the hints name, and
//     the upsert of every customer the events name, sorted by ID; a
//     customer's row lock serialises everything about it;
//  3. links from hints (a statement only when an existing, unlinked
//     customer gets linked), then qWriteSubscriptions: every version into
//     the history, each subscription's newest into current state when it
//     is newer than what is stored, and the touched customers' histories;
//  4. customer, invoice and checkout events on the rows locked in step 2:
//     plain customer events (each its customer's only one) together in
//     two statements (applyPlainCustomers), the rest one by one
//     (applyCustomer, applyInvoice, applyCheckout);
//  5. qReplaceLedgers: the touched customers' ledgers re-derived from the
//     first version time in the batch on, the day rollup, outbox rows,
//     cache invalidations and the outcomes that differ from the provisional
//     one.
//
// Locks are always taken in the same order (event IDs, subject locks,
// customer IDs, each sorted), so two replicas' batches cannot deadlock on
// each other; erasure takes subject locks before rows, as here.
//
// Several versions of one subscription in a batch are applied as they
// would be one after another in version order: the ProfitWell sync gets
// every transition, and each event's outcome (applied or stale) is what it
// would be alone after the others older than it.
//
// lim bounds the transaction's lock waits and statements (event2_group.go's
// deadlines); zero values keep the server's settings.
func (s *Store) applyBatch(ctx context.Context, evs []billing.Event, lim txLimits) ([]batchResult, error) {
	if err := s.prepare(ctx, eventStatements[:]...); err != nil {
		return nil, err
	}
	var res []batchResult
	var b *batch
	err := s.inTx(ctx, func(sqltx *sqlx.Tx) error {
		// The ring is cached in the Store; a first load reads it on this
		// transaction's connection (erasureRingTx).
		ring, err := s.erasureRingTx(ctx, sqltx)
		if err != nil {
			return fmt.Errorf("check tombstones: %w", err)
		}
		b = &batch{tx: ptx{Tx: sqltx, s: s, ring: ring, erased: map[string]bool{}, changed: accountSet{},
			fin: &finWork{rederive: map[ledgerKey]time.Time{}}}}
		if !s.stmts.on {
			b.tx.plans = &sessionPlans{}
		}
		if err := b.tx.setLimits(ctx, lim); err != nil {
			return err
		}
		res, err = b.run(ctx, evs)
		if err == nil && s.keys.beforeBatchCommit != nil {
			s.keys.beforeBatchCommit()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Before any of the batch's callers is answered (event2_group.go closes their
	// waits after this returns): each then reads its own write.
	s.accountsCommitted(b.accounts, b.tx.changed)
	s.eventBatchAt.Store(time.Now().UnixNano())
	if b.factsQueued {
		s.wakeFactDeriver()
	}
	return res, nil
}

// qTxLimits sets the transaction's lock_timeout and statement_timeout; a
// NULL keeps the current value.
const qTxLimits = `SELECT set_config('lock_timeout', coalesce($1, current_setting('lock_timeout')), true),
       set_config('statement_timeout', coalesce($2, current_setting('statement_timeout')), true)`

// qTxLimitsAndPlans is qTxLimits that also lists the session's statements
// (sessionPlans): behind a pooler every round trip crosses it twice, and
// the list would otherwise cost one of its own in every transaction.
// Unnamed, so it needs no session statement itself; a small statement's
// parse and plan cost less than the round trip.
const qTxLimitsAndPlans = qTxLimits + `,
       ARRAY(` + qSessionStatements + `) AS plans`

// setLimits applies lim to the transaction, before its first lock; with
// session plans it reads the session's statements in the same round trip.
func (t ptx) setLimits(ctx context.Context, lim txLimits) error {
	if t.plans != nil && t.plans.have == nil {
		var a, b string
		var names pq.StringArray
		if err := t.Tx.QueryRowxContext(ctx, qTxLimitsAndPlans, pgMillis(lim.lock), pgMillis(lim.statement)).Scan(&a, &b, &names); err != nil {
			return fmt.Errorf("set transaction timeouts: %w", translate(err))
		}
		t.plans.found(names)
		return nil
	}
	if lim == (txLimits{}) {
		return nil
	}
	var a, b string
	if err := t.QueryRowxContext(ctx, qTxLimits, pgMillis(lim.lock), pgMillis(lim.statement)).Scan(&a, &b); err != nil {
		return fmt.Errorf("set transaction timeouts: %w", translate(err))
	}
	return nil
}

// pgMillis renders d as a duration setting: nil for 0 (keep the current
// one), else at least 1ms (0ms would mean no timeout at all).
func pgMillis(d time.Duration) *string {
	if d <= 0 {
		return nil
	}
	v := fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
	return &v
}

// batchItem is one event of a batch.
type batchItem struct {
	i        int // index in the batch (and its results)
	ev       billing.Event
	customer string   // the customer the event writes about; "" for none
	hint     string   // the account its hint names; "" for none
	keys     []int64  // subject (and hint account) lock keys, sorted
	hashes   [][]byte // subject tombstone hashes, every key of the erasure ring
	own      [][]byte // the customer's own hashes (a prefix of hashes)
	copyOf   int      // index of an earlier event of the batch with the same ID, or -1
	fresh    bool     // first delivery (or API fetch): to be applied
	first    billing.Outcome
	out      billing.Outcome
	linked   string          // account whose link this event made ("" none)
	linkOut  billing.Outcome // link_conflict or link_erased when the hint did not link
}

type batch struct {
	tx        ptx
	items     []*batchItem
	order     []*batchItem // items in the order the batch applies them (ordered)
	customers map[string]*lockedCustomer
	outbox    []outboxRow // ProfitWell sync rows, in the order applied
	accounts  accountSet  // accounts whose entitlement the subscription writes changed (feed rows in qReplaceLedgers)
	// factsQueued: qReplaceLedgers queued revenue facts to derive; the
	// deriver is woken after the commit (revenue_facts_deriver.go).
	factsQueued bool
}

func (b *batch) run(ctx context.Context, evs []billing.Event) ([]batchResult, error) {
	b.customers = map[string]*lockedCustomer{}
	b.accounts = accountSet{}
	ring := b.tx.ring
	seen := map[string]int{}
	for i, ev := range evs {
		ev.Created = versionTime(ev.Created)
		it := &batchItem{i: i, ev: ev, copyOf: -1, first: billing.OutcomeApplied}
		switch {
		case ev.FutureDated:
			it.first = billing.OutcomeFutureDated // recorded, never applied (billing.Event.FutureDated)
		case ev.Connect:
			it.first = billing.OutcomeIgnored
		}
		if !ev.FromAPI() {
			if j, ok := seen[ev.ID]; ok {
				it.copyOf = j
			} else {
				seen[ev.ID] = i
			}
		}
		ids := ev.Subjects()
		if len(ids) > 0 { // the customer first, never empty
			it.customer, it.hint = ids[0], ev.LinkHint()
			it.keys = sortedLockKeys(ids, it.hint)
			for _, id := range ids {
				if id != "" {
					it.hashes = append(it.hashes, ringHashes(ring, id)...)
				}
			}
			it.own = it.hashes[:ring.Len()]
		}
		b.items = append(b.items, it)
	}
	b.order = b.ordered()
	if err := b.recordEvents(ctx); err != nil {
		return nil, err
	}
	if err := b.lockCustomers(ctx); err != nil {
		return nil, err
	}
	live := make([]*batchItem, 0, len(b.items))
	for _, it := range b.order {
		if it.fresh && it.copyOf < 0 && it.out == "" {
			live = append(live, it)
		}
	}
	var subs []*batchItem
	for _, it := range live {
		if it.ev.Subscription != nil && !it.ev.Connect {
			subs = append(subs, it)
		}
	}
	ledgers, err := b.applySubscriptions(ctx, subs)
	if err != nil {
		return nil, err
	}
	for _, it := range subs {
		// Test mode only, and rare: a statement per clocked event.
		if err := recordCustomerTestClock(ctx, b.tx, it.ev.Subscription.CustomerID, it.ev.Subscription.TestClock); err != nil {
			return nil, err
		}
	}
	var plain []*batchItem
	if !b.tx.s.keys.customersOneByOne {
		plain = b.plainCustomers(live)
	}
	if err := applyPlainCustomers(ctx, b.tx, plain, b.customers); err != nil {
		return nil, err
	}
	for _, it := range live {
		if (it.ev.Subscription != nil && !it.ev.Connect) || slices.Contains(plain, it) {
			continue
		}
		o, err := applyEvent(ctx, b.tx, it.ev, b.customers[it.customer])
		if err != nil {
			return nil, err
		}
		it.out = o
	}
	if ledgers, err = b.addFinanceWork(ctx, ledgers); err != nil {
		return nil, err
	}
	if err := b.writeLedgers(ctx, ledgers); err != nil {
		return nil, err
	}
	res := make([]batchResult, len(b.items))
	for _, it := range b.items {
		switch {
		case it.copyOf >= 0:
			res[it.i].out = billing.OutcomeDuplicate
		case !it.fresh:
			res[it.i].out = billing.OutcomeDuplicate
		default:
			res[it.i].out = it.out
		}
	}
	return res, nil
}

// plainCustomers are the live customer events that applyPlainCustomers
// applies together: plain (plainCustomerEvent), and each its customer's
// only live event besides subscription ones, which the batch applied
// before (so its place in the order cannot matter).
func (b *batch) plainCustomers(live []*batchItem) []*batchItem {
	others := map[string]int{}
	for _, it := range live {
		if it.ev.Subscription == nil || it.ev.Connect {
			others[it.customer]++
		}
	}
	var plain []*batchItem
	for _, it := range live {
		if it.customer != "" && others[it.customer] == 1 && !it.ev.Connect && plainCustomerEvent(it.ev.Customer) {
			plain = append(plain, it)
		}
	}
	return plain
}

// ordered returns the batch's events in the order it applies them: by
// customer, then time, then ID; any fixed order would do, as deliveries
// may come in any order.
func (b *batch) ordered() []*batchItem {
	out := slices.Clone(b.items)
	slices.SortStableFunc(out, func(x, y *batchItem) int {
		return cmp.Or(cmp.Compare(x.customer, y.customer), x.ev.Created.Compare(y.ev.Created), cmp.Compare(x.ev.ID, y.ev.ID))
	})
	return out
}

// qRecordEvents records the events ($1..$5, sorted by ID so that two
// batches wait on each other's IDs in one order) and takes the subject
// locks ($7 event ID or ” for API fetches, $8 key) of the first
// deliveries only, in key order. A concurrent duplicate waits in the insert
// for the first delivery's transaction.
var qRecordEvents = `
WITH e AS (
    INSERT INTO stripe_events (event_id, event_type, created, livemode, outcome)
    SELECT u.id, u.type, u.created, u.livemode, u.outcome
    FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::boolean[], $5::text[]) AS u(id, type, created, livemode, outcome)
    ORDER BY u.id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), k AS (
    SELECT DISTINCT l.k FROM unnest($7::text[], $8::int[]) AS l(event_id, k)
    WHERE l.event_id = '' OR l.event_id IN (SELECT event_id FROM e)
)
SELECT (SELECT coalesce(array_agg(event_id), '{}') FROM e) AS fresh,
       (SELECT count(pg_advisory_xact_lock_shared($6, k)) FROM (SELECT k FROM k ORDER BY 1) AS keys) AS locked`

func (b *batch) recordEvents(ctx context.Context) error {
	var (
		ids, types, outcomes []string
		created              []string
		livemode             []bool
		lockEvent            = []string{}
		lockKey              = []int64{}
	)
	for _, it := range b.items {
		if it.copyOf >= 0 {
			continue
		}
		if !it.ev.FromAPI() {
			ids = append(ids, it.ev.ID)
			types = append(types, it.ev.Type)
			created = append(created, it.ev.Created.Format(time.RFC3339Nano))
			livemode = append(livemode, it.ev.Livemode)
			outcomes = append(outcomes, string(it.first))
		}
		for _, k := range it.keys {
			lockEvent = append(lockEvent, it.ev.ID)
			lockKey = append(lockKey, k)
		}
	}
	var fresh pq.StringArray
	var locked int64
	err := b.tx.QueryRowxContext(ctx, qRecordEvents, pq.Array(ids), pq.Array(types), pq.Array(created), pq.Array(livemode),
		pq.Array(outcomes), subjectLockSpace, pq.Array(lockEvent), pq.Array(lockKey)).Scan(&fresh, &locked)
	if err != nil {
		return fmt.Errorf("record events: %w", translate(err))
	}
	isFresh := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		isFresh[id] = true
	}
	for _, it := range b.items {
		it.fresh = it.ev.FromAPI() || isFresh[it.ev.ID]
		switch {
		case !it.fresh || it.copyOf >= 0:
		case it.ev.FutureDated:
			it.out = billing.OutcomeFutureDated
		case it.ev.Connect:
			it.out = billing.OutcomeIgnored // connected accounts: this service serves one platform
		}
	}
	return nil
}

// qLockCustomers looks up the tombstones of every subject ($5) and of the
// accounts the hints name ($8 hashes of $9 accounts), and upserts each
// customer ($1..$4, sorted by ID: one lock order for every batch) whose
// own ID is not tombstoned ($6 hashes of $7 customers). It runs after the
// subject and account locks were granted (qRecordEvents), so its snapshot
// shows any erasure that committed meanwhile. A first-seen customer is
// linked to its hint at once unless that account was erased; existing
// rows only get their row lock (link decides the rest). Events are dead
// when any of their subjects is tombstoned; the row is skipped when the
// customer's own ID is. Erasure tombstones a customer with its
// subscriptions, so the two never differ for a real event.
var qLockCustomers = `
WITH t AS (
    SELECT coalesce(array_agg(subject_hmac), '{}') AS found FROM tombstones WHERE subject_hmac = ANY($5::bytea[])
), d AS (
    SELECT coalesce(array_agg(DISTINCT o.cus), '{}') AS ids
    FROM unnest($6::bytea[], $7::text[]) AS o(hmac, cus), t WHERE o.hmac = ANY (t.found)
), e AS (
    SELECT coalesce(array_agg(DISTINCT a.acct), '{}') AS accts
    FROM unnest($8::bytea[], $9::text[]) AS a(hmac, acct)
    WHERE EXISTS (SELECT 1 FROM account_tombstones WHERE subject_hmac = a.hmac)
), c AS (
    INSERT INTO customers (stripe_customer_id, livemode, account_id, linked_via, linked_at)
    SELECT u.id, u.livemode, CASE WHEN u.erased THEN NULL ELSE NULLIF(u.hint, '') END,
           CASE WHEN u.erased THEN NULL ELSE NULLIF(u.via, '') END,
           CASE WHEN u.hint = '' OR u.erased THEN NULL ELSE now() END
    FROM (SELECT u.*, u.hint = ANY (e.accts) AS erased
          FROM unnest($1::text[], $2::boolean[], $3::text[], $4::text[]) AS u(id, livemode, hint, via), e) AS u, d
    WHERE NOT (u.id = ANY (d.ids))
    ORDER BY u.id
    ON CONFLICT (stripe_customer_id) DO UPDATE SET livemode = EXCLUDED.livemode, updated_at = now()
    RETURNING stripe_customer_id, customer_ref, account_id, deleted, (xmax = 0) AS inserted
)
SELECT c.stripe_customer_id, c.customer_ref::text, c.account_id, c.deleted, c.inserted,
       NULL::bytea[] AS found, NULL::text[] AS erased FROM c
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, t.found, e.accts FROM t, e`

func (b *batch) lockCustomers(ctx context.Context) error {
	type input struct {
		livemode  bool
		hint, via string
		own       [][]byte // the customer's tombstone hashes
	}
	in := map[string]*input{}
	var all [][]byte
	hints := map[string]bool{}
	for _, it := range b.order {
		if !it.fresh || it.copyOf >= 0 || it.out != "" || it.customer == "" {
			continue
		}
		all = append(all, it.hashes...)
		if it.hint != "" {
			hints[it.hint] = true
		}
		c := in[it.customer]
		if c == nil {
			c = &input{livemode: it.ev.Livemode, own: it.own}
			in[it.customer] = c
		}
		// A first-seen customer takes the hint of its first subscription
		// event in the order the batch applies them; other event types
		// link through their own code, as alone.
		if s := it.ev.Subscription; s != nil && s.AccountHint != "" && c.hint == "" {
			c.hint, c.via = s.AccountHint, string(viaSubscriptionMetadata)
		}
	}
	if len(in) == 0 {
		return nil
	}
	ids := make([]string, 0, len(in))
	for id := range in {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	live, firstHints, vias := make([]bool, len(ids)), make([]string, len(ids)), make([]string, len(ids))
	own, ownOf := [][]byte{}, []string{}
	for i, id := range ids {
		live[i], firstHints[i], vias[i] = in[id].livemode, in[id].hint, in[id].via
		for _, h := range in[id].own {
			own, ownOf = append(own, h), append(ownOf, id)
		}
	}
	hintHashes, hintOf := [][]byte{}, []string{}
	for acct := range hints {
		for _, h := range ringHashes(b.tx.ring, acct) {
			hintHashes, hintOf = append(hintHashes, h), append(hintOf, acct)
		}
	}
	if all == nil {
		all = [][]byte{}
	}
	rows, err := b.tx.QueryxContext(ctx, qLockCustomers, pq.Array(ids), pq.Array(live), pq.Array(firstHints), pq.Array(vias),
		pq.ByteaArray(all), pq.ByteaArray(own), pq.Array(ownOf), pq.ByteaArray(hintHashes), pq.Array(hintOf))
	if err != nil {
		return fmt.Errorf("lock customers: %w", translate(err))
	}
	defer rows.Close()
	var found [][]byte
	for rows.Next() {
		var r struct {
			ID        *string        `db:"stripe_customer_id"`
			Ref       *string        `db:"customer_ref"`
			AccountID *string        `db:"account_id"`
			Deleted   *bool          `db:"deleted"`
			Inserted  *bool          `db:"inserted"`
			Found     pq.ByteaArray  `db:"found"`
			Erased    pq.StringArray `db:"erased"`
		}
		if err := rows.StructScan(&r); err != nil {
			return fmt.Errorf("lock customers: %w", translate(err))
		}
		if r.ID == nil {
			found = r.Found
			for _, a := range r.Erased {
				b.tx.erased[a] = true
			}
			continue
		}
		c := &lockedCustomer{Ref: *r.Ref, Deleted: *r.Deleted, Inserted: *r.Inserted}
		if r.AccountID != nil {
			c.AccountID.String, c.AccountID.Valid = *r.AccountID, true
		}
		b.customers[*r.ID] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock customers: %w", translate(err))
	}
	for _, it := range b.items {
		if !it.fresh || it.copyOf >= 0 || it.out != "" || it.customer == "" {
			continue
		}
		for _, h := range it.hashes {
			if slices.ContainsFunc(found, func(f []byte) bool { return bytes.Equal(f, h) }) {
				it.out = billing.OutcomeTombstoned
				break
			}
		}
		if it.out == "" && b.customers[it.customer] == nil {
			return fmt.Errorf("lock customers: no row for an event's customer")
		}
	}
	return nil
}
