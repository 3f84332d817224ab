package pgtest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgserver"
	"github.com/billingd/billingd/internal/postgres"
)

// StartPgBouncer starts pgbouncer in transaction mode (pgserver.PgBouncer)
// in front of the server that serverURL names (the shared test server's
// AdminURL, or a private Server's), stopped when t ends. A missing
// pgbouncer fails the test: scripts/test.sh installs it.
func StartPgBouncer(t testing.TB, serverURL string) *pgserver.PgBouncer {
	t.Helper()
	if err := os.MkdirAll(SharedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := pgserver.StartPgBouncer(ctx, serverURL, SharedDir, 0)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(b.Stop)
	return b
}

// OpenThroughPgBouncer returns a Store on a fresh migrated database
// reached through PgBouncer 1.18 in transaction mode, its session pool
// direct, set up as serve sets up DATABASE_URL on a pooler with
// DATABASE_SESSION_URL past it: no named statements, every parameterised
// statement one unnamed exchange with binary parameters. A test that
// writes through it fails where a JSON []byte is bound to a jsonb
// parameter, or a statement outlives its transaction.
func OpenThroughPgBouncer(t testing.TB) *postgres.Store {
	t.Helper()
	direct := URL(t)
	b := StartPgBouncer(t, AdminURL(t))
	st, err := postgres.Open(context.Background(), b.URL(direct), slog.New(slog.DiscardHandler), postgres.Options{SessionURL: direct})
	if err != nil {
		t.Fatalf("pgtest: open through pgbouncer: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
