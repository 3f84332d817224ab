package reconcile_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/reconcile"
)

// TestStripeMockSmoke runs backfill and reconcile against stripe-mock,
// which validates every request against Stripe's OpenAPI spec and answers
// with fixtures of the real API version: it proves the real client's
// requests (status=all, limit, created ranges, retrieve by ID) and that
// the decoder reads what Stripe sends. stripe-mock is stateless and lists
// one fixture object, so this checks shapes, not pagination.
func TestStripeMockSmoke(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock")
		if _, err := os.Stat(bin); err != nil {
			t.Skip("stripe-mock not installed (scripts/install-deps.sh installs it): skipping the smoke test")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 500 {
			t.Fatalf("stripe-mock did not start on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	st := pgtest.Open(t)
	client, err := reconcile.NewClient(reconcile.ClientConfig{Key: "sk_test_123", Base: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	s := &reconcile.Syncer{Client: client, Store: st}
	sum, err := s.Backfill(context.Background())
	if err != nil {
		t.Fatalf("backfill against stripe-mock: %v (%+v)", err, sum)
	}
	if sum.Customers.Listed == 0 || sum.Subscriptions.Listed == 0 || sum.Subscriptions.Applied == 0 {
		t.Fatalf("summary %+v: want stripe-mock's customer and subscription listed and applied", sum)
	}
	var n int
	if err := st.DB().Get(&n, `SELECT count(*) FROM subscriptions`); err != nil || n == 0 {
		t.Fatalf("%d subscriptions stored (%v)", n, err)
	}
	rep, err := s.Reconcile(context.Background(), reconcile.Options{})
	if err != nil {
		t.Fatalf("reconcile against stripe-mock: %v", err)
	}
	if len(rep.Failures) != 0 || len(rep.Drift) != 0 {
		t.Errorf("reconcile right after backfill: drift %+v, failures %+v; want none", rep.Drift, rep.Failures)
	}
	// --since sends created[gte]; stripe-mock rejects parameters the spec
	// does not allow.
	if _, err := s.Reconcile(context.Background(), reconcile.Options{Since: 24 * time.Hour}); err != nil {
		t.Fatalf("reconcile --since against stripe-mock: %v", err)
	}
}
