package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// billingdBinary builds the real binary once per test run: these tests
// exercise the process as an operator runs it (signals, exit codes, stderr).
func billingdBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "billingd-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "billingd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// worldDir makes a directory the postgres user can enter (t.TempDir is 0700).
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "billingd-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startBillingd(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(billingdBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	return p
}

// waitReady polls /readyz until it answers 200 or the deadline passes.
func waitReady(t *testing.T, p *proc, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("billingd exited before ready: %v\nstderr:\n%s", err, p.stderr.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not ready within %v\nstderr:\n%s", within, p.stderr.String())
}

func stopWithSignal(t *testing.T, p *proc, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after %v: %v\nstderr:\n%s", sig, err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("did not exit after %v", sig)
	}
}

// The README's run command with no configuration: embedded PostgreSQL,
// ready, Ctrl-C stops both cleanly, and a second run reuses the data.
func TestServeEmbeddedNoConfig(t *testing.T) {
	dataDir := filepath.Join(worldDir(t), ".billingd")
	addr := freeAddr(t)
	env := []string{"BILLINGD_DATA_DIR=" + dataDir, "LISTEN_ADDR=" + addr}

	p := startBillingd(t, env)
	waitReady(t, p, addr, 60*time.Second)
	resp, err := http.Post("http://"+addr+"/webhooks/stripe", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.Errorf("embedded mode must enable webhooks with a development secret, got 503")
	}
	secret1, err := os.ReadFile(filepath.Join(dataDir, "webhook-secret"))
	if err != nil {
		t.Fatalf("development webhook secret not kept: %v", err)
	}
	if !strings.Contains(p.stderr.String(), strings.TrimSpace(string(secret1))) {
		t.Fatalf("development webhook secret not logged")
	}
	pgVersion, err := os.Stat(filepath.Join(dataDir, "pg", "PG_VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	stopWithSignal(t, p, os.Interrupt)
	assertPostgresStopped(t, filepath.Join(dataDir, "pg"))

	// Second run: same data directory, no new cluster, same secret.
	p2 := startBillingd(t, env)
	waitReady(t, p2, addr, 60*time.Second)
	again, err := os.Stat(filepath.Join(dataDir, "pg", "PG_VERSION"))
	if err != nil || !again.ModTime().Equal(pgVersion.ModTime()) {
		t.Fatalf("data directory was re-initialised")
	}
	secret2, _ := os.ReadFile(filepath.Join(dataDir, "webhook-secret"))
	if !bytes.Equal(secret1, secret2) {
		t.Fatalf("development webhook secret changed between runs")
	}
	stopWithSignal(t, p2, syscall.SIGTERM)
	assertPostgresStopped(t, filepath.Join(dataDir, "pg"))
}

func assertPostgresStopped(t *testing.T, pgData string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgData, "postmaster.pid")); err == nil {
		t.Fatalf("postmaster.pid left behind in %s", pgData)
	}
	out, _ := exec.Command("ps", "-eo", "args").Output()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "postgres") && strings.Contains(sc.Text(), pgData) {
			t.Fatalf("postgres still running: %s", sc.Text())
		}
	}
}

// Bad configuration fails fast: one clear line on stderr, exit 1, no stack.
func TestBadConfigFailsFast(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"ListenAddrNonsense", []string{"LISTEN_ADDR=nonsense", "DATABASE_URL=postgres://u@127.0.0.1:1/db"}, "LISTEN_ADDR"},
		{"DatabaseUnreachable", []string{"DATABASE_URL=postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "LISTEN_ADDR=" + freeAddr(t)}, "connect to database"},
		{"DatabaseURLNotURL", []string{"DATABASE_URL=mysql://x"}, "DATABASE_URL"},
		{"LogLevel", []string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"Duration", []string{"WEBHOOK_TOLERANCE=five"}, "WEBHOOK_TOLERANCE"},
		{"WebhookSecret", []string{"STRIPE_WEBHOOK_SECRETS=notasecret"}, "STRIPE_WEBHOOK_SECRETS"},
		{"ProfitWellTokenWithoutKey", []string{"PROFITWELL_API_TOKEN=abc"}, "PROFITWELL_ALIAS_KEY"},
		{"PprofNotLoopback", []string{"PPROF_ADDR=0.0.0.0:6060"}, "PPROF_ADDR"},
		{"UnknownCommand", nil, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{}
			if tc.name == "UnknownCommand" {
				args = []string{"frobnicate"}
			}
			cmd := exec.Command(billingdBinary(t), args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() == 0 {
				t.Fatalf("want non-zero exit, got %v", err)
			}
			first := strings.SplitN(stderr.String(), "\n", 2)[0]
			if !strings.HasPrefix(first, "billingd: ") || !strings.Contains(first, tc.want) {
				t.Fatalf("first stderr line %q does not name %s", first, tc.want)
			}
			if strings.Contains(stderr.String(), "goroutine ") || strings.Contains(stderr.String(), "panic") {
				t.Fatalf("stack trace on stderr:\n%s", stderr.String())
			}
		})
	}
}

// Two replicas started at the same moment on one fresh database both come
// up, and the migrations are applied once.
func TestTwoReplicasFreshDatabase(t *testing.T) {
	t.Parallel()
	admin := pgtest.AdminURL(t)
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("fresh_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	url := strings.Replace(admin, "/postgres?", "/"+name+"?", 1)

	addrs := []string{freeAddr(t), freeAddr(t)}
	procs := make([]*proc, 2)
	for i := range procs {
		procs[i] = startBillingd(t, []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addrs[i]})
	}
	for i, p := range procs {
		waitReady(t, p, addrs[i], 60*time.Second)
	}
	var version int
	var dirty bool
	fdb, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	if err := fdb.QueryRowContext(context.Background(), `SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil {
		t.Fatal(err)
	}
	if uint(version) != postgres.RequiredSchemaVersion() || dirty {
		t.Fatalf("schema version %d dirty=%v, want %d", version, dirty, postgres.RequiredSchemaVersion())
	}
	for _, p := range procs {
		stopWithSignal(t, p, syscall.SIGTERM)
	}
}
