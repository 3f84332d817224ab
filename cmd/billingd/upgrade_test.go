package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/migrations"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// knownVersions lists the embedded migrations' versions, oldest first.
func knownVersions(t *testing.T) []uint {
	t.Helper()
	entries, err := migrations.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint]bool{}
	var vs []uint
	for _, e := range entries {
		if v, ok := migrations.Version(e.Name()); ok && !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return vs
}

// previousSchemaVersion is the newest migration but one: what the binary
// of the previous migration set knows.
func previousSchemaVersion(t *testing.T) uint {
	t.Helper()
	vs := knownVersions(t)
	if len(vs) < 2 {
		t.Fatal("fewer than two migrations: no previous set")
	}
	return vs[len(vs)-2]
}

// buildPrevious builds the real binary as the previous migration set's
// binary: today's code told at build time to know only the migrations up
// to prev, stamped with a version the way the Dockerfile stamps its builds.
func buildPrevious(t *testing.T, prev uint) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "billingd-previous")
	ldflags := fmt.Sprintf("-X github.com/billingd/billingd/migrations.maxVersion=%d -X main.version=v0.0.0-previous -X main.revision=0123456789abcdef", prev)
	if b, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build previous binary: %v\n%s", err, b)
	}
	return out
}

// runBinary runs bin with args and env, returning stdout, stderr and the
// exit code.
func runBinary(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_LEVEL=warn"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func startBinary(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr, cmd.Stdout = p.stderr, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The previous migration set's binary, started against the schema HEAD's
// binary migrated (a rollback, or an old pod restarting mid-deploy), skips
// migrating, is ready and serves; once HEAD's newest migration is recorded
// as incompatible with it, it stops being ready and refuses to start, with
// one line.
func TestPreviousBinaryAgainstNewerSchema(t *testing.T) {
	t.Parallel()
	head := billingdBinary(t)
	prev := previousSchemaVersion(t)
	previous := buildPrevious(t, prev)
	headVersion := postgres.RequiredSchemaVersion()
	url := pgtest.EmptyDB(t)
	env := []string{"DATABASE_URL=" + url}

	out, errOut, code := runBinary(t, head, env, "migrate", "up")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("schema version %d", headVersion)) {
		t.Fatalf("HEAD migrate up: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = runBinary(t, previous, nil, "version")
	for _, want := range []string{"version: v0.0.0-previous\n", "revision: 0123456789abcdef\n", fmt.Sprintf("schema: %d\n", prev)} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("previous binary's version output lacks %q:\n%s", want, out)
		}
	}

	const secret = "whsec_previous_binary_0123456789"
	addr := freeAddr(t)
	old := startBinary(t, previous, append(env, "LISTEN_ADDR="+addr, "STRIPE_WEBHOOK_SECRETS="+secret))
	waitReady(t, old, addr, 60*time.Second)
	if !strings.Contains(old.stderr.String(), "schema is newer than this binary and compatible with it") {
		t.Errorf("no log line saying the newer schema was left alone:\n%s", old.stderr.String())
	}

	t.Run("Serves", func(t *testing.T) {
		// Writes: every webhook fixture is applied by the old binary.
		webhookstest.ReplayFixtures(t, "http://"+addr, secret)
		// A command of the old binary works too (it migrates first).
		tok, errOut, code := runBinary(t, previous, env, "token", "create", "--scope", "app", "--name", "rollback")
		if code != 0 {
			t.Fatalf("previous binary's token create: exit %d: %s", code, errOut)
		}
		status, body := httpGet(t, "http://"+addr+"/v1/accounts/acct_previous/entitlement", strings.TrimSpace(tok))
		var ent struct {
			Entitled *bool `json:"entitled"`
		}
		if status != http.StatusOK || json.Unmarshal([]byte(body), &ent) != nil || ent.Entitled == nil {
			t.Fatalf("entitlement: %d %s", status, body)
		}
		status, body = httpGet(t, "http://"+addr+"/metrics", "")
		want := fmt.Sprintf(`schema="%d"`, prev)
		if status != http.StatusOK || !strings.Contains(body, "billingd_build_info{") || !strings.Contains(body, want) || !strings.Contains(body, `version="v0.0.0-previous"`) {
			t.Fatalf("billingd_build_info with %s and the stamped version missing from /metrics", want)
		}
	})

	t.Run("IncompatibleRefuses", func(t *testing.T) {
		// As if HEAD's newest migration carried
		// "-- oldest-compatible-binary: <its own version>".
		st := openStore(t, url)
		if _, err := st.DB().Exec(`UPDATE schema_compat SET oldest_binary = $1 WHERE version = $1`, int64(headVersion)); err != nil {
			t.Fatal(err)
		}
		// The running old replica stops taking traffic...
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, body := httpGet(t, "http://"+addr+"/readyz", "")
			if status == http.StatusServiceUnavailable && strings.Contains(body, "needs a binary that knows schema version") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("readyz still %d %s", status, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// ...and a new one refuses to start, saying why in one line.
		_, errOut, code := runBinary(t, previous, append(env, "LISTEN_ADDR="+freeAddr(t)), "serve")
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		want := fmt.Sprintf("needs a binary that knows schema version %d or newer", headVersion)
		if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "billingd: ") || !strings.Contains(lines[0], want) || !strings.Contains(lines[0], "this binary knows "+strconv.FormatUint(uint64(prev), 10)) {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		// HEAD's binary is unaffected.
		if out, errOut, code := runBinary(t, head, env, "migrate", "up"); code != 0 {
			t.Fatalf("HEAD migrate up: %d %s%s", code, out, errOut)
		}
	})
}

func openStore(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, nil, postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
