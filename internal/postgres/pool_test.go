package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// openBehindPgBouncer opens a Store on a fresh database through PgBouncer
// 1.18 in transaction mode, with the session pool direct, as serve does
// with DATABASE_URL on the pooler and DATABASE_SESSION_URL past it.
func openBehindPgBouncer(t *testing.T, opt postgres.Options) (st *postgres.Store, direct string) {
	t.Helper()
	direct = pgtest.URL(t)
	b := pgtest.StartPgBouncer(t, pgtest.AdminURL(t))
	opt.SessionURL = direct
	st, err := postgres.Open(context.Background(), b.URL(direct), slog.New(slog.DiscardHandler), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, direct
}

// Behind PgBouncer in transaction mode the event path, the API's reads and
// writes, the jobs (purge, ledger rebuild, the Stripe sync lock) and
// start-up (migrations, keys) work, with many more clients than server
// connections, and a batch leaves the same state as it does directly.
// Eight event batchers and 24 client connections on PgBouncer's 10 server
// connections make each client meet several server connections: with
// statements prepared on the pool (PrepareStatements) or lib/pq's two
// exchange parameterised statements, this failed with the issue's `bind
// message supplies 2 parameters, but prepared statement "2" requires 8`
// and `unnamed prepared statement does not exist`.
func TestThroughPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, direct := openBehindPgBouncer(t, postgres.Options{MaxOpenConns: 24, EventBatchers: 8})

	// Start-up: migrations on the session pool, keys on the pooled one.
	if err := st.MigrateUp(); err != nil {
		t.Fatalf("migrate through the session pool: %v", err)
	}
	if err := st.CheckSchema(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.PrepareKeys(ctx); err != nil {
		t.Fatalf("prepare keys: %v", err)
	}
	if err := st.CheckWrites(ctx); err != nil {
		t.Fatalf("write probe: %v", err)
	}

	// The batch scenario, through the pooler and directly: same state.
	before, batch := batchScenario()
	ref, err := postgres.Open(ctx, pgtest.URL(t), slog.New(slog.DiscardHandler), postgres.Options{PrepareStatements: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, s := range []*postgres.Store{st, ref} {
		applyAll(t, s, before)
		if _, err := s.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_B3", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, errs, err := postgres.ApplyBatch(ctx, s, batch); err != nil {
			t.Fatal(err)
		} else if e := slices.IndexFunc(errs, func(e error) bool { return e != nil }); e >= 0 {
			t.Fatalf("%s: %v", batch[e].ID, errs[e])
		}
	}
	// The event path ran its statements as the server sessions' own
	// prepared ones (session plans), not unnamed ones planned each time.
	var sessionStmts int
	if err := st.DB().GetContext(ctx, &sessionStmts, `SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'bd\_%'`); err != nil {
		t.Fatal(err)
	}
	if sessionStmts == 0 {
		t.Error("no session statements on the server connection the pooler handed out last")
	}
	got, want := normalisedState(t, st), normalisedState(t, ref)
	for _, name := range slices.Sorted(mapsKeys(want)) {
		if got[name] != want[name] {
			t.Errorf("%s through PgBouncer differs from direct:\n got: %s\nwant: %s", name, got[name], want[name])
		}
	}

	// Many concurrent webhooks and API calls: 48 clients on 10 server
	// connections, each transaction on whichever is free.
	var wg sync.WaitGroup
	errc := make(chan error, 48)
	for w := 0; w < 48; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f := newFixture(fmt.Sprintf("PB%02d", w), 2)
			for _, ev := range f.history() {
				if _, err := st.ApplyEvent(ctx, ev); err != nil {
					errc <- fmt.Errorf("apply %s: %w", ev.ID, err)
					return
				}
			}
			if _, err := st.AccountLink(ctx, f.account, f.cus[0], billing.LinkOptions{}); err != nil {
				errc <- fmt.Errorf("link %s: %w", f.account, err)
				return
			}
			ab, err := st.AccountBilling(ctx, f.account)
			if err != nil {
				errc <- fmt.Errorf("billing %s: %w", f.account, err)
				return
			}
			if len(ab.Subscriptions) != 2 {
				errc <- fmt.Errorf("billing %s: %d subscriptions, want 2", f.account, len(ab.Subscriptions))
				return
			}
			if _, err := st.AccountSubscriptions(ctx, f.account, true); err != nil {
				errc <- fmt.Errorf("subscriptions %s: %w", f.account, err)
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	// Jobs: purge and the Stripe sync lock hold session locks on the
	// session pool; a second Store (a second replica) is refused the lock
	// while it is held, then gets it.
	if _, err := st.Purge(ctx, postgres.RetentionPolicy{EventRetention: 30 * 24 * time.Hour, MetricsRetention: 24 * time.Hour}); err != nil {
		t.Fatalf("purge: %v", err)
	}
	release, ok, err := st.TryStripeSyncLock(ctx)
	if err != nil || !ok {
		t.Fatalf("sync lock: ok=%v err=%v", ok, err)
	}
	other, err := postgres.Open(ctx, direct, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok2, err := other.TryStripeSyncLock(ctx); err != nil || ok2 {
		t.Fatalf("second replica took the held sync lock: ok=%v err=%v", ok2, err)
	}
	release()
	release2, ok2, err := other.TryStripeSyncLock(ctx)
	if err != nil || !ok2 {
		t.Fatalf("sync lock after release: ok=%v err=%v", ok2, err)
	}
	release2()
}

// CheckWrites (behind /readyz) fails when a write would: a database that
// answers pings but is read-only, as a standby or a pooler pointed at one
// is.
func TestCheckWritesFailsWhenReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CheckWrites(ctx); err != nil {
		t.Fatalf("writable database: %v", err)
	}
	var name string
	if err := st.DB().GetContext(ctx, &name, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s SET default_transaction_read_only = on`, name)); err != nil {
		t.Fatal(err)
	}
	ro, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Ping(ctx); err != nil {
		t.Fatalf("ping should still answer: %v", err)
	}
	if err := ro.CheckWrites(ctx); err == nil {
		t.Fatal("CheckWrites passed on a read-only database")
	}
}
