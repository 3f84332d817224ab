package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"
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
	capacity, err := c.capacityC32(ctx)
	if err != nil {
		return err
	}
	const events = 500_000
	rate := capacity / 2
	dur := time.Duration(float64(events) / rate * float64(time.Second))
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
		at                         time.Duration
		rss, inflight, queue, feed float64
	}
	var samples []sample
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(sampled)
		for sctx.Err() == nil {
			smp := sample{at: time.Since(start), rss: rssMiB(s.pid()),
				inflight: s.metric("billingd_http_requests_in_flight"), queue: s.metric("billingd_event_queue_length")}
			_ = db.QueryRowContext(sctx, `SELECT count(*) FROM cache_invalidations`).Scan(&smp.feed)
			samples = append(samples, smp)
			select {
			case <-sctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	tpl := newEventTemplate("SK")
	res := openLoad{rate: rate, duration: dur, timeout: clientTimeout, url: s.webhookURL(), gen: tpl.event, maxInFlight: openLoopConns}.run(ctx)
	stopSampling()
	<-sampled

	const segs = 10
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
		var maxIn, maxQ, feed float64
		for _, smp := range ss {
			maxIn, maxQ = max(maxIn, smp.inflight), max(maxQ, smp.queue)
			rss[k], feed = smp.rss, smp.feed
		}
		c.print(fmt.Sprintf("soak_segment_%02d", k+1), "p50_ok=%s ms p99=%s ms ok=%d/%d rss_mib=%.1f max_in_flight=%.0f max_queue=%.0f feed_rows=%.0f",
			ms(sum.okP50), ms(sum.allP99), sum.ok, sum.sent, rss[k], maxIn, maxQ, feed)
	}
	all := summarize(res, clientTimeout)
	c.print("soak_events", "%d at %.0f/s (%.0f s)", all.sent, rate, dur.Seconds())
	c.print("soak_ok_ratio", "%.4f", float64(all.ok)/float64(max(1, all.sent)))
	c.print("soak_p99_first_ms", "%s", ms(p99[0]))
	c.print("soak_p99_last_ms", "%s", ms(p99[segs-1]))
	c.print("soak_p99_ratio", "%.2f", float64(p99[segs-1])/float64(max(1, p99[0])))
	c.print("soak_rss_growth_mib", "%.1f", rss[segs-1]-rss[0])
	c.statementStats(ctx, s.dbURL, "soak", false)
	return nil
}
