package stripeapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// peakStore counts how many pages are being written at once.
type peakStore struct {
	*postgres.Store
	mu        sync.Mutex
	now, peak int
}

func (p *peakStore) ApplyObjects(ctx context.Context, evs []billing.Event) ([]billing.Outcome, []error, error) {
	p.mu.Lock()
	p.now++
	p.peak = max(p.peak, p.now)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.now--
		p.mu.Unlock()
	}()
	// Long enough for the other walkers' pages to arrive meanwhile.
	time.Sleep(20 * time.Millisecond)
	return p.Store.ApplyObjects(ctx, evs)
}

// Eight walkers write at most Appliers pages at once, and store what a
// single cursor does.
func TestBackfillAppliersBoundWrites(t *testing.T) {
	t.Parallel()
	fake := partsFixture(t)
	want := singleCursor(t, fake)

	st := &peakStore{Store: pgtest.Open(t)}
	s := syncer(t, fake, st.Store, 8, 1000)
	s.Store, s.Appliers = st, 2
	if _, err := s.Backfill(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.peak != 2 {
		t.Errorf("at most %d pages written at once, want 2 (Appliers) with 8 walkers", st.peak)
	}
	sameBackfillState(t, syncState(t, st.Store), want)
}
