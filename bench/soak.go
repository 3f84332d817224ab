package main

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// soakEvents is -soak-events: the goal is measured at 500,000.
// soakRate is -soak-rate (0: half the capacity).
var (
	soakEvents = 500_000
	soakRate   float64
)

// benchSoak offers a constant half of the c32 capacity, open loop, for at
// least 500,000 events (full run only): latency and memory must stay flat.
// It prints the run in ten segments (p99, RSS, requests in flight, the
// group commit's queue, the cache feed's rows) and pg_stat_statements for
// the whole run, so that a drift shows where it comes from.
func benchSoak(ctx context.Context, c *config) error {
	if c.short {
		c.print("soak", "skipped (-short)")
		return nil
	}
	rate := soakRate
	if rate <= 0 {
		capacity, err := c.capacityC32(ctx)
		if err != nil {
			return err
		}
		rate = capacity / 2
	}
	dur := time.Duration(float64(soakEvents) / rate * float64(time.Second))
	s, err := c.startBillingd(ctx, "bench_soak")
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := postEvents(ctx, 32, s.webhookURL(), sign(benchEvents("kw", 200))); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	c.statementStats(ctx, s.dbURL, "soak", true)
	db, err := sql.Open("postgres", s.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	type sample struct {
		at                                 time.Duration
		rss, inflight, queue, feed, outbox float64
	}
	var samples []sample
	var stmts []map[string]stmtStat // pg_stat_statements at each segment's end
	const segs = 10
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		// Every 10 s, as a Prometheus would scrape: /metrics has a cost of
		// its own (the outbox gauges query the database).
		next := dur / segs
		for sctx.Err() == nil {
			smp := sample{at: time.Since(start), rss: rssMiB(s.pid()),
				inflight: s.metric("billingd_http_requests_in_flight"), queue: s.metric("billingd_event_queue_length")}
			_ = db.QueryRowContext(sctx, `SELECT coalesce(sum(n_live_tup) FILTER (WHERE relname = 'cache_invalidations'), 0),
       coalesce(sum(n_live_tup) FILTER (WHERE relname = 'outbox'), 0) FROM pg_stat_user_tables`).Scan(&smp.feed, &smp.outbox)
			samples = append(samples, smp)
			if smp.at >= next {
				stmts = append(stmts, statements(sctx, db))
				next += dur / segs
			}
			select {
			case <-sctx.Done():
			case <-time.After(10 * time.Second):
			}
		}
	}()
	tpl := newEventTemplate("SK")
	res := openLoad{rate: rate, duration: dur, timeout: clientTimeout, url: s.webhookURL(), gen: tpl.event, maxInFlight: openLoopConns}.run(ctx)
	stopSampling()
	<-sampled
	stmts = append(stmts, statements(ctx, db))
	seg := func(k int) ([]openResult, []sample) {
		lo, hi := dur*time.Duration(k)/segs, dur*time.Duration(k+1)/segs
		var rs []openResult
		for _, r := range res {
			if r.at >= lo && r.at < hi {
				rs = append(rs, r)
			}
		}
		var ss []sample
		for _, smp := range samples {
			if smp.at >= lo && smp.at < hi {
				ss = append(ss, smp)
			}
		}
		return rs, ss
	}
	var p99 [segs]time.Duration
	var rss [segs]float64
	for k := 0; k < segs; k++ {
		rs, ss := seg(k)
		sum := summarize(rs, clientTimeout)
		p99[k] = sum.allP99
		var maxIn, maxQ, feed, outbox float64
		for _, smp := range ss {
			maxIn, maxQ = max(maxIn, smp.inflight), max(maxQ, smp.queue)
			rss[k], feed, outbox = smp.rss, smp.feed, smp.outbox
		}
		c.print(fmt.Sprintf("soak_segment_%02d", k+1), "p50_ok=%s ms p99=%s ms ok=%d/%d 503=%d unanswered=%d rss_mib=%.1f max_in_flight=%.0f max_queue=%.0f feed_rows=%.0f outbox_rows=%.0f",
			ms(sum.okP50), ms(sum.allP99), sum.ok, sum.sent, sum.rejected, sum.unanswered, rss[k], maxIn, maxQ, feed, outbox)
	}
	all := summarize(res, clientTimeout)
	c.print("soak_events", "%d at %.0f/s (%.0f s)", all.sent, rate, dur.Seconds())
	c.print("soak_ok_ratio", "%.4f", float64(all.ok)/float64(max(1, all.sent)))
	c.print("soak_p99_first_ms", "%s", ms(p99[0]))
	c.print("soak_p99_last_ms", "%s", ms(p99[segs-1]))
	c.print("soak_p99_ratio", "%.2f", float64(p99[segs-1])/float64(max(1, p99[0])))
	c.print("soak_rss_growth_mib", "%.1f", rss[segs-1]-rss[0])
	c.printStatementDrift("soak", stmts)
	return nil
}

// stmtStat is one statement's cumulative pg_stat_statements counters.
type stmtStat struct {
	query       string
	calls       int64
	totalMillis float64
}

// statements reads pg_stat_statements for the database db is connected to.
func statements(ctx context.Context, db *sql.DB) map[string]stmtStat {
	out := map[string]stmtStat{}
	rows, err := db.QueryContext(ctx, `
SELECT queryid::text, calls, total_exec_time, query FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var st stmtStat
		if rows.Scan(&id, &st.calls, &st.totalMillis, &st.query) == nil {
			out[id] = st
		}
	}
	return out
}

// printStatementDrift prints, for the statements that took the most time
// over the run, their mean execution time and calls per segment
// (snapshots taken at each segment's end): a statement that grows slower
// as tables grow shows here.
func (c *config) printStatementDrift(label string, snaps []map[string]stmtStat) {
	if len(snaps) < 2 {
		return
	}
	last := snaps[len(snaps)-1]
	ids := make([]string, 0, len(last))
	for id := range last {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return last[ids[i]].totalMillis > last[ids[j]].totalMillis })
	for n, id := range ids[:min(8, len(ids))] {
		var means, calls []string
		prev := stmtStat{}
		for _, snap := range snaps {
			cur := snap[id]
			dc, dt := cur.calls-prev.calls, cur.totalMillis-prev.totalMillis
			if dc > 0 {
				means = append(means, fmt.Sprintf("%.3f", dt/float64(dc)))
			} else {
				means = append(means, "-")
			}
			calls = append(calls, fmt.Sprint(dc))
			prev = cur
		}
		q := strings.Join(strings.Fields(last[id].query), " ")
		if len(q) > 90 {
			q = q[:90] + "…"
		}
		c.print(fmt.Sprintf("pgstat_%s_drift_%02d", label, n+1), "mean_ms by segment [%s] calls [%s] total_ms=%.0f %s",
			strings.Join(means, " "), strings.Join(calls, " "), last[id].totalMillis, q)
	}
}
