package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestEraseNotifies: an erasure tells every replica's entitlement cache to
// drop the account (the invalidation feed), at commit, like any other change of the account.
func TestEraseNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFixture("N", 1)
	applyAll(t, st, f.history())
	// The feed re-reads rows while any transaction of the cluster running
	// at the previous read is still open: count only rows not seen before.
	xmin, _, err := st.Invalidations(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, before, err := st.Invalidations(ctx, xmin)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, r := range before {
		seen[r.ID] = true
	}
	if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: f.account, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	_, all, err := st.Invalidations(ctx, xmin)
	if err != nil {
		t.Fatal(err)
	}
	var rows []billing.Invalidation
	for _, r := range all {
		if !seen[r.ID] {
			rows = append(rows, r)
		}
	}
	if len(rows) != 1 || rows[0].Token || rows[0].Bucket != billing.CacheBucket(f.account) {
		t.Errorf("invalidations %+v, want one for %s's bucket", rows, f.account)
	}
}
