package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/billingd/billingd/billing"
)

// Group commit for the event path.
//
// Each event still commits before its caller hears about it, but events
// that arrive while another batch is being applied wait and then go
// together in one transaction (applyBatch). On two cores PostgreSQL spends
// most of an event's cost on per-statement and per-commit work (parse-free
// execution start, round trips, the WAL flush), not on the rows, so a
// batch of n events costs little more than one: throughput rises with load
// instead of queueing on commits.
//
// Callers queue themselves; a leader goroutine per slot (at most slots at
// a time) applies the queue's head, up to max events per batch, until the
// queue is empty. A caller alone on an idle store starts a leader at once
// and pays no wait. While a batch is running, another starts only once
// minBatch events are queued; fewer wait for the running one to finish.
// The database is busy either way, and larger batches cost less per event:
// at c32, minBatch 16 gave 4,710–5,480 events/s against 4,340–4,620 for
// starting at once (bench, back to back); 24 was worse again, and c8 did
// not change. Batching changes no rule of ApplyEvent: every event in a
// batch is recorded, ordered, linked and tombstone-checked exactly as it
// would be alone, and a failed batch is retried one event per transaction,
// so one event that can never be stored fails only its own delivery.
//
// Deadlines. A caller's context deadline is its delivery's
// deadline, and nothing waits past it:
//   - admission: a caller whose wait, estimated from the queue's length
//     and recent batch durations, would already pass its deadline, or
//     that finds maxQueue callers waiting, is refused at once
//     (billing.ErrOverloaded): under overload the queue stays short, the
//     events admitted are applied at full speed and the others are told
//     to retry in milliseconds, not seconds;
//   - a caller whose context ends while it is queued leaves the queue
//     (ErrOverloaded: never applied); one whose batch is already running
//     returns at once too, and its event may still commit (a 503 for an
//     event that committed is a duplicate on Stripe's retry, harmless);
//   - a batch runs on a context detached from its callers' requests (one
//     client hanging up must not roll back the others' events) that ends
//     at the latest of their deadlines, and its transaction gets the same
//     bound as statement_timeout and a lock_timeout of a quarter of the
//     time left to the earliest one (batchLimits): a row locked by another
//     transaction fails the batch early, the batch is retried one event
//     per transaction with a short lock timeout, and only the events whose
//     rows are still locked wait for them, each until its own deadline,
//     outside the leader slots (waitLocked).
type groupApplier struct {
	mu       sync.Mutex
	queue    []*groupWaiter // FIFO; waiters that left stay, marked, until taken
	queued   int            // waiters in queue that have not left
	busy     int            // leader goroutines running
	slots    int            // leader goroutines at most
	max      int            // events per batch
	maxQueue int            // waiting callers at most (admission)
	avgBatch time.Duration  // moving average of batch durations (admission)
	locked   int            // events waiting for a locked row outside the slots

	observe func(events int, took time.Duration, err error) // Store.ObserveEventBatches
	gauge   func(queued int)                                // Store.ObserveEventQueue
}

type groupWaiter struct {
	ev       billing.Event
	deadline time.Time // zero: the caller set none (backfill, reconcile)
	out      billing.Outcome
	err      error
	done     chan struct{} // closed once out and err are set
	state    waiterState   // guarded by groupApplier.mu
	left     atomic.Bool   // the caller returned before done: its result is not needed
}

type waiterState uint8

const (
	waiterQueued waiterState = iota
	waiterTaken              // in a batch
	waiterGone               // left the queue before a batch took it
)

// Defaults: two leaders keep the database busy while one of them commits,
// and batches rarely reach defaultGroupMax except in a storm.
const (
	defaultGroupSlots = 2
	defaultGroupMax   = 64
	minBatch          = 16 // queued events that justify a second concurrent batch
	// defaultMaxQueue bounds the waiting callers: enough full batches to
	// keep every slot busy through a burst, few enough that the memory of
	// the requests waiting (about 30 KiB each with their connection) stays
	// small and a queued event is applied within a fraction of a second at
	// full speed (0.1 s at 5,000 events/s; 1.2 s at 420/s, the slowest
	// this machine measured while shared).
	defaultMaxQueue = 512
	// noDeadline stands in for the deadline of a caller that set none
	// (backfill, reconcile): it bounds its batch as the old fixed batch
	// timeout did.
	noDeadline = 30 * time.Second
	// Lock timeouts: a batch waits for a row lock at most a quarter of
	// the time left to its earliest deadline (at least minLockTimeout:
	// two batches of two replicas wait on each other's rows for a few
	// milliseconds in normal operation, which must not fail them), so
	// that after a lock timeout every other event of the batch still has
	// time to be applied alone; alone, an event first waits at most
	// soloLockTimeout, so that it does not hold the ones after it.
	minLockTimeout  = 100 * time.Millisecond
	soloLockTimeout = 100 * time.Millisecond
)

func newGroupApplier(slots, max, maxQueue int) *groupApplier {
	if slots <= 0 {
		slots = defaultGroupSlots
	}
	if max <= 0 {
		max = defaultGroupMax
	}
	if maxQueue <= 0 {
		maxQueue = defaultMaxQueue
	}
	return &groupApplier{slots: slots, max: max, maxQueue: maxQueue}
}

// txLimits are a transaction's lock_timeout and statement_timeout (zero:
// the server's setting).
type txLimits struct {
	lock, statement time.Duration
}

type batchFunc func(context.Context, []billing.Event, txLimits) ([]batchResult, error)

// canStart reports whether a new leader may start now (mu held): always
// when none is running, otherwise only once minBatch events are queued.
func (g *groupApplier) canStart() bool {
	return g.busy < g.slots && (g.busy == 0 || g.queued >= minBatch)
}

// admit refuses a caller that cannot be applied before deadline (mu held).
// The queue drains a batch of up to max events per slot every avgBatch or
// so; the caller waits for the batches ahead of it, then for its own. The
// estimate must fit twice in the time left: batch durations vary, and a
// caller admitted that then misses its deadline has waited seconds for its
// 503 instead of milliseconds.
func (g *groupApplier) admit(now, deadline time.Time) error {
	if g.queued >= g.maxQueue {
		return fmt.Errorf("%w: %d events already waiting", billing.ErrOverloaded, g.queued)
	}
	if g.queued == 0 && g.busy == 0 {
		// Idle: the caller's batch starts now. The average is of batches
		// past, and with nothing running it can never be corrected (a slow
		// batch followed by quiet would refuse every later delivery, and
		// every Stripe retry, for ever): this caller is the probe.
		return nil
	}
	ahead := g.queued / g.max / g.slots
	wait := time.Duration(ahead+1) * g.avgBatch
	if g.busy > 0 {
		wait += g.avgBatch // the running batches finish first
	}
	if now.Add(2 * wait).After(deadline) {
		return fmt.Errorf("%w: expected wait %v passes the deadline", billing.ErrOverloaded, wait.Round(time.Millisecond))
	}
	return nil
}

// Admit reports whether an event with this deadline would be queued now,
// without queueing it: the webhook handler asks before it decodes a body,
// so that shedding load costs as little as possible.
func (g *groupApplier) Admit(deadline time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.admit(time.Now(), deadline)
}

// apply queues ev and waits for its result, for its context's end, or is
// refused at once (admit). run applies one batch and returns one result
// per event, or an error for the whole transaction.
func (g *groupApplier) apply(ctx context.Context, ev billing.Event, run batchFunc) (billing.Outcome, error) {
	w := &groupWaiter{ev: ev, done: make(chan struct{})}
	deadline, hasDeadline := ctx.Deadline()
	g.mu.Lock()
	if hasDeadline {
		if err := g.admit(time.Now(), deadline); err != nil {
			g.mu.Unlock()
			return "", err
		}
		w.deadline = deadline
	}
	g.queue = append(g.queue, w)
	g.queued++
	if g.canStart() {
		g.busy++
		go g.lead(run)
	}
	g.setGauge()
	g.mu.Unlock()

	select {
	case <-w.done:
		return w.out, w.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	state := w.state
	if state == waiterQueued {
		w.state = waiterGone
		g.queued--
		g.setGauge()
	}
	g.mu.Unlock()
	select {
	case <-w.done: // finished meanwhile: the result is there
		return w.out, w.err
	default:
	}
	w.left.Store(true)
	if state != waiterTaken {
		return "", fmt.Errorf("%w: not applied before the deadline: %w", billing.ErrOverloaded, ctx.Err())
	}
	return "", fmt.Errorf("%w: not committed before the deadline: %w", billing.ErrUnavailable, ctx.Err())
}

func (g *groupApplier) setGauge() {
	if g.gauge != nil {
		g.gauge(g.queued)
	}
}

// lead applies batches from the queue's head until the queue is empty,
// then frees its slot.
func (g *groupApplier) lead(run batchFunc) {
	for {
		g.mu.Lock()
		batch := g.take(time.Now())
		if len(batch) == 0 {
			g.busy--
			g.mu.Unlock()
			return
		}
		g.setGauge()
		g.mu.Unlock()
		g.runBatch(batch, run)
	}
}

// take removes up to max waiters from the queue's head (mu held), skipping
// those that left and those whose deadline has passed (their callers are
// leaving: the context's timer fires at the deadline).
func (g *groupApplier) take(now time.Time) []*groupWaiter {
	batch := make([]*groupWaiter, 0, min(g.queued, g.max))
	i := 0
	for ; i < len(g.queue) && len(batch) < g.max; i++ {
		w := g.queue[i]
		g.queue[i] = nil // the backing array must not keep it alive
		if w.state != waiterQueued {
			continue
		}
		g.queued--
		if !w.deadline.IsZero() && !now.Before(w.deadline) {
			w.state = waiterGone
			continue
		}
		w.state = waiterTaken
		batch = append(batch, w)
	}
	g.queue = g.queue[i:]
	if len(g.queue) == 0 {
		g.queue = nil // drop the grown backing array once the burst is over
	}
	return batch
}

// runBatch applies one batch and hands every waiter its result.
func (g *groupApplier) runBatch(batch []*groupWaiter, run batchFunc) {
	t0 := time.Now()
	first, last := batchDeadlines(batch, t0)
	ctx, cancel := context.WithDeadline(context.Background(), last)
	defer cancel()
	evs := make([]billing.Event, len(batch))
	for i, w := range batch {
		evs[i] = w.ev
	}
	res, err := safeRun(ctx, evs, batchLimits(t0, first, last), run)
	if err != nil {
		res = g.fallback(ctx, batch, run, err)
	}
	took := time.Since(t0)
	if g.observe != nil {
		g.observe(len(evs), took, err)
	}
	g.mu.Lock()
	if g.avgBatch == 0 {
		g.avgBatch = took
	} else {
		g.avgBatch += (took - g.avgBatch) / 8
	}
	g.mu.Unlock()
	for i, w := range batch {
		if res[i].err == errLocked {
			continue // waitLocked answers it
		}
		w.out, w.err = res[i].out, res[i].err
		close(w.done)
	}
}

// errLocked marks, in fallback's results, an event left to waitLocked.
var errLocked = errors.New("row locked")

// fallback retries a failed batch one event per transaction: a deadlock
// or a serialisation failure between replicas is retried, an event the
// database refuses (ErrInvalid) fails alone, and an event whose rows are
// locked by another transaction (lock timeout) is left to waitLocked, so
// it holds neither the other events nor the leader's slot.
func (g *groupApplier) fallback(ctx context.Context, batch []*groupWaiter, run batchFunc, err error) []batchResult {
	res := make([]batchResult, len(batch))
	if len(batch) == 1 && !isLockTimeout(err) {
		res[0].err = err
		return res
	}
	var locked []*groupWaiter
	for i, w := range batch {
		now := time.Now()
		first, _ := batchDeadlines(batch[i:i+1], now)
		var r []batchResult
		rerr := err // a batch of one was this event alone already
		switch {
		case w.left.Load():
			res[i].err = err // nobody waits for it any more
			continue
		case !now.Before(first):
			res[i].err = fmt.Errorf("%w: not committed before the deadline: %w", billing.ErrUnavailable, context.DeadlineExceeded)
			continue
		case len(batch) > 1:
			lim := txLimits{lock: min(soloLockTimeout, first.Sub(now)), statement: first.Sub(now)}
			r, rerr = safeRun(ctx, []billing.Event{w.ev}, lim, run)
		}
		switch {
		case rerr == nil:
			res[i] = r[0]
		case isLockTimeout(rerr):
			res[i].err = errLocked
			locked = append(locked, w)
		default:
			res[i].err = rerr
		}
	}
	if len(locked) > 0 {
		g.waitLocked(locked, run)
	}
	return res
}

// waitLocked applies events whose rows another transaction holds, one per
// transaction, each waiting for its locks until its own deadline, in a
// goroutine of their own: the leader goes back to the queue. At most slots
// of them wait at once (each holds a database connection); beyond that
// they fail at once with ErrUnavailable, and Stripe retries.
func (g *groupApplier) waitLocked(ws []*groupWaiter, run batchFunc) {
	g.mu.Lock()
	if g.locked >= g.slots {
		g.mu.Unlock()
		for _, w := range ws {
			w.err = fmt.Errorf("%w: its rows are locked by another transaction", billing.ErrUnavailable)
			close(w.done)
		}
		return
	}
	g.locked++
	g.mu.Unlock()
	go func() {
		defer func() {
			g.mu.Lock()
			g.locked--
			g.mu.Unlock()
		}()
		for _, w := range ws {
			now := time.Now()
			first, _ := batchDeadlines([]*groupWaiter{w}, now)
			if w.left.Load() || !now.Before(first) {
				w.err = fmt.Errorf("%w: its rows stayed locked past the deadline", billing.ErrUnavailable)
				close(w.done)
				continue
			}
			ctx, cancel := context.WithDeadline(context.Background(), first)
			r, err := safeRun(ctx, []billing.Event{w.ev}, txLimits{lock: first.Sub(now), statement: first.Sub(now)}, run)
			cancel()
			switch {
			case isLockTimeout(err):
				w.err = fmt.Errorf("%w: its rows stayed locked past the deadline: %w", billing.ErrUnavailable, err)
			case err != nil:
				w.err = err
			default:
				w.out, w.err = r[0].out, r[0].err
			}
			close(w.done)
		}
	}()
}

// batchDeadlines returns the earliest and the latest deadline of a batch's
// callers; a caller without one counts as noDeadline from now.
func batchDeadlines(batch []*groupWaiter, now time.Time) (first, last time.Time) {
	for _, w := range batch {
		d := w.deadline
		if d.IsZero() {
			d = now.Add(noDeadline)
		}
		if first.IsZero() || d.Before(first) {
			first = d
		}
		if d.After(last) {
			last = d
		}
	}
	return first, last
}

// batchLimits are the timeouts of a batch whose callers' deadlines range
// from first to last: a lock wait uses at most a quarter of the time left
// to the earliest, so that a locked row leaves the batch time to fall back
// to one event per transaction, and no statement outlives every caller.
// (Not the earliest for statements: a batch that merely runs slowly, on a
// busy database, would then fail and be retried one event per transaction,
// slower still.)
func batchLimits(now, first, last time.Time) txLimits {
	return txLimits{lock: max(first.Sub(now)/4, minLockTimeout), statement: max(last.Sub(now), minLockTimeout)}
}

// isLockTimeout reports a lock_timeout (55P03): the rows were locked by
// another transaction for longer than the batch could wait.
func isLockTimeout(err error) bool {
	pe := asPQ(err)
	return pe != nil && pe.Code == "55P03"
}

// safeRun is run with a panic turned into an error: a leader that
// panicked would keep its slot and leave every queued caller waiting.
func safeRun(ctx context.Context, evs []billing.Event, lim txLimits, run batchFunc) (res []batchResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("apply event batch: panic: %v", p)
		}
	}()
	res, err = run(ctx, evs, lim)
	if err == nil && len(res) != len(evs) {
		return nil, fmt.Errorf("apply event batch: %d results for %d events", len(res), len(evs))
	}
	return res, err
}

// batchResult is one event's result in a batch.
type batchResult struct {
	out billing.Outcome
	err error
}
