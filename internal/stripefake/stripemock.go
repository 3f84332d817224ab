package stripefake

// Stripe's official API mock (stripe-mock), for smoke tests of the real
// stripe-go client: it validates every request against Stripe's OpenAPI
// spec and answers with fixtures of the real API version, but keeps no
// state. scripts/install-deps.sh installs it with
// `go install github.com/stripe/stripe-mock@v0.203.0`.

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// TB is the part of testing.TB StartStripeMock uses: the package is
// linked into billingd (Lifecycle), which must not import testing.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
	Cleanup(func())
}

// StartStripeMock runs stripe-mock on a free loopback port for the rest of
// t and returns its base URL. It skips t, saying why, only when the binary
// is not installed.
func StartStripeMock(t TB) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock")
		if _, err := os.Stat(bin); err != nil {
			t.Skip("stripe-mock not installed (scripts/install-deps.sh installs it): skipping the smoke test")
		}
	}
	addr, tlsAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	// Both listeners on loopback, free ports: given only -http-addr,
	// stripe-mock still binds HTTPS on :12112 on every interface, so two
	// packages' smoke tests running at once collided there.
	cmd := exec.Command(bin, "-http-addr", addr, "-https-addr", tlsAddr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stripe-mock output:\n%s", out.String())
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not start on %s:\n%s", addr, out.String())
		}
	}
}

func freeLoopbackAddr(t TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
