package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// benchSlowBody runs a normal open-loop load at half the c32 capacity
// while 10,000 connections trickle webhook bodies one byte a second, each
// redialled when billingd drops it, by an attacker opening up to
// dialsPerSecond connections a second (as slow-loris tools do, and about
// the rate of the attack in issue 15): the normal deliveries must not
// notice.
func benchSlowBody(ctx context.Context, c *config) error {
	capacity, err := c.capacityC32(ctx)
	if err != nil {
		return err
	}
	const conns = 10_000
	dur := 30 * time.Second
	if c.short {
		dur = 15 * time.Second
	}
	s, err := c.startBillingd(ctx, "bench_slowbody")
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := postEvents(ctx, 32, s.webhookURL(), sign(benchEvents("sw", 200))); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// The same load alone first: what this machine gives it right now, so
	// that the figure with the attack compares to something.
	ctl := newEventTemplate("SC")
	control := summarize(openLoad{rate: capacity / 2, duration: dur, timeout: clientTimeout, url: s.webhookURL(), gen: ctl.event, maxInFlight: 4000}.run(ctx), clientTimeout)
	rss := sampleRSS(s.pid(), 100*time.Millisecond)
	defer rss.Stop()
	tctx, stopTrickle := context.WithCancel(ctx)
	t := &trickler{addr: s.addr, claim: 4096, body: true, dials: newDialLimiter(tctx, dialsPerSecond)}
	done := make(chan struct{})
	go func() { t.run(tctx, conns); close(done) }()
	// Let the connections build up before the normal load starts.
	for deadline := time.Now().Add(20 * time.Second); t.open.Load() < conns*9/10 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	openAtStart := t.open.Load()
	dials0 := t.dialed.Load()
	var openSum, samples atomic.Int64
	sctx, stopSampling := context.WithCancel(ctx)
	go func() {
		for sctx.Err() == nil {
			openSum.Add(t.open.Load())
			samples.Add(1)
			time.Sleep(250 * time.Millisecond)
		}
	}()
	tpl := newEventTemplate("SB")
	res := openLoad{rate: capacity / 2, duration: dur, timeout: clientTimeout, url: s.webhookURL(), gen: tpl.event, maxInFlight: 4000}.run(ctx)
	stopSampling()
	dials := t.dialed.Load() - dials0
	stopTrickle()
	<-done
	sum := summarize(res, clientTimeout)
	c.print("slowbody_trickling_conns", "%d at the start, %.0f on average", openAtStart, float64(openSum.Load())/float64(max(1, samples.Load())))
	c.print("slowbody_reconnects_per_s", "%.0f", float64(dials)/dur.Seconds())
	c.print("slowbody_normal_per_s", "%.0f", capacity/2)
	c.print("slowbody_normal_ok_ratio", "%.3f", float64(sum.ok)/float64(max(1, sum.sent)))
	c.print("slowbody_normal_p50_ms", "%s", ms(sum.okP50))
	c.print("slowbody_normal_p99_ms", "%s", ms(sum.allP99))
	c.print("slowbody_control_p99_ms", "%s (the same load without the slow bodies, just before)", ms(control.allP99))
	c.print("slowbody_control_ok_ratio", "%.3f", float64(control.ok)/float64(max(1, control.sent)))
	c.print("slowbody_peak_rss_mib", "%.1f", rss.Peak())
	c.print("slowbody_rejected_by_reason", "%s", s.metricLines("billingd_webhook_rejected_total"))
	return nil
}

// benchHeadersOnly opens 2,000 connections that send request headers
// claiming a 1 MiB body and then nothing: billingd's memory must not grow
// with what they claim.
func benchHeadersOnly(ctx context.Context, c *config) error {
	const conns = 2_000
	s, err := c.startBillingd(ctx, "bench_headers_only")
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := postEvents(ctx, 32, s.webhookURL(), sign(benchEvents("hw", 200))); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	before := rssMiB(s.pid())
	rss := sampleRSS(s.pid(), 50*time.Millisecond)
	defer rss.Stop()
	tctx, stop := context.WithCancel(ctx)
	t := &trickler{addr: s.addr, claim: 1 << 20, once: true, dials: newDialLimiter(tctx, 10_000)}
	done := make(chan struct{})
	go func() { t.run(tctx, conns); close(done) }()
	// While they hang, a normal delivery still goes through.
	time.Sleep(2 * time.Second)
	held := t.open.Load()
	normal, err := postEvents(ctx, 4, s.webhookURL(), sign(benchEvents("hn", 100)))
	normalOK := err == nil
	t0 := time.Now()
	for t.open.Load() > 0 && time.Since(t0) < 30*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	closedAfter := time.Since(t0) + 2*time.Second
	stillOpen := t.open.Load()
	stop()
	<-done
	peak := rss.Peak()
	c.print("headers_only_conns", "%d (%d open 2 s in)", conns, held)
	c.print("headers_only_rss_before_mib", "%.1f", before)
	c.print("headers_only_peak_rss_mib", "%.1f", peak)
	c.print("headers_only_rss_growth_mib", "%.1f", peak-before)
	c.print("headers_only_closed_by_server", "%d of %d, all within %.1f s", conns-int(stillOpen), conns, closedAfter.Seconds())
	c.print("headers_only_normal_ok", "%v (p99 %s ms)", normalOK, ms(normal.p99))
	return nil
}

// dialsPerSecond is the slow-body attacker's connection rate.
const dialsPerSecond = 1500

// newDialLimiter returns a channel that yields perSecond tokens a second
// until ctx ends.
func newDialLimiter(ctx context.Context, perSecond int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				close(ch)
				return
			case <-tick.C:
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					close(ch)
					return
				default: // nobody waiting: the token is lost, as a rate limit's are
				}
			}
		}
	}()
	return ch
}

// trickler keeps connections sending webhook request headers that claim
// claim bytes of body and then, with body, one byte a second; each
// connection is redialled when billingd drops it (once: not redialled).
type trickler struct {
	addr  string
	claim int
	body  bool
	once  bool
	dials <-chan struct{} // one token per dial

	open, dialed, dialErrs atomic.Int64
}

func (t *trickler) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t.conn(ctx)
				if t.once {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func (t *trickler) conn(ctx context.Context) {
	if _, ok := <-t.dials; !ok {
		return
	}
	t.dialed.Add(1)
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		t.dialErrs.Add(1)
		time.Sleep(time.Second)
		return
	}
	defer conn.Close()
	t.open.Add(1)
	defer t.open.Add(-1)
	// A fresh, well-formed signature header: it passes every check that
	// can be made before the body is read (anyone can forge a timestamp).
	head := fmt.Sprintf("POST /webhooks/stripe HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"+
		"Stripe-Signature: t=%d,v1=%064x\r\nContent-Length: %d\r\n\r\n", time.Now().Unix(), 0, t.claim)
	if _, err := conn.Write([]byte(head)); err != nil {
		return
	}
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn) // returns when billingd closes the connection
		close(closed)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sent := 0; sent < t.claim; {
		select {
		case <-ctx.Done():
			return
		case <-closed:
			return
		case <-tick.C:
		}
		if t.body {
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
			sent++
		}
	}
}
