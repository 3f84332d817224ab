package postgres

import (
	"context"
	"fmt"
	"sync"
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
// There are no background goroutines: callers queue themselves; at most
// slots callers at a time act as leaders, each applying the queue's head
// (up to max events) and handing the lead to the next queued caller when
// it is done. A caller alone on an idle store is its own batch of one and
// pays no wait. While a batch is running, another starts only once
// minBatch events are queued; fewer wait for the running one to finish.
// The database is busy either way, and larger batches cost less per event:
// at c32, minBatch 16 gave 4,710–5,480 events/s against 4,340–4,620 for
// starting at once (bench, back to back); 24 was worse again, and c8 did
// not change. Batching changes no rule of ApplyEvent: every event in
// a batch is recorded, ordered, linked and tombstone-checked exactly as it
// would be alone, and a failed batch is retried one event per transaction,
// so one event that can never be stored fails only its own delivery.
type groupApplier struct {
	mu    sync.Mutex
	queue []*groupWaiter
	busy  int // leader slots in use, handed-over ones included
	slots int // leader slots
	max   int // events per batch

	observe func(events int, took time.Duration, err error) // Store.ObserveEventBatches
}

type groupWaiter struct {
	ev     billing.Event
	out    billing.Outcome
	err    error
	done   chan struct{} // closed once out and err are set
	lead   chan struct{} // one send: the waiter now owns a leader slot
	handed bool          // a slot was handed to it (guarded by mu): never twice
}

// Defaults: two leaders keep the database busy while one of them commits,
// and batches rarely reach defaultGroupMax except in a storm.
const (
	defaultGroupSlots = 2
	defaultGroupMax   = 64
	minBatch          = 16 // queued events that justify a second concurrent batch
	// batchTimeout bounds one batch's transaction. The batch runs on a
	// context detached from its callers' requests: one client hanging up
	// must not roll back the others' events.
	batchTimeout = 30 * time.Second
)

func newGroupApplier(slots, max int) *groupApplier {
	if slots <= 0 {
		slots = defaultGroupSlots
	}
	if max <= 0 {
		max = defaultGroupMax
	}
	return &groupApplier{slots: slots, max: max}
}

// canStart reports whether a new batch may start now (mu held): always
// when none is running, otherwise only once minBatch events are queued.
func (g *groupApplier) canStart() bool {
	return g.busy < g.slots && (g.busy == 0 || len(g.queue) >= minBatch)
}

// apply queues ev, and leads batches while it holds a slot, until ev has
// its result. run applies one batch and returns one result per event, or
// an error for the whole transaction.
func (g *groupApplier) apply(ctx context.Context, ev billing.Event, run batchFunc) (billing.Outcome, error) {
	w := &groupWaiter{ev: ev, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := g.canStart()
	if lead {
		g.busy++
	}
	g.mu.Unlock()
	for {
		if lead {
			g.leadBatch(ctx, run)
			lead = false
		}
		select {
		case <-w.done:
			// Another leader applied ev after handing this waiter a slot:
			// the slot must still be used or passed on. The hand-over was
			// sent under mu before ev left the queue, so it is visible here.
			select {
			case <-w.lead:
				g.leadBatch(ctx, run)
			default:
			}
			return w.out, w.err
		case <-w.lead:
			lead = true
		}
	}
}

type batchFunc func(context.Context, []billing.Event) ([]batchResult, error)

// leadBatch applies one batch from the queue's head, then frees its slot
// and, if a batch may start now (canStart), hands a slot to the first
// queued caller that has none yet. Otherwise the batch still running takes
// the queue when it is done, and hands on from there.
func (g *groupApplier) leadBatch(ctx context.Context, run batchFunc) {
	g.mu.Lock()
	n := min(len(g.queue), g.max)
	batch := make([]*groupWaiter, n)
	copy(batch, g.queue[:n])
	g.queue = g.queue[n:]
	g.mu.Unlock()

	if n > 0 {
		g.runBatch(ctx, batch, run)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy--
	if !g.canStart() {
		return // a running leader takes what is queued when it is done
	}
	for _, w := range g.queue {
		if !w.handed {
			w.handed = true
			g.busy++
			w.lead <- struct{}{} // buffered, sent at most once: never blocks
			return
		}
	}
}

func (g *groupApplier) runBatch(ctx context.Context, batch []*groupWaiter, run batchFunc) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	evs := make([]billing.Event, len(batch))
	for i, w := range batch {
		evs[i] = w.ev
	}
	t0 := time.Now()
	res, err := safeRun(bctx, evs, run)
	if g.observe != nil {
		g.observe(len(evs), time.Since(t0), err)
	}
	if err != nil && len(batch) > 1 {
		// One transaction per event: a deadlock or a serialisation failure
		// between replicas is retried, and an event the database refuses
		// (ErrInvalid) fails alone.
		res = make([]batchResult, len(batch))
		for i, ev := range evs {
			r, err := safeRun(bctx, []billing.Event{ev}, run)
			if err != nil {
				res[i] = batchResult{err: err}
				continue
			}
			res[i] = r[0]
		}
		err = nil
	}
	for i, w := range batch {
		if err != nil {
			w.err = err
		} else {
			w.out, w.err = res[i].out, res[i].err
		}
		close(w.done)
	}
}

// safeRun is run with a panic turned into an error: a leader that
// panicked would keep its slot and leave every queued caller waiting.
func safeRun(ctx context.Context, evs []billing.Event, run batchFunc) (res []batchResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("apply event batch: panic: %v", p)
		}
	}()
	res, err = run(ctx, evs)
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
