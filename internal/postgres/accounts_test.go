package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestAccountLinkRace: many concurrent links of one not-yet-seen customer
// to different accounts end with exactly one link, every other call told
// ErrLinkedElsewhere, and no error of any other kind (the upsert's row
// lock serialises them; a SELECT-then-INSERT would fail with 23505).
func TestAccountLinkRace(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	const n = 16
	results := make([]error, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := st.AccountLink(ctx, fmt.Sprintf("acct_race%d", i), "cus_Race1", billing.LinkOptions{})
			results[i], created[i] = err, res == billing.LinkCreated
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		switch {
		case results[i] == nil && created[i]:
			winners++
		case errors.Is(results[i], billing.ErrLinkedElsewhere):
		default:
			t.Errorf("link %d: %v (created %v)", i, results[i], created[i])
		}
	}
	if winners != 1 {
		t.Fatalf("%d links won, want exactly 1", winners)
	}
}

// TestAccountLinkNotifies: a link that changes an account notifies its
// channel at commit with the account ID; a repeated link changes nothing
// and sends nothing; a refused link sends nothing.
func TestAccountLinkNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The feed re-reads rows while any transaction of the cluster that was
	// running at the previous read is still open: skip IDs already seen, as
	// the cache does.
	xmin, _, err := st.Invalidations(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	tests := []struct {
		name    string
		account string
		want    billing.LinkResult
		err     error
		notify  bool
	}{
		{"FirstLinkNotifies", "acct_n", billing.LinkCreated, nil, true},
		{"RepeatIsQuiet", "acct_n", billing.LinkExisted, nil, false},
		{"RefusedIsQuiet", "acct_m", 0, billing.ErrLinkedElsewhere, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := st.AccountLink(ctx, tt.account, "cus_Notify1", billing.LinkOptions{})
			if res != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("link: %v %v, want %v %v", res, err, tt.want, tt.err)
			}
			next, rows, err := st.Invalidations(ctx, xmin)
			if err != nil {
				t.Fatal(err)
			}
			xmin = next
			var got []uint16
			for _, r := range rows {
				if !seen[r.ID] {
					seen[r.ID] = true
					got = append(got, r.Bucket)
				}
			}
			switch {
			case tt.notify && (len(got) != 1 || got[0] != billing.CacheBucket(tt.account)):
				t.Errorf("invalidations %v, want one for %q's bucket", got, tt.account)
			case !tt.notify && len(got) != 0:
				t.Errorf("invalidations %v, want none", got)
			}
		})
	}
}
