package postgres_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
)

func TestRateSlots(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	const gap = 100 * time.Millisecond
	t.Run("ConcurrentReservationsSpacedByGap", func(t *testing.T) {
		var mu sync.Mutex
		var slots []time.Time
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ { // three replicas
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 8; i++ {
					slot, _, err := st.ReserveRateSlot(ctx, "profitwell", gap)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					slots = append(slots, slot)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
		for i := 1; i < len(slots); i++ {
			if d := slots[i].Sub(slots[i-1]); d < gap {
				t.Fatalf("slots %d and %d are %v apart, want ≥ %v", i-1, i, d, gap)
			}
		}
		if len(slots) != 24 {
			t.Fatalf("%d slots, want 24", len(slots))
		}
	})
	t.Run("PauseHoldsEveryReplica", func(t *testing.T) {
		if err := st.PauseRateSlots(ctx, "profitwell", time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, wait, err := st.ReserveRateSlot(ctx, "profitwell", gap); err != nil || wait < 59*time.Minute {
			t.Fatalf("wait after a 1 h pause = %v (err %v)", wait, err)
		}
	})
	t.Run("OtherAPIsIndependent", func(t *testing.T) {
		if _, wait, err := st.ReserveRateSlot(ctx, "stripe", gap); err != nil || wait != 0 {
			t.Fatalf("first stripe slot wait = %v (err %v), want 0", wait, err)
		}
	})
}
