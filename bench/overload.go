package main

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// clientTimeout is the load generator's patience, about Stripe's: an
// answer later than this is no answer.
const clientTimeout = 10 * time.Second

// openLoopConns bounds the generator's open connections below this
// machine's 20,000 file descriptors per process.
const openLoopConns = 15_000

// benchOverload offers twice the c32 capacity measured in this run for 60 s
// (20 s with -short) with a 10 s client timeout, then idles 60 s: billingd
// must keep committing near capacity, answer what it cannot take with a
// fast 503, answer nothing after 10 s, and give its memory back.
func benchOverload(ctx context.Context, c *config) error {
	capacity, err := c.capacityC32(ctx)
	if err != nil {
		return err
	}
	dur := 60 * time.Second
	if c.short {
		dur = 20 * time.Second
	}
	s, err := c.startBillingd(ctx, "bench_overload")
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := postEvents(ctx, 32, s.webhookURL(), sign(benchEvents("ow", 200))); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	idle := rssMiB(s.pid())
	rss := sampleRSS(s.pid(), 100*time.Millisecond)
	defer rss.Stop()
	tpl := newEventTemplate("OL")
	load := openLoad{rate: 2 * capacity, duration: dur, timeout: clientTimeout, url: s.webhookURL(), gen: tpl.event, maxInFlight: openLoopConns}
	profile := make(chan string, 1)
	go func() {
		time.Sleep(dur / 4)
		profile <- c.cpuProfileNamed(s.pprofAddr, 10, "billingd_overload")
	}()
	res, lag := load.runLag(ctx)
	peak := rss.Peak()
	defer c.print("pprof_overload_top", "\n%s", <-profile)
	sum := summarize(res, clientTimeout)
	lost, err := ackedNotStored(ctx, s.dbURL, "OL", res)
	if err != nil {
		return err
	}
	c.print("overload_capacity_per_s", "%.0f", capacity)
	c.print("overload_generator_lag_p99_ms", "%s (how late the load generator itself sent; seconds mean the machine, not billingd, set the latencies)", ms(lag))
	c.print("overload_offered_per_s", "%.0f", load.rate)
	c.print("overload_goodput_per_s", "%.0f", float64(sum.ok)/dur.Seconds())
	c.print("overload_goodput_ratio", "%.2f", float64(sum.ok)/dur.Seconds()/capacity)
	c.print("overload_over_10s", "%d", sum.late)
	c.print("overload_rejected", "%d of %d", sum.rejected, sum.sent)
	c.print("overload_other_status", "%d", sum.other)
	c.print("overload_reject_p50_ms", "%s", ms(sum.rejectP50))
	c.print("overload_reject_p99_ms", "%s", ms(sum.rejectP99))
	c.print("overload_rejected_by_reason", "%s", s.metricLines("billingd_webhook_rejected_total"))
	c.print("overload_ok_p50_ms", "%s", ms(sum.okP50))
	c.print("overload_ok_p99_ms", "%s", ms(sum.okP99))
	c.print("overload_acked_not_stored", "%d", lost)
	c.print("overload_rss_idle_mib", "%.1f", idle)
	c.print("overload_peak_rss_mib", "%.1f", peak)
	c.print("overload_goroutines_after", "%.0f", s.metric("go_goroutines"))
	c.print("overload_memstats_after", "%s", s.memStats())
	time.Sleep(60 * time.Second)
	c.print("overload_rss_after_60s_mib", "%.1f", rssMiB(s.pid()))
	c.print("overload_memstats_after_60s", "%s", s.memStats())
	return nil
}

// ackedNotStored counts events answered 2xx whose ID is not in
// stripe_events: the invariant is that this is always 0.
func ackedNotStored(ctx context.Context, dbURL, tag string, res []openResult) (int, error) {
	var ids []string
	for i, r := range res {
		if r.status/100 == 2 {
			ids = append(ids, fmt.Sprintf("evt_%s%07d", tag, i))
		}
	}
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var stored int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM stripe_events WHERE event_id = ANY($1)`, pq.Array(ids)).Scan(&stored); err != nil {
		return 0, fmt.Errorf("count acknowledged events: %w", err)
	}
	return len(ids) - stored, nil
}

// capacityC32 is ingest's c32 rate from this run, or measured now (c32
// closed-loop ingest of as many events) when the ingest stage was skipped.
func (c *config) capacityC32(ctx context.Context) (float64, error) {
	if c.capacity > 0 {
		return c.capacity, nil
	}
	s, err := c.startBillingd(ctx, "bench_capacity")
	if err != nil {
		return 0, err
	}
	defer s.stop()
	if _, err := postEvents(ctx, 32, s.webhookURL(), sign(benchEvents("cw", 200))); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	res, err := postEvents(ctx, 32, s.webhookURL(), sign(benchEvents("cap", c.ingestSize(32))))
	if err != nil {
		return 0, err
	}
	c.capacity = res.rate()
	c.print("capacity_c32_per_s", "%.0f (measured for the overload stages: ingest skipped)", c.capacity)
	return c.capacity, nil
}
