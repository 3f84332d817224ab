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

// AuditActionErase is the audit_log action of an account erasure.
const AuditActionErase = "account.erase"

// StripeJobOrderingKey is the ordering key of a customer's Stripe jobs: its
// surrogate reference, never its Stripe ID.
func StripeJobOrderingKey(customerRef string) string { return "stripe:" + customerRef }

// erasedCustomer is a customer row the erasure locked.
type erasedCustomer struct {
	ID       string `db:"stripe_customer_id"`
	Ref      string `db:"customer_ref"`
	Livemode *bool  `db:"livemode"`
}

// erasedSubscription is a subscription row the erasure locked.
type erasedSubscription struct {
	ID          string         `db:"stripe_subscription_id"`
	Ref         string         `db:"subscription_ref"`
	CustomerRef string         `db:"customer_ref"`
	Status      billing.Status `db:"status"`
	Livemode    bool           `db:"livemode"`
}

// EraseAccount removes every link between an account and Stripe in one
// transaction: tombstones (keyed hashes) of the account ID and of its
// customer and subscription IDs, its subscriptions and customers rows, ProfitWell churns (and
// optionally erasures) by surrogate reference, Stripe jobs when asked, an
// audit record and a cache notification. History tables keep their rows
// under the random surrogate references, which nothing links to an ID any
// more. An unknown or already erased account is not an error: the result
// counts zero and the audit log still records the request; the account's
// own tombstone is written either way (an app may erase an account before
// any webhook about it arrived), and an earlier reuse of the ID is undone.
func (s *Store) EraseAccount(ctx context.Context, req billing.ErasureRequest) (billing.ErasureResult, error) {
	if !billing.ValidAccountID(req.AccountID) {
		return billing.ErasureResult{}, fmt.Errorf("erase account: malformed account ID: %w", billing.ErrInvalid)
	}
	if req.Actor == "" || len(req.Actor) > 80 {
		return billing.ErasureResult{}, fmt.Errorf("erase account: actor must be 1 to 80 characters: %w", billing.ErrInvalid)
	}
	ring, err := s.erasureRing(ctx)
	if err != nil {
		return billing.ErasureResult{}, fmt.Errorf("erase account: %w", err)
	}
	var res billing.ErasureResult
	changed := accountSet{}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		res, err = s.eraseTx(ctx, tx, ring, req, changed)
		if err == nil && s.keys.beforeEraseCommit != nil {
			s.keys.beforeEraseCommit()
		}
		return err
	})
	if err != nil {
		return billing.ErasureResult{}, fmt.Errorf("erase account: %w", err)
	}
	s.accountsCommitted(changed)
	return res, nil
}

// eraseTx is the body of EraseAccount.
func (s *Store) eraseTx(ctx context.Context, tx *sqlx.Tx, ring billing.KeyRing, req billing.ErasureRequest, changed accountSet) (billing.ErasureResult, error) {
	var res billing.ErasureResult
	key := ring.Writer()
	customers, err := lockAccountCustomers(ctx, tx, req.AccountID, ringHashes(ring, req.AccountID))
	if err != nil {
		return res, err
	}
	cusIDs := make([]string, len(customers))
	for i, c := range customers {
		cusIDs[i] = c.ID
	}
	subs, err := lockCustomerSubscriptions(ctx, tx, cusIDs)
	if err != nil {
		return res, err
	}
	res.Customers, res.Subscriptions = len(customers), len(subs)

	if err := recordKeyUse(ctx, tx, PurposeErasure, ring.Fingerprints()[0]); err != nil {
		return res, err
	}
	if res.Tombstones, err = writeTombstones(ctx, tx, key, customers, subs); err != nil {
		return res, err
	}
	if err := writeAccountTombstone(ctx, tx, key, req.AccountID); err != nil {
		return res, err
	}
	if err := enqueueErasureProfitWell(ctx, tx, req, customers, subs, &res); err != nil {
		return res, err
	}
	if err := enqueueErasureStripe(ctx, tx, req, customers, subs, &res); err != nil {
		return res, err
	}
	if err := forgetDiscountIDs(ctx, tx, customers); err != nil {
		return res, err
	}
	if err := rekeyHistory(ctx, tx, customers); err != nil {
		return res, err
	}
	if err := deleteLinks(ctx, tx, cusIDs); err != nil {
		return res, err
	}
	if err := eraseEntitlementExtras(ctx, tx, req.AccountID, cusIDs); err != nil {
		return res, err
	}
	if err := writeErasureAudit(ctx, tx, req, subjectHMAC(key, req.AccountID), res); err != nil {
		return res, err
	}
	if err := notifyAccountChange(ctx, tx, changed, req.AccountID); err != nil {
		return res, fmt.Errorf("notify account change: %w", err)
	}
	if err := eraseChangeFeed(ctx, tx, req.AccountID); err != nil {
		return res, err
	}
	return res, nil
}

// lockAccountCustomers locks the account's customers: first the account
// ID's and each customer ID's advisory lock (exclusive; the event path and
// the app API take them shared in qRecordEvents and checkTombstones, see
// there), then the rows. A customer linked to the account while the locks
// were being taken shows up in the locked read; the loop then takes its
// advisory lock too, until the set is stable. Once the account's lock is
// held, no new link to it can be in flight: a transaction that made one
// has committed (and shows up here), any other waits and then meets the
// account's tombstone.
//
// Customers Stripe deleted are no longer linked but keep the keyed hash of
// their former account (former_account_hmac, under any key of the ring):
// they are the account's too.
func lockAccountCustomers(ctx context.Context, tx *sqlx.Tx, accountID string, accountHMACs [][]byte) ([]erasedCustomer, error) {
	const qIDs = `
SELECT stripe_customer_id FROM customers WHERE account_id = $1 OR former_account_hmac = ANY($2) ORDER BY stripe_customer_id`
	const qLock = `
SELECT count(pg_advisory_xact_lock($1, k))
FROM (SELECT unnest($2::int[]) AS k ORDER BY 1) AS keys`
	const qRows = `
SELECT stripe_customer_id, customer_ref, livemode
FROM customers
WHERE account_id = $1 OR former_account_hmac = ANY($2)
ORDER BY stripe_customer_id
FOR UPDATE`
	var ids []string
	if err := tx.SelectContext(ctx, &ids, qIDs, accountID, pq.ByteaArray(accountHMACs)); err != nil {
		return nil, fmt.Errorf("list account customers: %w", translate(err))
	}
	locked := map[string]bool{}
	account := accountID // locked with the first customers, in one sorted set
	for {
		var todo []string
		for _, id := range ids {
			if !locked[id] {
				todo = append(todo, id)
			}
		}
		if len(todo) > 0 || account != "" {
			if _, err := tx.ExecContext(ctx, qLock, subjectLockSpace, pq.Array(sortedLockKeys(todo, account))); err != nil {
				return nil, fmt.Errorf("lock account customers: %w", translate(err))
			}
			for _, id := range todo {
				locked[id] = true
			}
			account = ""
		}
		var rows []erasedCustomer
		if err := tx.SelectContext(ctx, &rows, qRows, accountID, pq.ByteaArray(accountHMACs)); err != nil {
			return nil, fmt.Errorf("lock account customers: %w", translate(err))
		}
		ids = ids[:0]
		stable := true
		for _, r := range rows {
			ids = append(ids, r.ID)
			if !locked[r.ID] {
				stable = false
			}
		}
		if stable {
			return rows, nil
		}
	}
}

// lockCustomerSubscriptions locks the subscriptions of the given customers.
// Read after the customer locks: anything the event path wrote for them
// has committed by now.
func lockCustomerSubscriptions(ctx context.Context, tx *sqlx.Tx, customerIDs []string) ([]erasedSubscription, error) {
	const q = `
SELECT stripe_subscription_id, subscription_ref, customer_ref, status, livemode
FROM subscriptions
WHERE stripe_customer_id = ANY($1)
ORDER BY stripe_subscription_id
FOR UPDATE`
	if len(customerIDs) == 0 {
		return nil, nil
	}
	var subs []erasedSubscription
	if err := tx.SelectContext(ctx, &subs, q, pq.Array(customerIDs)); err != nil {
		return nil, fmt.Errorf("lock customer subscriptions: %w", translate(err))
	}
	return subs, nil
}

// writeTombstones records the keyed hash of every erased ID and returns how
// many were new (a tombstone may exist from an earlier erasure of a
// customer that was since re-created, e.g. by a reconcile run).
func writeTombstones(ctx context.Context, tx *sqlx.Tx, key []byte, customers []erasedCustomer, subs []erasedSubscription) (int, error) {
	const q = `
INSERT INTO tombstones (subject_hmac, kind)
SELECT h, k FROM unnest($1::bytea[], $2::text[]) AS t (h, k)
ON CONFLICT (subject_hmac) DO NOTHING`
	var hashes [][]byte
	var kinds []string
	for _, c := range customers {
		hashes = append(hashes, subjectHMAC(key, c.ID))
		kinds = append(kinds, "customer")
	}
	for _, sub := range subs {
		hashes = append(hashes, subjectHMAC(key, sub.ID))
		kinds = append(kinds, "subscription")
	}
	if len(hashes) == 0 {
		return 0, nil
	}
	r, err := tx.ExecContext(ctx, q, pq.ByteaArray(hashes), pq.Array(kinds))
	if err != nil {
		return 0, fmt.Errorf("write tombstones: %w", translate(err))
	}
	n, _ := r.RowsAffected()
	return int(n), nil
}

// writeAccountTombstone records that the account ID was erased: no hint
// ever links to it again, and the app API links to it only with an
// explicit reuse (AccountLink). Erasing a reused account makes it erased
// again.
func writeAccountTombstone(ctx context.Context, tx *sqlx.Tx, key []byte, accountID string) error {
	const q = `
INSERT INTO account_tombstones (subject_hmac) VALUES ($1)
ON CONFLICT (subject_hmac) DO UPDATE SET reused_at = NULL, erased_at = now()`
	if _, err := tx.ExecContext(ctx, q, subjectHMAC(key, accountID)); err != nil {
		return fmt.Errorf("write account tombstone: %w", translate(err))
	}
	return nil
}

// enqueueErasureProfitWell tells ProfitWell, by surrogate reference only,
// that the account's live subscriptions churned today, and with
// EraseProfitWell asks it to forget each customer. Test-mode data never
// reaches ProfitWell.
func enqueueErasureProfitWell(ctx context.Context, tx *sqlx.Tx, req billing.ErasureRequest, customers []erasedCustomer, subs []erasedSubscription, res *billing.ErasureResult) error {
	now := time.Now().UTC()
	for _, sub := range subs {
		if !sub.Livemode || !billing.SyncLive(sub.Status) {
			continue
		}
		if err := EnqueueProfitWellChurn(ctx, tx, sub.CustomerRef, sub.Ref, now, billing.ChurnVoluntary); err != nil {
			return fmt.Errorf("enqueue profitwell churn: %w", err)
		}
		res.ProfitWellChurn++
	}
	if !req.EraseProfitWell {
		return nil
	}
	for _, c := range customers {
		if c.Livemode != nil && !*c.Livemode {
			continue
		}
		if err := EnqueueProfitWellEraseUser(ctx, tx, c.Ref); err != nil {
			return fmt.Errorf("enqueue profitwell erase: %w", err)
		}
		res.ProfitWellErase++
	}
	return nil
}

// enqueueErasureStripe queues the Stripe calls the request asked for. They
// run after commit (stripeapi.JobWorker), so a Stripe outage never leaves a
// half-erased account. Deleting a customer cancels its subscriptions in
// Stripe, so cancel jobs are queued only without DeleteCustomer.
func enqueueErasureStripe(ctx context.Context, tx *sqlx.Tx, req billing.ErasureRequest, customers []erasedCustomer, subs []erasedSubscription, res *billing.ErasureResult) error {
	var entries []OutboxEntry
	switch {
	case req.DeleteCustomer:
		for _, c := range customers {
			entries = append(entries, OutboxEntry{Kind: billing.OutboxStripe, OrderingKey: StripeJobOrderingKey(c.Ref),
				Action: billing.StripeDeleteCustomer, Payload: billing.StripeJobPayload{CustomerID: c.ID}})
		}
	case req.CancelSubscriptions:
		for _, sub := range subs {
			if !billing.SubscriptionLive(sub.Status) {
				continue
			}
			entries = append(entries, OutboxEntry{Kind: billing.OutboxStripe, OrderingKey: StripeJobOrderingKey(sub.CustomerRef),
				Action: billing.StripeCancelSubscription, Payload: billing.StripeJobPayload{SubscriptionID: sub.ID}})
		}
	}
	for _, e := range entries {
		if _, err := enqueueOutbox(ctx, tx, e); err != nil {
			return fmt.Errorf("enqueue stripe job: %w", err)
		}
		res.StripeJobs++
	}
	return nil
}

// rekeyHistory moves the erased customers' revenue history (versions,
// movements, activity) to fresh random references: one new customer
// reference per customer and one new subscription reference per
// subscription, so each history stays internally consistent and the
// figures do not change. The old references may have left billingd before
// (a subject access export lists them, ProfitWell aliases derive from
// them); after this nothing in the database carries them except the
// ProfitWell rows just queued, which must reach the old aliases, so the
// history kept for finance cannot be tied back to the person. All three
// updates go through the customer_ref indexes.
func rekeyHistory(ctx context.Context, tx *sqlx.Tx, customers []erasedCustomer) error {
	const q = `
WITH cm AS MATERIALIZED (
    SELECT old, gen_random_uuid() AS new FROM unnest($1::uuid[]) AS old
), sm AS MATERIALIZED (
    SELECT old, gen_random_uuid() AS new
    FROM (SELECT subscription_ref AS old FROM subscription_versions WHERE customer_ref = ANY($1::uuid[])
          UNION SELECT subscription_ref FROM mrr_movements WHERE customer_ref = ANY($1::uuid[]) AND subscription_ref IS NOT NULL
          UNION SELECT subscription_ref FROM subscription_activity WHERE customer_ref = ANY($1::uuid[])
          UNION SELECT subscription_ref FROM invoice_line_amounts WHERE customer_ref = ANY($1::uuid[]) AND subscription_ref IS NOT NULL) AS r
), cd AS (
    UPDATE customer_discount_versions t SET customer_ref = cm.new
    FROM cm WHERE t.customer_ref = cm.old
    RETURNING 1
), il AS (
    UPDATE invoice_line_amounts t
    SET customer_ref = cm.new, subscription_ref = (SELECT sm.new FROM sm WHERE sm.old = t.subscription_ref)
    FROM cm WHERE t.customer_ref = cm.old
    RETURNING 1
), v AS (
    UPDATE subscription_versions t
    SET customer_ref = cm.new, subscription_ref = (SELECT sm.new FROM sm WHERE sm.old = t.subscription_ref)
    FROM cm WHERE t.customer_ref = cm.old
    RETURNING 1
), m AS (
    UPDATE mrr_movements t
    SET customer_ref = cm.new, subscription_ref = (SELECT sm.new FROM sm WHERE sm.old = t.subscription_ref)
    FROM cm WHERE t.customer_ref = cm.old
    RETURNING 1
), a AS (
    UPDATE subscription_activity t
    SET customer_ref = cm.new, subscription_ref = (SELECT sm.new FROM sm WHERE sm.old = t.subscription_ref)
    FROM cm WHERE t.customer_ref = cm.old
    RETURNING 1
)
SELECT 1`
	if len(customers) == 0 {
		return nil
	}
	refs := make([]string, len(customers))
	for i, c := range customers {
		refs[i] = c.Ref
	}
	// Data-modifying CTEs run to completion whether or not the final
	// SELECT reads them.
	if _, err := tx.ExecContext(ctx, q, pq.Array(refs)); err != nil {
		return fmt.Errorf("re-key history: %w", translate(err))
	}
	return nil
}

// deleteLinks deletes the subscriptions and customers rows: the only rows
// that tie a Stripe ID to an account or to a surrogate reference.
func deleteLinks(ctx context.Context, tx *sqlx.Tx, customerIDs []string) error {
	const qSubs = `DELETE FROM subscriptions WHERE stripe_customer_id = ANY($1)`
	const qCustomers = `DELETE FROM customers WHERE stripe_customer_id = ANY($1)`
	if len(customerIDs) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, qSubs, pq.Array(customerIDs)); err != nil {
		return fmt.Errorf("delete subscriptions: %w", translate(err))
	}
	if _, err := tx.ExecContext(ctx, qCustomers, pq.Array(customerIDs)); err != nil {
		return fmt.Errorf("delete customers: %w", translate(err))
	}
	return nil
}

// writeErasureAudit records who erased which account (as a keyed hash) and
// how much, with no IDs.
func writeErasureAudit(ctx context.Context, tx *sqlx.Tx, req billing.ErasureRequest, subject []byte, res billing.ErasureResult) error {
	const q = `
INSERT INTO audit_log (actor, action, subject_hmac, details)
VALUES ($1, $2, $3, $4)`
	details, err := json.Marshal(struct {
		billing.ErasureResult
		CancelSubscriptions bool `json:"cancel_subscriptions"`
		DeleteCustomer      bool `json:"delete_customer"`
		EraseProfitWell     bool `json:"erase_profitwell"`
	}{res, req.CancelSubscriptions, req.DeleteCustomer, req.EraseProfitWell})
	if err != nil {
		return fmt.Errorf("write erasure audit: encode details: %w", err)
	}
	if _, err := tx.ExecContext(ctx, q, req.Actor, AuditActionErase, subject, string(details)); err != nil {
		return fmt.Errorf("write erasure audit: %w", translate(err))
	}
	return nil
}

// forgetDiscountIDs removes the Stripe discount IDs (di_...) the erased
// customers' history still holds (discounts that arrived as bare IDs),
// writing in their place the amounts resolved for them, so the re-keyed
// history keeps its figures and cannot be tied back through Stripe; then
// drops those resolutions and the customers' pending resolve jobs, whose
// payloads name their Stripe IDs.
func forgetDiscountIDs(ctx context.Context, tx *sqlx.Tx, customers []erasedCustomer) error {
	const q = `
WITH ids AS MATERIALIZED (
    SELECT DISTINCT d->>'id' AS id
    FROM (SELECT discounts FROM subscription_versions WHERE customer_ref = ANY($1::uuid[])
          UNION ALL SELECT discounts FROM customer_discount_versions WHERE customer_ref = ANY($1::uuid[])
          UNION ALL SELECT discounts FROM subscriptions WHERE customer_ref = ANY($1::uuid[])) AS x,
         jsonb_array_elements(x.discounts) AS d
    WHERE d ? 'id'
), v AS (
    UPDATE subscription_versions t SET discounts = billingd_resolve_discounts(t.discounts)
    WHERE t.customer_ref = ANY($1::uuid[]) AND t.discounts @? '$[*].id'
    RETURNING 1
), c AS (
    UPDATE customer_discount_versions t SET discounts = billingd_resolve_discounts(t.discounts)
    WHERE t.customer_ref = ANY($1::uuid[]) AND t.discounts @? '$[*].id'
    RETURNING 1
), r AS (
    -- Every part of one statement sees the same snapshot: v and c read
    -- the resolutions this deletes.
    DELETE FROM discount_resolutions WHERE discount_id IN (SELECT id FROM ids)
    RETURNING 1
), j AS (
    DELETE FROM outbox WHERE kind = 'stripe' AND action = $3 AND state <> 'sent' AND payload->>'customer_id' = ANY($2::text[])
    RETURNING 1
), k AS (
    -- Done jobs keep no payload, but their ordering key names the discount.
    UPDATE outbox SET ordering_key = 'resolve:erased'
    WHERE kind = 'stripe' AND state = 'sent' AND ordering_key IN (SELECT left('resolve:' || id, 80) FROM ids)
    RETURNING 1
)
SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM j), (SELECT count(*) FROM k)`
	if len(customers) == 0 {
		return nil
	}
	refs, ids := make([]string, len(customers)), make([]string, len(customers))
	for i, c := range customers {
		refs[i], ids[i] = c.Ref, c.ID
	}
	if _, err := tx.ExecContext(ctx, q, pq.Array(refs), pq.Array(ids), billing.StripeResolveDiscounts); err != nil {
		return fmt.Errorf("forget discount IDs: %w", translate(err))
	}
	return nil
}
