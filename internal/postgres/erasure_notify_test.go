package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/lib/pq"
)

// TestEraseNotifies: an erasure tells every replica's entitlement cache to
// drop the account, at commit, like any other change of the account.
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
	notes := make(chan *pq.Notification, 16)
	ln, err := pq.NewListenerConn(url, notes)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ln.Listen(postgres.AccountChannel); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseAccount(ctx, billing.ErasureRequest{AccountID: f.account, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	// Pending notifications arrive before the reply to the listener's next
	// query.
	if err := ln.Ping(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(notes) > 0 {
		got = append(got, (<-notes).Extra)
	}
	if len(got) != 1 || got[0] != f.account {
		t.Errorf("notifications %q, want one for %s", got, f.account)
	}
}
