package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The segment, cohort and trial facts (revenue_facts, billing.DeriveFacts)
// are derived after the event's commit, not in it: the event transaction
// appends one revenue_facts_pending row per ledger it rewrote (in
// qReplaceLedgers, the statement it runs anyway), and a deriver on every
// replica turns those rows into facts:
//
//   - it claims the oldest rows with FOR UPDATE SKIP LOCKED, so replicas
//     share the queue, and takes each claimed customer's ledger lock with
//     pg_try_advisory_xact_lock (the lock a ledger rebuild, the retention
//     purge and erasure take): a customer another replica, a rebuild or an
//     erasure holds is left queued for a later round, so two derivations of
//     one customer never interleave and the deriver never waits;
//   - it reads the locked customers' histories in one query and their
//     ledgers' other inputs (customer discounts, tax facts, resolved
//     discount IDs: ledger_inputs.go) in two more, derives their
//     facts from the earliest queued time on (derivation is causal, as for
//     the ledger), and replaces them, appends the net change per day to
//     revenue_segments_daily and deletes the claimed rows in one statement;
//   - a claimed row's versions were committed with it, so they are visible
//     to the history read; rows committed after the claim stay queued, so
//     nothing is lost whatever the commit order, and a customer derived
//     twice gets the same facts (a rewrite that changes nothing appends no
//     rollup row).
//
// A replica's own commits wake its deriver at once (wakeFactDeriver);
// others' are found by polling. Reports of facts first settle what is
// queued (catchUpFacts), so a report reflects every event committed before
// it, unless a backlog is larger than a report should wait for.

// factBatch is how many queued rows one derivation claims: one statement
// then writes the facts of up to this many customers.
const factBatch = 500

// factLinger is the least time between two derivations of one replica's
// deriver when woken by its own commits: a burst of events then shares a
// derivation (and its commit) instead of paying one each.
const factLinger = 50 * time.Millisecond

// catchUpBatches bounds the derivations a report runs before it reads,
// and catchUpWait how long it waits for derivations others hold.
const (
	catchUpBatches = 4
	catchUpWait    = time.Second
)

const qClaimFacts = `
SELECT id, customer_ref::text AS customer_ref, livemode, since
FROM revenue_facts_pending
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED`

// qLockFactCustomers takes the ledger lock (ledger_rebuild.go) of every
// customer it can without waiting and returns those.
const qLockFactCustomers = `
SELECT r FROM (SELECT unnest($1::text[]) AS r ORDER BY 1) AS refs
WHERE pg_try_advisory_xact_lock(hashtextextended('billingd.ledger:' || r, 0))`

// qCustomersHistory is qCustomerHistory for several customers, both modes.
const qCustomersHistory = `
SELECT customer_ref::text AS customer_ref, subscription_ref, livemode, status, currency, items, discounts,
       current_period_start, current_period_end, trial_end, cancel_at, cancel_at_period_end, ended_at,
       automatic_tax, version_at, version_rank, version_event
FROM subscription_versions
WHERE customer_ref = ANY($1::uuid[])`

// qReplaceFacts rewrites the facts of several customers from a time on
// ($1, as qReplaceLedgers' f), inserts the new ones ($2..$14, one array per
// column: parsing hundreds of JSON objects cost a quarter of the
// statement), appends the net change per (mode, currency, dimension,
// segment, day) to the rollup, and deletes the queue rows done ($15) and,
// for a rebuild, every queued row of the customers it rebuilt ($16). The rollup rows are appended, never
// updated, so derivations on several replicas never queue on a shared row.
const qReplaceFacts = `
WITH f AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS f(cref uuid, livemode boolean, since timestamptz)
), del_f AS (
    DELETE FROM revenue_facts d USING (
        SELECT x.ctid AS row FROM f CROSS JOIN LATERAL (
            SELECT ctid FROM revenue_facts r
            WHERE r.customer_ref = f.cref AND r.livemode = f.livemode AND r.effective_at >= f.since OFFSET 0
        ) AS x) AS x
    WHERE d.ctid = x.row
    RETURNING -1 AS sign, d.livemode, d.currency, d.dimension, d.segment, d.day, d.kind, d.delta_minor,
              d.active_delta, d.retained_delta, d.trial_start, d.trial_conversion
), ins_f AS (
    INSERT INTO revenue_facts (customer_ref, livemode, currency, dimension, segment, effective_at, day, kind,
                               delta_minor, active_delta, retained_delta, trial_start, trial_conversion)
    SELECT u.cref, u.livemode, u.currency, u.dim, u.seg, u.at, u.day, NULLIF(u.kind, ''), u.delta, u.active,
           u.retained, u.ts, u.tc
    FROM unnest($2::uuid[], $3::boolean[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::date[],
                $9::text[], $10::bigint[], $11::smallint[], $12::bigint[], $13::smallint[], $14::smallint[])
         AS u(cref, livemode, currency, dim, seg, at, day, kind, delta, active, retained, ts, tc)
    RETURNING 1 AS sign, livemode, currency, dimension, segment, day, kind, delta_minor, active_delta,
              retained_delta, trial_start, trial_conversion
), seg AS (
    INSERT INTO revenue_segments_daily (livemode, currency, dimension, segment, day, mrr_delta, new_minor,
        expansion_minor, contraction_minor, churn_minor, reactivation_minor, paying_delta, churned_customers,
        new_customers, active_delta, retained_delta, trial_starts, trial_conversions)
    SELECT * FROM (
    SELECT livemode, currency, dimension, segment, day, sum(sign * d) AS m,
           sum(CASE WHEN kind = 'new' THEN sign * d ELSE 0 END) AS n,
           sum(CASE WHEN kind = 'expansion' THEN sign * d ELSE 0 END) AS e,
           sum(CASE WHEN kind = 'contraction' THEN -sign * d ELSE 0 END) AS c,
           sum(CASE WHEN kind = 'churn' THEN -sign * d ELSE 0 END) AS ch,
           sum(CASE WHEN kind = 'reactivation' THEN sign * d ELSE 0 END) AS r,
           sum(CASE WHEN kind IN ('new', 'reactivation') THEN sign WHEN kind = 'churn' THEN -sign ELSE 0 END) AS p,
           sum(CASE WHEN kind = 'churn' THEN sign ELSE 0 END) AS cc,
           sum(CASE WHEN kind = 'new' THEN sign ELSE 0 END) AS nc,
           sum(sign * active_delta) AS a, sum(sign * retained_delta::numeric) AS rt, sum(sign * trial_start) AS ts,
           sum(sign * trial_conversion) AS tc
    FROM (SELECT sign, livemode, currency, dimension, segment, day, kind, delta_minor::numeric AS d, active_delta,
                 retained_delta, trial_start, trial_conversion FROM del_f
          UNION ALL
          SELECT sign, livemode, currency, dimension, segment, day, kind, delta_minor::numeric, active_delta,
                 retained_delta, trial_start, trial_conversion FROM ins_f) c
    GROUP BY livemode, currency, dimension, segment, day) g
    -- a day whose changes cancel out (a rewrite deriving the same facts) appends nothing
    WHERE ROW(g.m, g.n, g.e, g.c, g.ch, g.r, g.p, g.cc, g.nc, g.a, g.rt, g.ts, g.tc) <> ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
), done AS (
    DELETE FROM revenue_facts_pending WHERE id = ANY($15::bigint[]) OR customer_ref = ANY($16::uuid[])
)
SELECT 1`

// factInput is one revenue_facts row to insert.
type factInput struct {
	CustomerRef   string
	Livemode      bool
	Currency      string
	Dimension     billing.Dimension
	Segment       string
	At            time.Time
	Day           string
	Kind          billing.MovementKind
	Delta         int64
	Active        int
	Retained      int64
	TrialStart    int
	TrialConverts int
}

// factWrite collects one qReplaceFacts statement.
type factWrite struct {
	ranges  []ledgerRange
	facts   []factInput
	done    []int64  // queue rows derived
	rebuilt []string // customers rebuilt whole: all their queue rows go
}

// add replaces customerRef's facts in one mode from `from` on with those
// derived from h (that customer's history in that mode: the ledger's
// inputs, so the facts add up to the ledger).
//
// Facts of one segment at one instant filed under one day are stored as
// one row where the table's checks allow it (at most one movement kind,
// active_delta in -1..1, trial counts 0 or 1): a subscription that starts
// is a movement and a +1 in each segment, and one row instead of two
// nearly halves what the deriver writes. Every report sums the columns
// independently, so the figures are the same; the merge is a function of
// the facts at one instant, so incremental and rebuilt rows are equal.
func (w *factWrite) add(customerRef string, livemode bool, from time.Time, h billing.CustomerHistory) {
	w.ranges = append(w.ranges, ledgerRange{CustomerRef: customerRef, Livemode: livemode, Since: from})
	start := len(w.facts)
	for _, f := range billing.DeriveFacts(h) {
		if f.At.Before(from) || f.Livemode != livemode {
			continue
		}
		in := factInput{CustomerRef: customerRef, Livemode: f.Livemode, Currency: f.Currency,
			Dimension: f.Dimension, Segment: f.Segment, At: f.At.UTC(), Day: f.Day.Format(time.DateOnly), Kind: f.Kind,
			Delta: f.Delta, Active: f.ActiveDelta, Retained: f.RetainedDelta, TrialStart: f.TrialStart,
			TrialConverts: f.TrialConversion}
		if merged := w.merge(start, in); !merged {
			w.facts = append(w.facts, in)
		}
	}
}

// merge folds in into a fact of the same customer written since start with
// the same mode, currency, segment, instant and day, when the result is
// still one valid row; it reports whether it did.
func (w *factWrite) merge(start int, in factInput) bool {
	for i := len(w.facts) - 1; i >= start; i-- {
		m := &w.facts[i]
		if !m.At.Equal(in.At) {
			return false // facts come in time order: nothing earlier matches
		}
		if m.Dimension != in.Dimension || m.Segment != in.Segment || m.Currency != in.Currency ||
			m.Livemode != in.Livemode || m.Day != in.Day {
			continue
		}
		if m.Kind != "" && in.Kind != "" {
			continue
		}
		active, ts, tc := m.Active+in.Active, m.TrialStart+in.TrialStart, m.TrialConverts+in.TrialConverts
		if active < -1 || active > 1 || ts > 1 || tc > 1 {
			continue
		}
		if in.Kind != "" {
			m.Kind = in.Kind
		}
		m.Delta += in.Delta
		m.Retained += in.Retained
		m.Active, m.TrialStart, m.TrialConverts = active, ts, tc
		return true
	}
	return false
}

func (w *factWrite) exec(ctx context.Context, tx sqlx.ExecerContext) error {
	if len(w.ranges) == 0 && len(w.done) == 0 {
		return nil
	}
	ranges, err := json.Marshal(append([]ledgerRange{}, w.ranges...))
	if err != nil {
		return fmt.Errorf("replace revenue facts: %w", err)
	}
	n := len(w.facts)
	cref, cur, dim, seg, at, day, kind := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	live := make([]bool, n)
	delta, active, retained, ts, tc := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, f := range w.facts {
		cref[i], live[i], cur[i], dim[i], seg[i] = f.CustomerRef, f.Livemode, f.Currency, string(f.Dimension), f.Segment
		at[i], day[i], kind[i] = f.At.Format(time.RFC3339Nano), f.Day, string(f.Kind)
		delta[i], active[i], retained[i] = f.Delta, int64(f.Active), f.Retained
		ts[i], tc[i] = int64(f.TrialStart), int64(f.TrialConverts)
	}
	if _, err := tx.ExecContext(ctx, qReplaceFacts, string(ranges), pq.Array(cref), pq.Array(live), pq.Array(cur),
		pq.Array(dim), pq.Array(seg), pq.Array(at), pq.Array(day), pq.Array(kind), pq.Array(delta), pq.Array(active),
		pq.Array(retained), pq.Array(ts), pq.Array(tc), pq.Array(append([]int64{}, w.done...)),
		pq.Array(append([]string{}, w.rebuilt...))); err != nil {
		return fmt.Errorf("replace revenue facts: %w", translate(err))
	}
	return nil
}

// DeriveFacts derives the facts of up to limit queued rows' customers, in
// one transaction, and returns how many rows it took off the queue and
// whether it claimed as many as it could (more may be queued).
func (s *Store) DeriveFacts(ctx context.Context, limit int) (done int, full bool, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []struct {
			ID          int64     `db:"id"`
			CustomerRef string    `db:"customer_ref"`
			Livemode    bool      `db:"livemode"`
			Since       time.Time `db:"since"`
		}
		if err := tx.SelectContext(ctx, &rows, qClaimFacts, limit); err != nil {
			return fmt.Errorf("claim revenue facts to derive: %w", translate(err))
		}
		full = len(rows) == limit
		if len(rows) == 0 {
			return nil
		}
		var refs []string
		for _, r := range rows {
			refs = append(refs, r.CustomerRef)
		}
		slices.Sort(refs)
		refs = slices.Compact(refs)
		var locked []string
		if err := tx.SelectContext(ctx, &locked, qLockFactCustomers, pq.Array(refs)); err != nil {
			return fmt.Errorf("lock customers to derive: %w", translate(err))
		}
		if len(locked) == 0 {
			return nil
		}
		isLocked := make(map[string]bool, len(locked))
		for _, r := range locked {
			isLocked[r] = true
		}
		// The earliest queued time per customer and mode.
		since := map[factKey]time.Time{}
		var w factWrite
		for _, r := range rows {
			if !isLocked[r.CustomerRef] {
				continue // another deriver, a rebuild or an erasure has it: left queued
			}
			k := factKey{r.CustomerRef, r.Livemode}
			if t, ok := since[k]; !ok || r.Since.Before(t) {
				since[k] = r.Since
			}
			w.done = append(w.done, r.ID)
		}
		histories, err := customersHistory(ctx, tx, locked)
		if err != nil {
			return err
		}
		keys := make([]factKey, 0, len(since))
		for k := range since {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, factKey.compare)
		for _, k := range keys {
			var h billing.CustomerHistory
			if l := histories[ledgerKey(k)]; l != nil {
				h = l.history()
			}
			w.add(k.ref, k.livemode, since[k], h)
		}
		if err := w.exec(ctx, tx); err != nil {
			return err
		}
		done = len(w.done)
		return nil
	})
	return done, full, err
}

// factKey is one customer's facts in one mode.
type factKey struct {
	ref      string
	livemode bool
}

func (a factKey) compare(b factKey) int {
	switch {
	case a.ref < b.ref:
		return -1
	case a.ref > b.ref:
		return 1
	case a.livemode == b.livemode:
		return 0
	case a.livemode:
		return 1
	}
	return -1
}

// customersHistory loads the ledger inputs of the customers, per customer
// and mode: every version of their subscriptions in one query
// (subscription_versions_customer_idx), then their discounts and tax facts
// and the resolved amounts of bare discount IDs, one query each for all
// of them, as the event path reads them (ledger_inputs.go). The inputs are
// read without qLedgerInputs' line classification, which writes.
func customersHistory(ctx context.Context, tx *sqlx.Tx, refs []string) (map[ledgerKey]*ledgerWork, error) {
	var rows []struct {
		CustomerRef string `db:"customer_ref"`
		versionRow
	}
	if err := tx.SelectContext(ctx, &rows, qCustomersHistory, pq.Array(refs)); err != nil {
		return nil, fmt.Errorf("load histories of %d customers: %w", len(refs), translate(err))
	}
	out := make(map[ledgerKey]*ledgerWork, len(refs))
	for _, r := range rows {
		v, err := r.toVersion()
		if err != nil {
			return nil, err
		}
		k := ledgerKey{ref: r.CustomerRef, livemode: r.Livemode}
		l := out[k]
		if l == nil {
			l = &ledgerWork{}
			out[k] = l
		}
		l.versions = append(l.versions, v)
	}
	// A customer without versions has no facts, whatever its discounts.
	if err := readInputs(ctx, tx, qLedgerInputsRead, out); err != nil {
		return nil, fmt.Errorf("load histories of %d customers: %w", len(refs), err)
	}
	if _, err := resolveLedgerDiscounts(ctx, tx, out); err != nil {
		return nil, fmt.Errorf("load histories of %d customers: %w", len(refs), err)
	}
	return out, nil
}

// DrainFacts derives until the queue is empty, waiting for rows other
// derivers hold: `billingd metrics rebuild` and tests use it to read
// settled facts.
func (s *Store) DrainFacts(ctx context.Context) error {
	for {
		n, full, err := s.DeriveFacts(ctx, factBatch)
		if err != nil {
			return err
		}
		if full || n > 0 {
			continue
		}
		var left bool
		if err := s.db.GetContext(ctx, &left, `SELECT EXISTS (SELECT 1 FROM revenue_facts_pending)`); err != nil {
			return fmt.Errorf("revenue facts queue: %w", translate(err))
		}
		if !left {
			return nil
		}
		// Rows or customers someone else holds: wait for them a moment.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// catchUpFacts settles the derivations queued before a report of facts
// reads them: it derives them itself (up to catchUpBatches derivations)
// and waits for those another deriver holds (up to catchUpWait, the time a
// derivation takes, not a backlog's). What is left after that, a backlog
// the background derivers are working through, is read as it is. An error
// is logged, not returned: the report is still right up to the queue.
func (s *Store) catchUpFacts(ctx context.Context) {
	var upTo int64
	if err := s.db.GetContext(ctx, &upTo, `SELECT coalesce(max(id), 0) FROM revenue_facts_pending`); err != nil {
		s.logCatchUp(err)
		return
	}
	if upTo == 0 {
		return
	}
	deadline := time.Now().Add(catchUpWait)
	for batches := 0; ; {
		var left bool
		if err := s.db.GetContext(ctx, &left, `SELECT EXISTS (SELECT 1 FROM revenue_facts_pending WHERE id <= $1)`, upTo); err != nil {
			s.logCatchUp(err)
			return
		}
		if !left || batches >= catchUpBatches || time.Now().After(deadline) {
			return
		}
		n, _, err := s.DeriveFacts(ctx, factBatch)
		if err != nil {
			s.logCatchUp(err)
			return
		}
		if n > 0 {
			batches++
			continue
		}
		// Held by another deriver (or a rebuild, or an erasure): it commits soon.
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Store) logCatchUp(err error) {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("derive revenue facts before a report", "err", err)
	}
}

// wakeFactDeriver tells this replica's deriver that its event path queued
// facts; it never blocks.
func (s *Store) wakeFactDeriver() {
	select {
	case s.factsWake <- struct{}{}:
	default:
	}
}

// FactDeriverTiming sets when a replica's fact deriver runs.
type FactDeriverTiming struct {
	// Poll is how often it looks for facts other replicas queued; its own
	// are derived soon after they commit.
	Poll time.Duration
	// Quiet and MaxDefer make it yield to this replica's event path: while
	// an event batch committed less than Quiet ago it waits, but never
	// longer than MaxDefer after it was first woken (by its own commits or
	// a poll) without deriving. Zero Quiet never waits.
	Quiet, MaxDefer time.Duration
}

// RunFactDeriver derives queued facts until ctx ends: soon after this
// Store's event path queues some (at most one derivation per factLinger),
// and every poll for those other replicas queued. Every replica runs one.
//
// Deriving a customer's facts costs about as much CPU as applying its
// event, so during a burst of webhooks (a renewal wave, a backlog Stripe
// retries at once) the deriver would take a third of the capacity
// acknowledging them needs. It yields instead: it derives once the event
// path has been quiet for t.Quiet, or when work has waited t.MaxDefer
// (then it drains the queue in one go, and the wait starts again). The
// facts lag by at most about MaxDefer in a burst and reports settle what
// is queued themselves (catchUpFacts); webhooks are answered first.
func (s *Store) RunFactDeriver(ctx context.Context, t FactDeriverTiming) {
	tick := time.NewTicker(t.Poll)
	defer tick.Stop()
	var last, waitingSince time.Time
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.factsWake:
			if d := factLinger - time.Since(last); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		case <-tick.C:
		case <-retry:
			retry = nil
		}
		if t.Quiet > 0 {
			if waitingSince.IsZero() {
				waitingSince = time.Now()
			}
			if busy := time.Since(s.lastEventBatch()); busy < t.Quiet && time.Since(waitingSince) < t.MaxDefer {
				if retry == nil {
					retry = time.After(t.Quiet - busy)
				}
				continue
			}
		}
		waitingSince = time.Time{}
		for {
			last = time.Now()
			_, full, err := s.DeriveFacts(ctx, factBatch)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("derive revenue facts", "err", err)
				}
				break
			}
			if !full {
				break
			}
		}
	}
}

// lastEventBatch is when this Store's event path last committed a batch.
func (s *Store) lastEventBatch() time.Time {
	return time.Unix(0, s.eventBatchAt.Load())
}

// FactsQueue reports the queued derivations and the age of the oldest: how
// far the facts reports are behind the ledger.
func (s *Store) FactsQueue(ctx context.Context) (n int64, oldest time.Duration, err error) {
	var r struct {
		N   int64   `db:"n"`
		Age float64 `db:"age"`
	}
	// Counting stops at 10,000 (as the outbox gauges do): a gauge must not
	// cost a pass over a backlog.
	const q = `
SELECT (SELECT count(*) FROM (SELECT 1 FROM revenue_facts_pending LIMIT 10000) x) AS n,
       coalesce((SELECT extract(epoch FROM now() - queued_at) FROM revenue_facts_pending ORDER BY id LIMIT 1), 0) AS age`
	if err := s.db.GetContext(ctx, &r, q); err != nil {
		return 0, 0, fmt.Errorf("revenue facts queue: %w", translate(err))
	}
	return r.N, time.Duration(r.Age * float64(time.Second)), nil
}
