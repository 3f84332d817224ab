package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// eventTemplate renders benchEvents-shaped events fast enough for an
// open-loop generator at thousands per second: one event is marshalled
// once with a fixed-width placeholder in its IDs, then copied and patched
// per event (JSON marshalling per event would take a good part of a core
// away from the server under test).
type eventTemplate struct {
	body  []byte
	marks []int
	tag   string
}

const templateMark = "QQ0000000" // benchEvents' "<tag><%07d>" with tag "QQ", index 0

func newEventTemplate(tag string) *eventTemplate {
	if len(tag) != 2 {
		panic("bench: template tags are two characters")
	}
	body := benchEvents("QQ", 1)[0]
	t := &eventTemplate{body: body, tag: tag}
	for off := 0; ; {
		i := bytes.Index(body[off:], []byte(templateMark))
		if i < 0 {
			break
		}
		t.marks = append(t.marks, off+i)
		off += i + len(templateMark)
	}
	return t
}

// event returns the i-th event's body and a Stripe-Signature header signed
// now.
func (t *eventTemplate) event(i int) signedEvent {
	b := bytes.Clone(t.body)
	id := fmt.Sprintf("%s%07d", t.tag, i%10_000_000)
	for _, m := range t.marks {
		copy(b[m:], id)
	}
	ts := time.Now()
	sig := webhook.ComputeSignature(ts, b, benchSecret)
	return signedEvent{body: b, header: fmt.Sprintf("t=%d,v1=%s", ts.Unix(), hex.EncodeToString(sig))}
}

// openResult is one request of an open-loop run.
type openResult struct {
	at     time.Duration // when it was sent, from the start of the run
	took   time.Duration
	status int // 0: no answer (error or client timeout)
}

// openLoad is an open-loop run: requests are sent at a fixed rate whatever
// the server does, as Stripe and the internet do, unlike runLoad's closed
// loop where a slow server slows its own load down.
type openLoad struct {
	rate     float64
	duration time.Duration
	timeout  time.Duration // client timeout
	url      string
	gen      func(i int) signedEvent
	// maxInFlight bounds this process's open connections (file
	// descriptors); a request that would exceed it counts as unanswered.
	maxInFlight int
}

func (o openLoad) run(ctx context.Context) []openResult {
	res, _ := o.runLag(ctx)
	return res
}

// runLag is run, also returning how late the generator itself sent its
// requests at the 99th percentile: when the machine is so busy that the
// load generator cannot keep its schedule, the latencies it reports are
// the machine's, not billingd's.
func (o openLoad) runLag(ctx context.Context) ([]openResult, time.Duration) {
	n := int(o.rate * o.duration.Seconds())
	res := make([]openResult, n)
	client := &http.Client{Timeout: o.timeout, Transport: &http.Transport{
		MaxIdleConns: o.maxInFlight, MaxIdleConnsPerHost: o.maxInFlight, IdleConnTimeout: 30 * time.Second,
		DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	lag := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		due := time.Duration(float64(i) / o.rate * float64(time.Second))
		if d := due - time.Since(start); d > time.Millisecond {
			time.Sleep(d)
		}
		res[i].at = time.Since(start)
		lag = append(lag, res[i].at-due)
		if inFlight.Load() >= int64(o.maxInFlight) {
			res[i].took = o.timeout
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer inFlight.Add(-1)
			ev := o.gen(i)
			t0 := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.url, bytes.NewReader(ev.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Stripe-Signature", ev.header)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				res[i].status = resp.StatusCode
			}
			res[i].took = time.Since(t0)
		}(i)
	}
	wg.Wait()
	return res, quantile(lag, 0.99)
}

// summary of a slice of open-loop results.
type openSummary struct {
	sent, ok, rejected, other, unanswered int
	late                                  int // answered after the client timeout's worth of time, or not at all
	okP50, okP99, rejectP50, rejectP99    time.Duration
	allP99                                time.Duration
}

func summarize(res []openResult, late time.Duration) openSummary {
	var s openSummary
	var okLat, rejLat, all []time.Duration
	for _, r := range res {
		s.sent++
		switch {
		case r.status == 0:
			s.unanswered++
		case r.status/100 == 2:
			s.ok++
			okLat = append(okLat, r.took)
		case r.status == http.StatusServiceUnavailable || r.status == http.StatusTooManyRequests:
			s.rejected++
			rejLat = append(rejLat, r.took)
		default:
			s.other++
		}
		if r.status == 0 || r.took >= late {
			s.late++
		}
		if r.status != 0 {
			all = append(all, r.took)
		}
	}
	s.okP50, s.okP99 = quantile(okLat, 0.5), quantile(okLat, 0.99)
	s.rejectP50, s.rejectP99 = quantile(rejLat, 0.5), quantile(rejLat, 0.99)
	s.allP99 = quantile(all, 0.99)
	return s
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*q))]
}

// rssSampler records a process's resident set size every interval.
type rssSampler struct {
	mu   sync.Mutex
	peak float64
	last float64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			r := rssMiB(pid)
			s.mu.Lock()
			s.last = r
			s.peak = max(s.peak, r)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return s
}

// Peak returns the highest RSS seen so far and restarts the peak.
func (s *rssSampler) Peak() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peak
	s.peak = s.last
	return p
}

func (s *rssSampler) Stop() {
	close(s.stop)
	<-s.done
}
