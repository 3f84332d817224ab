package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
)

// TestGroupApplierStress drives the group commit with many concurrent
// callers and a run function that sometimes fails whole batches: every
// caller must get exactly its own event's result, batches must form under
// load, and every leader slot must be free again at the end.
func TestGroupApplierStress(t *testing.T) {
	for _, slots := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("slots", slots), func(t *testing.T) {
			g := newGroupApplier(slots, 16, 0)
			var running, maxRunning, calls, biggest atomic.Int64
			run := func(ctx context.Context, evs []billing.Event, _ txLimits) ([]batchResult, error) {
				if n := running.Add(1); n > maxRunning.Load() {
					maxRunning.Store(n)
				}
				defer running.Add(-1)
				if int64(len(evs)) > biggest.Load() {
					biggest.Store(int64(len(evs)))
				}
				if calls.Add(1)%7 == 0 && len(evs) > 1 {
					return nil, errors.New("deadlock detected") // retried one event at a time
				}
				time.Sleep(200 * time.Microsecond)
				res := make([]batchResult, len(evs))
				for i, ev := range evs {
					if ev.ID == "evt_bad" {
						res[i].err = billing.ErrInvalid
						continue
					}
					res[i].out = billing.Outcome("applied:" + ev.ID)
				}
				return res, nil
			}
			var wg sync.WaitGroup
			for c := 0; c < 32; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						id := fmt.Sprintf("evt_%d_%d", c, i)
						if i%50 == 0 {
							id = "evt_bad"
						}
						out, err := g.apply(context.Background(), billing.Event{ID: id}, run)
						switch {
						case id == "evt_bad" && !errors.Is(err, billing.ErrInvalid):
							t.Errorf("bad event: got %q, %v; want ErrInvalid", out, err)
						case id != "evt_bad" && (err != nil || out != billing.Outcome("applied:"+id)):
							t.Errorf("event %s: got %q, %v", id, out, err)
						}
					}
				}()
			}
			wg.Wait()
			if maxRunning.Load() > int64(slots) {
				t.Errorf("%d batches ran at once with %d slots", maxRunning.Load(), slots)
			}
			if biggest.Load() < 2 {
				t.Errorf("no batch had more than one event under 32 concurrent callers")
			}
			// Callers are answered before their batch gives its slot back:
			// the last slot may still be on its way home, so wait (bounded).
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				g.mu.Lock()
				busy, queued := g.busy, len(g.queue)
				g.mu.Unlock()
				if busy == 0 && queued == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("after the run: %d busy slots of %d, %d queued", busy, slots, queued)
					break
				}
			}
		})
	}
}

// TestGroupApplierPanic: a batch that panics fails its callers with an
// error and gives its slot back, so later events are still applied.
func TestGroupApplierPanic(t *testing.T) {
	g := newGroupApplier(1, 8, 0)
	boom := func(ctx context.Context, evs []billing.Event, _ txLimits) ([]batchResult, error) {
		for _, ev := range evs {
			if ev.ID == "evt_panic" {
				panic("bug")
			}
		}
		return make([]batchResult, len(evs)), nil
	}
	if _, err := g.apply(context.Background(), billing.Event{ID: "evt_panic"}, boom); err == nil {
		t.Fatal("a panicking batch reported no error")
	}
	done := make(chan error, 1)
	go func() {
		_, err := g.apply(context.Background(), billing.Event{ID: "evt_ok"}, boom)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("event after the panic: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the slot was not given back after a panic")
	}
}

// blockingRun is a batch function whose batches wait until release is
// closed, recording every event it was given.
type blockingRun struct {
	release chan struct{}
	started chan struct{} // one send per batch started
	mu      sync.Mutex
	seen    []string
}

func newBlockingRun() *blockingRun {
	return &blockingRun{release: make(chan struct{}), started: make(chan struct{}, 64)}
}

func (b *blockingRun) run(ctx context.Context, evs []billing.Event, _ txLimits) ([]batchResult, error) {
	b.mu.Lock()
	for _, ev := range evs {
		b.seen = append(b.seen, ev.ID)
	}
	b.mu.Unlock()
	b.started <- struct{}{}
	<-b.release
	res := make([]batchResult, len(evs))
	for i := range res {
		res[i].out = billing.OutcomeApplied
	}
	return res, nil
}

func (b *blockingRun) saw(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.seen, id)
}

// A caller whose deadline passes while it is queued leaves the queue with
// ErrOverloaded, and its event is never applied; one whose batch is stuck
// returns at its deadline too (ErrUnavailable), not when the batch ends.
func TestGroupApplierDeadline(t *testing.T) {
	g := newGroupApplier(1, 8, 0)
	b := newBlockingRun()
	stuck := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := g.apply(ctx, billing.Event{ID: "evt_stuck"}, b.run)
		stuck <- err
	}()
	<-b.started // the only slot is now held by evt_stuck's batch

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := g.apply(ctx, billing.Event{ID: "evt_queued"}, b.run)
	if !errors.Is(err, billing.ErrOverloaded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued past its deadline: %v, want ErrOverloaded and DeadlineExceeded", err)
	}
	if err := <-stuck; !errors.Is(err, billing.ErrUnavailable) || errors.Is(err, billing.ErrOverloaded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck in a running batch past its deadline: %v, want ErrUnavailable (not overloaded) and DeadlineExceeded", err)
	}
	close(b.release)
	// The slot comes back; the queue no longer holds the caller that left.
	if _, err := g.apply(context.Background(), billing.Event{ID: "evt_after"}, b.run); err != nil {
		t.Fatal(err)
	}
	if b.saw("evt_queued") {
		t.Fatal("an event whose caller left the queue was applied")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.queued != 0 || g.busy != 0 {
		t.Fatalf("after the run: %d queued, %d busy", g.queued, g.busy)
	}
}

// Admission: a caller that cannot be applied before its deadline, or that
// finds the queue full, is refused at once and never queued.
func TestGroupApplierAdmission(t *testing.T) {
	t.Run("ExpectedWait", func(t *testing.T) {
		g := newGroupApplier(1, 8, 0)
		g.avgBatch = time.Hour // what recent batches took
		b := newBlockingRun()
		running := make(chan error, 1)
		go func() { // a batch running: the next caller waits for it
			_, err := g.apply(context.Background(), billing.Event{ID: "evt_running"}, b.run)
			running <- err
		}()
		<-b.started
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := g.apply(ctx, billing.Event{ID: "evt_late"}, b.run)
		if !errors.Is(err, billing.ErrOverloaded) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want ErrOverloaded at once", err)
		}
		close(b.release)
		if err := <-running; err != nil {
			t.Fatal(err)
		}
		if b.saw("evt_late") {
			t.Fatal("a refused event was applied")
		}
		// Without a deadline (backfill, reconcile) nothing is refused.
		if _, err := g.apply(context.Background(), billing.Event{ID: "evt_nodeadline"}, b.run); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("IdleAdmitsAfterSlowBatches", func(t *testing.T) {
		// One slow batch, then quiet: the average says an hour, but
		// nothing runs, so the next delivery is applied, not refused (else
		// no delivery, nor any Stripe retry, would ever run again).
		g := newGroupApplier(1, 8, 0)
		g.avgBatch = time.Hour
		b := newBlockingRun()
		close(b.release)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := g.apply(ctx, billing.Event{ID: "evt_probe"}, b.run); err != nil {
			t.Fatalf("an idle applier refused: %v", err)
		}
		if !b.saw("evt_probe") {
			t.Fatal("the probe was not applied")
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.avgBatch >= time.Hour {
			t.Fatalf("the average did not learn from the probe: %v", g.avgBatch)
		}
	})
	t.Run("QueueFull", func(t *testing.T) {
		g := newGroupApplier(1, 8, 2)
		b := newBlockingRun()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for i := range 3 { // one running, two queued
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := g.apply(ctx, billing.Event{ID: fmt.Sprint("evt_", i)}, b.run)
				errs <- err
			}()
			if i == 0 {
				<-b.started
			}
		}
		for {
			g.mu.Lock()
			n := g.queued
			g.mu.Unlock()
			if n == 2 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := g.apply(ctx, billing.Event{ID: "evt_full"}, b.run); !errors.Is(err, billing.ErrOverloaded) {
			t.Fatalf("queue full: %v, want ErrOverloaded", err)
		}
		close(b.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("admitted event: %v", err)
			}
		}
		if b.saw("evt_full") {
			t.Fatal("a refused event was applied")
		}
	})
}
