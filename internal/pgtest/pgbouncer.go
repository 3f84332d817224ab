package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgserver"
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
