package pgserver_test

import (
	"context"
	"testing"

	"github.com/billingd/billingd/internal/pgserver"
)

// The server stops when its last user that may stop it ends, never while
// another process still uses it, whatever the order.
func TestUseRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newServer(t)
	// Two processes' views of one data directory.
	other, err := pgserver.New(srv.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	use := func(s *pgserver.Server) *pgserver.Use {
		t.Helper()
		u, err := s.Use(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	release := func(u *pgserver.Use, stop, wantStopped bool) {
		t.Helper()
		stopped, err := u.Release(ctx, stop)
		if err != nil || stopped != wantStopped {
			t.Fatalf("Release(stop=%v) = %v, %v; want stopped=%v", stop, stopped, err, wantStopped)
		}
		if running := srv.Running(ctx); running == wantStopped {
			t.Fatalf("running=%v after Release reported stopped=%v", running, stopped)
		}
	}

	first := use(srv)
	second := use(other)
	if !first.Started() || second.Started() {
		t.Fatalf("started: first %v, second %v", first.Started(), second.Started())
	}
	// The first ends while the second still uses the server: it stays up
	// and answers.
	release(first, true, false)
	if err := connectAsRoot(t, other); err != nil {
		t.Fatalf("the second user lost its database: %v", err)
	}
	// The last one stops it.
	release(second, true, true)

	// In the other order, and with a user that may not stop it (a
	// one-shot command next to a server it did not start).
	first = use(srv)
	second = use(other)
	release(second, false, false)
	release(first, true, true)

	// A user that may not stop it leaves it running even when last.
	first = use(srv)
	release(first, false, false)
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
