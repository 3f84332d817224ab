package postgres

import (
	"context"
	"errors"
	"fmt"
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
			g := newGroupApplier(slots, 16)
			var running, maxRunning, calls, biggest atomic.Int64
			run := func(ctx context.Context, evs []billing.Event) ([]batchResult, error) {
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
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.busy != 0 || len(g.queue) != 0 {
				t.Errorf("after the run: %d busy slots of %d, %d queued", g.busy, slots, len(g.queue))
			}
		})
	}
}

// TestGroupApplierPanic: a batch that panics fails its callers with an
// error and gives its slot back, so later events are still applied.
func TestGroupApplierPanic(t *testing.T) {
	g := newGroupApplier(1, 8)
	boom := func(ctx context.Context, evs []billing.Event) ([]batchResult, error) {
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
