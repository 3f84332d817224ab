package webhooks_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// The handler allocates for the bytes that arrive, never for the length a
// client announces: a request claiming 64 MiB and sending a few bytes
// costs a few bytes. Not parallel: it reads the process's allocation
// counter while no other test of the package runs.
func TestBodyAllocationFollowsBytes(t *testing.T) {
	b := setupWith(t, pgtest.Open(t), webhooks.Config{MaxBodyBytes: 64 << 20})
	body := []byte(`{"id":"evt_1Claim","object":"event","type":`) // truncated: refused after reading
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
	req.ContentLength = 64 << 20
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", webhookstest.Sign(webhookstest.Secret, body))
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.handler.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("handling a %d-byte body that claimed 64 MiB allocated %d bytes", len(body), grew)
	}
}

// hostileServer serves the handler through the API's middleware on a real
// listener: read deadlines need a real connection.
func hostileServer(t *testing.T, cfg webhooks.Config) (*bundle, string) {
	t.Helper()
	b := setupWith(t, pgtest.Open(t), cfg)
	srv := httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Webhooks: b.handler}).Handler())
	t.Cleanup(srv.Close)
	// The instance's erasure key is created by the first event (serve
	// prepares it at start).
	if r := webhookstest.Post(t, srv.URL, webhookstest.Secret, webhookstest.FixtureNamed(t, "v2023_01_customer.created").Payload); r.Outcome() != "applied" {
		t.Fatalf("first event: %d %s", r.Status, r.Body)
	}
	return b, strings.TrimPrefix(srv.URL, "http://")
}

// forged is a fresh, well-formed Stripe-Signature header whose signature
// is wrong: it passes every check made before the body (anyone can forge
// a timestamp).
func forged() string { return fmt.Sprintf("t=%d,v1=%064x", time.Now().Unix(), 0) }

// rawConn sends a webhook request's headers, claiming claim bytes of body,
// and returns the connection; sig "" sends no Stripe-Signature.
func rawConn(t *testing.T, addr, sig string, claim int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if sig != "" {
		sig = "Stripe-Signature: " + sig + "\r\n"
	}
	if _, err := fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", sig, claim); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads the response on c and checks that the server then closes
// the connection; the read deadline only guards against a hang.
func readAnswer(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("status %d: connection left open (%v), want it closed", resp.StatusCode, err)
	}
	return resp.StatusCode, string(body)
}

// Whatever can be judged from the headers is answered before any body
// arrives: a bad signature header never waits for (or reads) a body.
func TestSignatureHeaderJudgedBeforeBody(t *testing.T) {
	t.Parallel()
	_, addr := hostileServer(t, webhooks.Config{BodyTimeout: time.Minute, ApplyTimeout: time.Minute})
	now := time.Now()
	for _, tt := range []struct {
		name, sig, code string
	}{
		{"Missing", "", "signature_missing"},
		{"Malformed", "t=abc,v1=zz", "signature_malformed"},
		{"NoTimestamp", "v1=" + strings.Repeat("0", 64), "signature_malformed"},
		{"NoSignature", fmt.Sprintf("t=%d", now.Unix()), "signature_invalid"},
		{"Expired", fmt.Sprintf("t=%d,v1=%064x", now.Add(-6*time.Minute).Unix(), 0), "signature_expired"},
		{"Future", fmt.Sprintf("t=%d,v1=%064x", now.Add(6*time.Minute).Unix(), 0), "signature_expired"},
		{"TenYearsAhead", fmt.Sprintf("t=%d,v1=%064x", now.AddDate(10, 0, 0).Unix(), 0), "signature_expired"},
		{"Extreme", "t=-9223372036854775808,v1=00", "signature_expired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rawConn(t, addr, tt.sig, 4096) // the body never comes
			status, body := readAnswer(t, c)
			if status != http.StatusBadRequest || !strings.Contains(body, `"code":"`+tt.code+`"`) {
				t.Fatalf("%d %s, want 400 %s", status, body, tt.code)
			}
		})
	}
}

// A body that does not arrive within BodyTimeout is answered 408 and its
// connection closed.
func TestSlowBodyTimesOut(t *testing.T) {
	t.Parallel()
	b, addr := hostileServer(t, webhooks.Config{BodyTimeout: 200 * time.Millisecond})
	c := rawConn(t, addr, forged(), 4096)
	if _, err := c.Write([]byte("{")); err != nil {
		t.Fatal(err)
	}
	if status, body := readAnswer(t, c); status != http.StatusRequestTimeout || !strings.Contains(body, `"code":"body_timeout"`) {
		t.Fatalf("%d %s, want 408 body_timeout", status, body)
	}
	if n := b.counter(t, "billingd_webhook_rejected_total", "reason", "body_timeout"); n != 1 {
		t.Fatalf("body_timeout rejections: %v", n)
	}
}

// Slow bodies hold at most MaxBodyReads places; when they are all taken a
// normal delivery still goes through, taking the place of the slowest,
// which is answered 503 and disconnected.
func TestSlowBodiesDoNotHoldOthers(t *testing.T) {
	t.Parallel()
	const places = 4
	b, addr := hostileServer(t, webhooks.Config{MaxBodyReads: places, BodyTimeout: time.Minute, ApplyTimeout: time.Minute})
	var slow []net.Conn
	for range places {
		c := rawConn(t, addr, forged(), 4096)
		if _, err := c.Write([]byte("{")); err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
	}
	waitFor(t, "every place taken", func() bool { return b.counter(t, "billingd_webhook_bodies_reading") == places })
	time.Sleep(150 * time.Millisecond) // older than evictAfter: evictable (setup, not a timing goal)

	p := renamedBy(webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload, "slowbody")
	if r := webhookstest.Post(t, "http://"+addr, webhookstest.Secret, p); r.Outcome() != "applied" {
		t.Fatalf("normal delivery while slow bodies hold every place: %d %s", r.Status, r.Body)
	}
	// The oldest slow body lost its place: 503, connection closed. (Which
	// one is the oldest is the server's order of arrival.)
	first := make(chan string, places)
	for _, c := range slow {
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				first <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_, eof := br.ReadByte()
			first <- fmt.Sprintf("%d %s closed=%v", resp.StatusCode, bytes.TrimSpace(body), eof == io.EOF)
		}()
	}
	if got, want := <-first, `503 {"error":{"code":"busy","message":"too many requests being read, retry"}} closed=true`; got != want {
		t.Fatalf("evicted slow body: %s, want %s", got, want)
	}
	if n := b.counter(t, "billingd_webhook_bodies_reading"); n != places-1 {
		t.Fatalf("%v bodies being read, want the %d other slow ones", n, places-1)
	}
}

// Connections that send headers claiming 1 MiB and no body: a bounded
// number hold a place, the others are answered 503 at once and
// disconnected, memory does not follow what they claim, and a normal
// delivery goes through meanwhile (taking the place of the oldest). Not
// parallel: it reads the process's allocation counter.
func TestHeadersOnlyConnections(t *testing.T) {
	const conns, places = 200, 16
	b, addr := hostileServer(t, webhooks.Config{MaxBodyReads: places, BodyTimeout: time.Minute, ApplyTimeout: time.Minute})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	busy := make(chan int, conns+1)
	for range conns {
		c := rawConn(t, addr, forged(), 1<<20)
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				busy <- 0
				return
			}
			resp.Body.Close()
			busy <- resp.StatusCode
		}()
	}
	// All but the places are answered 503 and disconnected (refused at
	// once, or evicted by a later one).
	for range conns - places {
		if status := <-busy; status != http.StatusServiceUnavailable {
			t.Fatalf("header-only connection answered %d, want 503", status)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Fatalf("%d connections claiming 1 MiB each allocated %d MiB", conns, grew>>20)
	}
	if n := b.counter(t, "billingd_webhook_bodies_reading"); n != places {
		t.Fatalf("%v bodies being read, want the %d places taken", n, places)
	}
	time.Sleep(150 * time.Millisecond) // every place older than evictAfter (setup, not a timing goal)
	p := renamedBy(webhookstest.FixtureNamed(t, "v2023_03_customer.subscription.created").Payload, "headersonly")
	if r := webhookstest.Post(t, "http://"+addr, webhookstest.Secret, p); r.Outcome() != "applied" {
		t.Fatalf("normal delivery among header-only connections: %d %s", r.Status, r.Body)
	}
	if status := <-busy; status != http.StatusServiceUnavailable {
		t.Fatalf("header-only connection evicted by the delivery answered %d, want 503", status)
	}
}
