package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// buildBillingd compiles the real binary: the benchmark measures billingd as
// it is deployed, in its own process, so its RSS can be read too.
func buildBillingd(dir string) (string, error) {
	bin := filepath.Join(dir, "billingd")
	out, err := exec.Command("go", "build", "-o", bin, "./cmd/billingd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, out)
	}
	return bin, nil
}

type process struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startProcess(ctx context.Context, env []string, name string, args ...string) (*process, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// rssMiB reads the resident set size of pid from /proc.
func rssMiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			fields := strings.Fields(sc.Text())
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers 200.
func waitHTTP(url string, p *process, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p.cmd.ProcessState != nil {
			return fmt.Errorf("process exited: %s", p.stderr.String())
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %v: %s", url, within, p.stderr.String())
}

// billingdServer is a billingd process serving one fresh database.
type billingdServer struct {
	*process
	addr, pprofAddr, dbURL string
}

// startBillingd starts billingd on a fresh database db and waits until it
// is ready; extra environment comes last, so it overrides the defaults.
func (c *config) startBillingd(ctx context.Context, db string, extra ...string) (*billingdServer, error) {
	dbURL, err := c.freshDB(db)
	if err != nil {
		return nil, err
	}
	s := &billingdServer{addr: freeAddr(), pprofAddr: freeAddr(), dbURL: dbURL}
	env := append([]string{"DATABASE_URL=" + dbURL, "LISTEN_ADDR=" + s.addr, "PPROF_ADDR=" + s.pprofAddr,
		"STRIPE_WEBHOOK_SECRETS=" + benchSecret, "LOG_LEVEL=error", "DB_MAX_CONNS=" + dbConns}, extra...)
	if s.process, err = startProcess(ctx, env, c.bin, "serve"); err != nil {
		return nil, err
	}
	if err := waitHTTP("http://"+s.addr+"/readyz", s.process, 60*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *billingdServer) webhookURL() string { return "http://" + s.addr + "/webhooks/stripe" }

func (s *billingdServer) pid() int { return s.cmd.Process.Pid }

// memStats returns a compact line of the Go runtime's memory statistics
// (from pprof's heap page): where resident memory sits.
func (s *billingdServer) memStats() string {
	resp, err := http.Get("http://" + s.pprofAddr + "/debug/pprof/heap?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	want := map[string]bool{"HeapInuse": true, "HeapIdle": true, "HeapReleased": true, "StackInuse": true, "Sys": true, "NextGC": true, "NumGC": true}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok || !want[k] {
			continue
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil && k != "NumGC" {
			v = fmt.Sprintf("%.1fMiB", n/(1<<20))
		}
		out = append(out, k+"="+v)
	}
	return strings.Join(out, " ")
}

// metricLines returns the /metrics lines of a metric family, labels and
// values as exposed.
func (s *billingdServer) metricLines(name string) string {
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+"{") || strings.HasPrefix(sc.Text(), name+" ") {
			out = append(out, strings.TrimPrefix(sc.Text(), name))
		}
	}
	return strings.Join(out, " ")
}

// metric returns the sum of every sample of a metric family on /metrics
// (0 when absent).
func (s *billingdServer) metric(name string) float64 {
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, _ := strconv.ParseFloat(f[0], 64)
		sum += v
	}
	return sum
}
