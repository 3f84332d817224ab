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
	"github.com/lib/pq"
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
			res, err := st.AccountLink(ctx, fmt.Sprintf("acct_race%d", i), "cus_Race1")
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
	notes := make(chan *pq.Notification, 16)
	ln, err := pq.NewListenerConn(url, notes)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ln.Listen(postgres.AccountChannel); err != nil {
		t.Fatal(err)
	}
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
			res, err := st.AccountLink(ctx, tt.account, "cus_Notify1")
			if res != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("link: %v %v, want %v %v", res, err, tt.want, tt.err)
			}
			// PostgreSQL sends pending notifications before the reply to
			// the listening session's next query: after the ping, whatever
			// was sent is in notes.
			if err := ln.Ping(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for len(notes) > 0 {
				got = append(got, (<-notes).Extra)
			}
			switch {
			case tt.notify && (len(got) != 1 || got[0] != tt.account):
				t.Errorf("notifications %q, want one with %q", got, tt.account)
			case !tt.notify && len(got) != 0:
				t.Errorf("notifications %q, want none", got)
			}
		})
	}
}
