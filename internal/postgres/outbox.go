package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// SubscriptionChange is what the event path knows after it applied a new
// current state: the state before (nil for a first-seen subscription) and
// after, with the surrogate references that stand in for Stripe IDs outside
// the link tables.
type SubscriptionChange struct {
	Prev            *billing.Subscription
	Next            billing.Subscription
	CustomerRef     string
	SubscriptionRef string
	At              time.Time // the version's time (event created, or API fetch time)
}

// subscriptionSyncRows returns, validated and encoded, the outbox rows
// (ProfitWell sync) that a change of a subscription's current state calls
// for, in order: create, update, churn or unchurn (billing.SyncActions).
// The event path asks only when current state changed (not for stale
// versions); test mode gets none, so a caller's slip cannot send test
// data. The batch appends them, in the order it applied its events, with
// the ledger rewrite (qReplaceLedgers), under the customers' row locks,
// which keep one customer's row IDs in commit order.
func subscriptionSyncRows(ch SubscriptionChange) ([]outboxRow, error) {
	if !ch.Next.Livemode {
		return nil, nil
	}
	var rows []outboxRow
	for _, a := range billing.SyncActions(ch.Prev, ch.Next, ch.At) {
		e, err := profitWellEntry(a.Kind, a.Payload(ch.CustomerRef, ch.SubscriptionRef))
		if err != nil {
			return nil, fmt.Errorf("enqueue profitwell %s: %w", a.Kind, err)
		}
		r, err := encodeOutbox(e)
		if err != nil {
			return nil, fmt.Errorf("enqueue profitwell %s: %w", a.Kind, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// OutboxEntry is one row to append to the outbox.
type OutboxEntry struct {
	Kind        string // billing.OutboxProfitWell or billing.OutboxStripe
	OrderingKey string // rows with one key are delivered in ID order; ≤ 80 chars, never a Stripe ID
	Action      string // what the worker of Kind should do; ≤ 40 chars
	Payload     any    // marshalled to JSON: references and billing facts only
}

const qEnqueueOutbox = `
INSERT INTO outbox (kind, ordering_key, action, payload)
VALUES ($1, $2, $3, $4)
RETURNING id`

// enqueueOutbox appends e in the caller's transaction, so the row exists if
// and only if the change it describes commits. The worker of e.Kind sends
// rows of one ordering key one at a time in ID order; the caller must
// serialise writers of one key (e.g. hold the customer's row lock until
// commit) so that ID order is commit order. Generic by kind: the erasure
// path uses it for Stripe jobs (billing.OutboxStripe).
func enqueueOutbox(ctx context.Context, tx *sqlx.Tx, e OutboxEntry) (int64, error) {
	r, err := encodeOutbox(e)
	if err != nil {
		return 0, err
	}
	return insertOutbox(ctx, tx, r)
}

// outboxRow is an OutboxEntry checked and with its payload encoded.
type outboxRow struct {
	Kind, OrderingKey, Action string
	Payload                   []byte
}

// encodeOutbox checks e and encodes its payload.
func encodeOutbox(e OutboxEntry) (outboxRow, error) {
	if e.Kind == "" || e.OrderingKey == "" || e.Action == "" || len(e.OrderingKey) > 80 || len(e.Action) > 40 {
		return outboxRow{}, fmt.Errorf("enqueue outbox row: kind, ordering key (≤80) and action (≤40) are required: %w", billing.ErrInvalid)
	}
	b, err := json.Marshal(e.Payload)
	if err != nil {
		return outboxRow{}, fmt.Errorf("enqueue outbox row: encode payload: %w", err)
	}
	return outboxRow{Kind: e.Kind, OrderingKey: e.OrderingKey, Action: e.Action, Payload: b}, nil
}

func insertOutbox(ctx context.Context, tx *sqlx.Tx, r outboxRow) (int64, error) {
	var id int64
	if err := tx.QueryRowxContext(ctx, qEnqueueOutbox, r.Kind, r.OrderingKey, r.Action, string(r.Payload)).Scan(&id); err != nil {
		return 0, fmt.Errorf("enqueue outbox row: %w", translate(err))
	}
	return id, nil
}

// refPattern is a surrogate reference (a UUID as PostgreSQL prints it).
// Checking it keeps Stripe IDs (cus_..., sub_...) out of payloads.
var refPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ProfitWellOrderingKey is the ordering key of a customer's ProfitWell rows.
// Per customer, not per subscription: ProfitWell wants one user's creates
// sent one at a time, and an erase_user must follow that user's churns.
func ProfitWellOrderingKey(customerRef string) string { return "profitwell:" + customerRef }

// EnqueueProfitWell appends one ProfitWell sync row in the caller's
// transaction (see enqueueOutbox for the ordering contract). The payload's
// shape per action is documented on billing.SyncPayload; references must be
// surrogate UUIDs (customers.customer_ref, subscriptions.subscription_ref),
// which the worker turns into keyed aliases at send time.
func EnqueueProfitWell(ctx context.Context, tx *sqlx.Tx, action billing.SyncKind, p billing.SyncPayload) (int64, error) {
	e, err := profitWellEntry(action, p)
	if err != nil {
		return 0, err
	}
	return enqueueOutbox(ctx, tx, e)
}

// profitWellEntry checks a ProfitWell row's action and references and
// returns the entry EnqueueProfitWell appends.
func profitWellEntry(action billing.SyncKind, p billing.SyncPayload) (OutboxEntry, error) {
	if !action.Valid() {
		return OutboxEntry{}, fmt.Errorf("enqueue profitwell row: unknown action %q: %w", action, billing.ErrInvalid)
	}
	subOK := refPattern.MatchString(p.SubscriptionRef)
	if action == billing.SyncEraseUser {
		subOK = p.SubscriptionRef == ""
	}
	if !refPattern.MatchString(p.CustomerRef) || !subOK {
		return OutboxEntry{}, fmt.Errorf("enqueue profitwell row: references must be surrogate UUIDs: %w", billing.ErrInvalid)
	}
	return OutboxEntry{
		Kind:        billing.OutboxProfitWell,
		OrderingKey: ProfitWellOrderingKey(p.CustomerRef),
		Action:      string(action),
		Payload:     p,
	}, nil
}

// EnqueueProfitWellChurn appends a churn of one subscription, for the
// erasure path (an account deleted while its subscription is live). at is
// the effective date.
func EnqueueProfitWellChurn(ctx context.Context, tx *sqlx.Tx, customerRef, subscriptionRef string, at time.Time, t billing.ChurnType) error {
	a := billing.SyncAction{Kind: billing.SyncChurn, EffectiveDate: at, ChurnType: t}
	if _, err := EnqueueProfitWell(ctx, tx, billing.SyncChurn, a.Payload(customerRef, subscriptionRef)); err != nil {
		return err
	}
	return nil
}

// EnqueueProfitWellEraseUser appends DELETE /v2/users/{user_alias}/ for a
// deleted account's customer, after any rows already queued for it.
func EnqueueProfitWellEraseUser(ctx context.Context, tx *sqlx.Tx, customerRef string) error {
	if _, err := EnqueueProfitWell(ctx, tx, billing.SyncEraseUser, billing.SyncPayload{CustomerRef: customerRef}); err != nil {
		return err
	}
	return nil
}

// OutboxEnqueue appends e in its own transaction (commands and tests;
// erasure and backfill use enqueueOutbox inside theirs).
func (s *Store) OutboxEnqueue(ctx context.Context, e OutboxEntry) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		id, err = enqueueOutbox(ctx, tx, e)
		return err
	})
	return id, err
}

// OutboxClaim claims up to limit due rows of kind, earliest due first, and
// returns them in ID order. A row is due when it is pending, its next attempt time has come,
// and no earlier row with its ordering key is still pending (so a batch
// holds at most one row per key, and row N+1 waits while row N is in flight
// or retrying; a dead row does not block the ones after it).
//
// The claim is a short transaction (FOR UPDATE SKIP LOCKED, so concurrent
// workers take disjoint rows) that counts the attempt and leases the row by
// moving next_attempt_at lease ahead. A worker that dies before recording
// the outcome loses nothing: the row is due again when the lease ends. The
// worker must finish each send well within the lease.
func (s *Store) OutboxClaim(ctx context.Context, kind string, limit int, lease time.Duration) ([]billing.OutboxJob, error) {
	return outboxClaim(ctx, s.db, kind, limit, lease)
}

// outboxClaim is OutboxClaim on q (the pool, or a transaction that sets
// its own commit mode: AppWebhookClaim).
func outboxClaim(ctx context.Context, db sqlx.QueryerContext, kind string, limit int, lease time.Duration) ([]billing.OutboxJob, error) {
	const q = `
WITH c AS (
    SELECT o.id
    FROM outbox o
    WHERE o.kind = $1 AND o.state = 'pending' AND o.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM outbox p
          WHERE p.ordering_key = o.ordering_key AND p.id < o.id AND p.state = 'pending')
    ORDER BY o.next_attempt_at, o.id -- outbox_pending_idx: due rows only, no sort
    LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o
SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $3)
FROM c
WHERE o.id = c.id
RETURNING o.id, o.kind, o.ordering_key, o.action, o.payload, o.attempts, o.created_at`
	var rows []struct {
		ID          int64     `db:"id"`
		Kind        string    `db:"kind"`
		OrderingKey string    `db:"ordering_key"`
		Action      string    `db:"action"`
		Payload     []byte    `db:"payload"`
		Attempts    int       `db:"attempts"`
		CreatedAt   time.Time `db:"created_at"`
	}
	if err := sqlx.SelectContext(ctx, db, &rows, q, kind, limit, lease.Seconds()); err != nil {
		return nil, fmt.Errorf("claim outbox rows: %w", translate(err))
	}
	jobs := make([]billing.OutboxJob, 0, len(rows))
	for _, r := range rows {
		jobs = append(jobs, billing.OutboxJob{ID: r.ID, Kind: r.Kind, OrderingKey: r.OrderingKey, Action: r.Action,
			Payload: json.RawMessage(r.Payload), Attempts: r.Attempts, CreatedAt: r.CreatedAt})
	}
	// RETURNING of an UPDATE ... FROM comes in no particular order.
	slices.SortFunc(jobs, func(a, b billing.OutboxJob) int { return cmp.Compare(a.ID, b.ID) })
	return jobs, nil
}

// OutboxMarkSent records a delivered row. attempt is the job's Attempts:
// if another worker has claimed the row since (this worker's lease ran
// out), nothing changes and the result wraps billing.ErrConflict.
func (s *Store) OutboxMarkSent(ctx context.Context, id int64, attempt, status int) error {
	const q = `
UPDATE outbox
SET state = 'sent', sent_at = now(), last_status = $3, last_error = NULL
WHERE id = $1 AND attempts = $2 AND state = 'pending'`
	return s.outboxOutcome(ctx, "mark outbox row sent", q, id, attempt, nullStatus(status))
}

// OutboxRetryLater schedules another attempt after delay, recording the
// last status (0: no HTTP response) and a short error summary that must
// hold no personal data. When counted is false the attempt is given back
// (throttling is not the row's fault and must not push it to dead-letter).
func (s *Store) OutboxRetryLater(ctx context.Context, id int64, attempt int, delay time.Duration, status int, summary string, counted bool) error {
	const q = `
UPDATE outbox
SET next_attempt_at = now() + make_interval(secs => $5),
    last_status = $3, last_error = $4,
    attempts = CASE WHEN $6 THEN attempts ELSE attempts - 1 END
WHERE id = $1 AND attempts = $2 AND state = 'pending'`
	return s.outboxOutcome(ctx, "schedule outbox retry", q, id, attempt, nullStatus(status), clip(summary), delay.Seconds(), counted)
}

// OutboxMarkDead gives up on a row (attempts exhausted, or a request the
// receiver refuses): it stays, visible, until OutboxRetryDead.
func (s *Store) OutboxMarkDead(ctx context.Context, id int64, attempt, status int, summary string) error {
	const q = `
UPDATE outbox
SET state = 'dead', last_status = $3, last_error = $4
WHERE id = $1 AND attempts = $2 AND state = 'pending'`
	return s.outboxOutcome(ctx, "dead-letter outbox row", q, id, attempt, nullStatus(status), clip(summary))
}

func (s *Store) outboxOutcome(ctx context.Context, what, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", what, translate(err))
	} else if n == 0 {
		return fmt.Errorf("%s: lease lost (row re-claimed or no longer pending): %w", what, billing.ErrConflict)
	}
	return nil
}

// OutboxRetryDead puts dead rows of kind back in the queue with a fresh
// attempt budget: the one with ID id, or all of them when id is 0. It
// returns how many rows it re-queued; an unknown or not-dead id gives
// billing.ErrNotFound.
func (s *Store) OutboxRetryDead(ctx context.Context, kind string, id int64) (int64, error) {
	const q = `
UPDATE outbox
SET state = 'pending', attempts = 0, next_attempt_at = now()
WHERE kind = $1 AND state = 'dead' AND ($2 = 0 OR id = $2)`
	res, err := s.db.ExecContext(ctx, q, kind, id)
	if err != nil {
		return 0, fmt.Errorf("retry dead outbox rows: %w", translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("retry dead outbox rows: %w", translate(err))
	}
	if id != 0 && n == 0 {
		return 0, fmt.Errorf("retry dead outbox row %d: no dead %s row with that ID: %w", id, kind, billing.ErrNotFound)
	}
	return n, nil
}

// OutboxStats counts pending and dead rows of kind and the age of the
// oldest pending one, exactly: for commands. Its cost grows with the
// pending rows; /metrics uses OutboxGauges.
func (s *Store) OutboxStats(ctx context.Context, kind string) (billing.OutboxStats, error) {
	const q = `
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'dead') AS dead,
       COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE state = 'pending')), 0)::float8 AS oldest
FROM outbox
WHERE kind = $1 AND state <> 'sent'`
	var r struct {
		Pending int64   `db:"pending"`
		Dead    int64   `db:"dead"`
		Oldest  float64 `db:"oldest"`
	}
	if err := s.db.GetContext(ctx, &r, q, kind); err != nil {
		return billing.OutboxStats{}, fmt.Errorf("outbox stats: %w", translate(err))
	}
	return billing.OutboxStats{Pending: r.Pending, Dead: r.Dead, OldestPending: time.Duration(r.Oldest * float64(time.Second))}, nil
}

// OutboxGauges is OutboxStats at a cost that does not grow with the queue,
// for every /metrics scrape (issue 15: the exact count read every row of a
// queue that grows by a row per live event while ProfitWell is off, and
// scrapes grew from 37 to 680 ms over a soak): dead rows are counted
// exactly (outbox_dead_idx), pending rows up to limit (Pending = limit
// means at least that many), and the oldest pending age is that of the
// oldest among the limit rows due first: exact when the queue is shorter,
// and for a queue that no worker drains (rows are due in creation order).
func (s *Store) OutboxGauges(ctx context.Context, kind string, limit int) (billing.OutboxStats, error) {
	const q = `
SELECT p.pending, p.oldest,
       (SELECT count(*) FROM outbox WHERE kind = $1 AND state = 'dead') AS dead
FROM (SELECT count(*) AS pending,
             COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 AS oldest
      FROM (SELECT created_at FROM outbox
            WHERE kind = $1 AND state = 'pending'
            ORDER BY next_attempt_at, id -- outbox_pending_idx: the first limit rows only
            LIMIT $2) AS due) AS p`
	var r struct {
		Pending int64   `db:"pending"`
		Dead    int64   `db:"dead"`
		Oldest  float64 `db:"oldest"`
	}
	if err := s.db.GetContext(ctx, &r, q, kind, limit); err != nil {
		return billing.OutboxStats{}, fmt.Errorf("outbox gauges: %w", translate(err))
	}
	return billing.OutboxStats{Pending: r.Pending, Dead: r.Dead, OldestPending: time.Duration(r.Oldest * float64(time.Second))}, nil
}

// OutboxPurgeSent deletes delivered rows of kind older than age (at most
// 10 000 per call, so a purge never holds long locks). Sent rows are kept
// briefly only to answer "was it sent?" while debugging.
func (s *Store) OutboxPurgeSent(ctx context.Context, kind string, age time.Duration) (int64, error) {
	const q = `
DELETE FROM outbox
WHERE id IN (SELECT id FROM outbox
             WHERE kind = $1 AND state = 'sent' AND sent_at < now() - make_interval(secs => $2)
             LIMIT 10000)`
	res, err := s.db.ExecContext(ctx, q, kind, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("purge sent outbox rows: %w", translate(err))
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// OutboxRow is one outbox row as stored, for commands and tests.
type OutboxRow struct {
	ID          int64           `db:"id"`
	Kind        string          `db:"kind"`
	OrderingKey string          `db:"ordering_key"`
	Action      string          `db:"action"`
	Payload     json.RawMessage `db:"payload"`
	State       string          `db:"state"`
	Attempts    int             `db:"attempts"`
	LastStatus  *int            `db:"last_status"`
	LastError   *string         `db:"last_error"`
	CreatedAt   time.Time       `db:"created_at"`
	SentAt      *time.Time      `db:"sent_at"`
}

// OutboxRows lists the rows of kind in ID order (state "" for every state).
func (s *Store) OutboxRows(ctx context.Context, kind, state string) ([]OutboxRow, error) {
	const q = `
SELECT id, kind, ordering_key, action, payload, state, attempts, last_status, last_error, created_at, sent_at
FROM outbox
WHERE kind = $1 AND ($2 = '' OR state = $2)
ORDER BY id`
	var rows []OutboxRow
	if err := s.db.SelectContext(ctx, &rows, q, kind, state); err != nil {
		return nil, fmt.Errorf("list outbox rows: %w", translate(err))
	}
	return rows, nil
}

func nullStatus(status int) *int {
	if status <= 0 {
		return nil
	}
	return &status
}

// clip keeps an error summary within the column's 500 characters.
func clip(s string) string {
	if len(s) <= 500 {
		return s
	}
	n := 0
	for i := range s {
		if i > 496 {
			break
		}
		n = i
	}
	return s[:n] + "…"
}
