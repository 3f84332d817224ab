package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/billingd/billingd/internal/stripefake"
)

// The backfill stage: `billingd stripe backfill` against the in-repo fake
// Stripe holding backfillSubs subscriptions (and a fifth as many
// customers) of a growing account, each page taking 150 ms and the fake
// allowing 100 requests a second (429 with Retry-After beyond), billingd
// configured to use all of it (STRIPE_READ_RATE=100). Then the same again
// with nothing changed in Stripe: same requests, nothing written.
const (
	backfillLatency   = 150 * time.Millisecond
	backfillRateLimit = 100
)

// backfillSubs is the stage's size (-backfill-subs; the goal is stated at
// 100,000).
var backfillSubs = 100_000

func benchBackfill(ctx context.Context, c *config) error {
	fake := stripefake.New()
	defer fake.Close()
	fake.Seed("bench", backfillSubs/5, backfillSubs, time.Now().Add(-time.Minute), 3*365*24*time.Hour)
	if err := fake.Prerender(); err != nil {
		return err
	}
	fake.SetLatency(backfillLatency)
	fake.SetRateLimit(backfillRateLimit, 10)

	dbURL, err := c.freshDB("bench_backfill")
	if err != nil {
		return err
	}
	env := append(os.Environ(), "DATABASE_URL="+dbURL, "STRIPE_API_KEY="+stripefake.Key, "STRIPE_API_BASE="+fake.URL,
		fmt.Sprintf("STRIPE_READ_RATE=%d", backfillRateLimit), "LOG_LEVEL=warn")
	mig := exec.CommandContext(ctx, c.bin, "migrate", "up")
	mig.Env = env
	if out, err := mig.CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v: %s", err, out)
	}
	type result struct {
		elapsed       time.Duration
		ok, limited   int
		summary, last string
	}
	run := func(tag string) (result, error) {
		fake.ResetRequests()
		pprofAddr := freeAddr()
		cmd := exec.CommandContext(ctx, c.bin, "stripe", "backfill")
		cmd.Env = append(env, "PPROF_ADDR="+pprofAddr)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		selfBefore, pgBefore := selfCPU(), c.pgCPU()
		err := cmd.Start()
		profile := make(chan string, 1)
		var peak <-chan int64
		if err == nil {
			// Ten seconds from the third on: the walkers are all busy.
			go func() {
				time.Sleep(3 * time.Second)
				profile <- c.cpuProfileNamed(pprofAddr, 10, "billingd_backfill_"+tag)
			}()
			// Not the exit status's ru_maxrss: Linux carries it over from
			// the forking process (this one, holding the fake's objects)
			// across exec.
			done := make(chan struct{})
			peak = pollPeakRSS(cmd.Process.Pid, done)
			err = cmd.Wait()
			close(done)
		}
		r := result{elapsed: time.Since(t0)}
		if err == nil {
			// Where the CPU went: billingd, this process (the fake
			// Stripe serving pages) and the PostgreSQL server.
			st := cmd.ProcessState
			c.print("backfill_cpu_s_"+tag, "billingd %.1f, bench and fake Stripe %.1f, PostgreSQL %.1f, of %.1f wall",
				(st.UserTime() + st.SystemTime()).Seconds(), (selfCPU() - selfBefore).Seconds(),
				(c.pgCPU() - pgBefore).Seconds(), r.elapsed.Seconds())
			c.print("backfill_rss_mib_"+tag, "%.1f (billingd's peak resident memory, VmHWM polled every 250 ms)", float64(<-peak)/1024)
			c.print("backfill_pprof_"+tag, "\n%s", <-profile)
		}
		_ = os.MkdirAll(filepath.Join(repoRoot(), "bench", "out"), 0o755)
		_ = os.WriteFile(filepath.Join(repoRoot(), "bench", "out", "backfill_"+tag+".stderr"), stderr.Bytes(), 0o644)
		if err != nil {
			return r, fmt.Errorf("stripe backfill (%s): %v: %s %s", tag, err, stdout.String(), tail(stderr.String(), 2000))
		}
		reqs := fake.Requests()
		for _, q := range reqs {
			switch {
			case q.Status == 429:
				r.limited++
			case q.Status/100 == 2:
				r.ok++
			}
		}
		c.print("backfill_pages_"+tag, "%s", pageFill(reqs, t0, tag))
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		r.summary = strings.Join(lines, " | ")
		progress := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		r.last = progress[len(progress)-1]
		return r, nil
	}

	c.statementStats(ctx, dbURL, "backfill_first", true)
	first, err := run("first")
	if err != nil {
		return err
	}
	c.statementStats(ctx, dbURL, "backfill_first", false)
	objects := float64(backfillSubs + backfillSubs/5)
	c.print("backfill_objects", "%.0f subscriptions and customers, %v a page, %d requests/s allowed", objects, backfillLatency, backfillRateLimit)
	c.print("backfill_seconds", "%.1f", first.elapsed.Seconds())
	c.print("backfill_objects_per_s", "%.0f", objects/first.elapsed.Seconds())
	c.print("backfill_requests_per_s", "%.1f (%d answered, %d answered 429)", float64(first.ok)/first.elapsed.Seconds(), first.ok, first.limited)
	c.print("backfill_rate_limit_ratio", "%.2f (requests/s answered ÷ the %d/s limit)", float64(first.ok)/first.elapsed.Seconds()/backfillRateLimit, backfillRateLimit)
	c.print("backfill_summary", "%s", first.summary)
	c.print("backfill_last_progress", "%s", first.last)

	before, err := dataChecksum(dbURL)
	if err != nil {
		return err
	}
	second, err := run("second")
	if err != nil {
		return err
	}
	after, err := dataChecksum(dbURL)
	if err != nil {
		return err
	}
	c.print("backfill_second_seconds", "%.1f", second.elapsed.Seconds())
	c.print("backfill_second_objects_per_s", "%.0f", objects/second.elapsed.Seconds())
	c.print("backfill_second_rate_limit_ratio", "%.2f (%d answered, %d answered 429)", float64(second.ok)/second.elapsed.Seconds()/backfillRateLimit, second.ok, second.limited)
	written := "none (customers, subscriptions, versions, movements, outbox unchanged)"
	if before != after {
		written = "CHANGED"
	}
	c.print("backfill_second_writes", "%s", written)
	c.print("backfill_second_summary", "%s", second.summary)
	return nil
}

// dataChecksum is a digest of what a backfill writes.
func dataChecksum(dbURL string) (string, error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var sum string
	err = db.QueryRow(`SELECT md5(
	    (SELECT coalesce(string_agg(t::text, ',' ORDER BY t::text), '') FROM customers t) ||
	    (SELECT coalesce(string_agg(t::text, ',' ORDER BY t::text), '') FROM subscriptions t) ||
	    (SELECT count(*)::text FROM subscription_versions) || (SELECT count(*)::text FROM mrr_movements) ||
	    (SELECT count(*)::text FROM outbox))`).Scan(&sum)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	return sum, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// selfCPU is the CPU time this process has used.
// pollPeakRSS reads pid's peak resident memory (VmHWM, KiB) until done
// closes, then sends the last value read.
func pollPeakRSS(pid int, done <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var kb int64
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "VmHWM:" {
					kb, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
			select {
			case <-done:
				out <- kb
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// pgCPU is the CPU time of the PostgreSQL server the bench started: the
// postmaster's own and its exited children's (which it reaped), and its
// live children's. 0 when the bench did not start it (DATABASE_URL).
func (c *config) pgCPU() time.Duration {
	if c.pgDir == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(c.pgDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	ticks := func(stat string, from, to int) (n int64) {
		// Fields after the command (which may hold spaces), from 1-based
		// field 3 on.
		f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
		for i := from; i <= to && i-3 < len(f); i++ {
			v, _ := strconv.ParseInt(f[i-3], 10, 64)
			n += v
		}
		return n
	}
	var total int64
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st := string(b)
		f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
		switch {
		case filepath.Base(filepath.Dir(p)) == pid:
			total += ticks(st, 14, 17) // utime, stime, cutime, cstime
		case len(f) > 1 && f[1] == pid: // field 4, the parent
			total += ticks(st, 14, 15)
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pageFill says how full each list's answered pages were: a partitioned
// walk pays a request for every part's last, partial page, and the rate
// limit ratio counts those too. It also writes every request (seconds
// from start, list, window, status, objects) to bench/out for a closer
// look.
func pageFill(reqs []stripefake.Request, t0 time.Time, tag string) string {
	type fill struct{ pages, objects, thin int }
	by := map[string]*fill{}
	var tsv strings.Builder
	tsv.WriteString("s\tpath\tgte\tlte\tafter\tstatus\tobjects\n")
	for _, q := range reqs {
		fmt.Fprintf(&tsv, "%.3f\t%s\t%s\t%s\t%s\t%d\t%d\n", q.At.Sub(t0).Seconds(), q.Path,
			q.Query.Get("created[gte]"), q.Query.Get("created[lte]"), q.Query.Get("starting_after"), q.Status, q.Objects)
		if q.Status/100 != 2 {
			continue
		}
		f := by[q.Path]
		if f == nil {
			f = &fill{}
			by[q.Path] = f
		}
		f.pages++
		f.objects += q.Objects
		if q.Objects < 10 {
			f.thin++
		}
	}
	_ = os.WriteFile(filepath.Join(repoRoot(), "bench", "out", "backfill_requests_"+tag+".tsv"), []byte(tsv.String()), 0o644)
	var out []string
	for _, path := range []string{"/v1/customers", "/v1/subscriptions"} {
		if f := by[path]; f != nil {
			out = append(out, fmt.Sprintf("%s %d pages, %.1f objects a page, %d under 10", path, f.pages, float64(f.objects)/float64(f.pages), f.thin))
		}
	}
	return strings.Join(out, "; ")
}
