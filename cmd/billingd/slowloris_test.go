package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
)

// Slow-loris clients and oversized requests must not exhaust the server:
// header reads time out, huge headers and bodies are refused, and a normal
// request is served throughout.
func TestSlowClientsAndOversizedRequests(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	p := startBillingd(t, []string{"DATABASE_URL=" + pgtest.URL(t), "LISTEN_ADDR=" + addr,
		"STRIPE_WEBHOOK_SECRETS=whsec_slowloris_test", "WEBHOOK_MAX_BODY_BYTES=65536", "LOG_LEVEL=error"})
	waitReady(t, p, addr, 60*time.Second)

	const slow = 200
	conns := make([]net.Conn, 0, slow)
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		// An incomplete request head, never finished.
		fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("server unavailable while %d slow clients are connected: %v", slow, err)
	}
	resp.Body.Close()

	// The server closes every slow connection once its header timeout passes.
	var wg sync.WaitGroup
	closed := make(chan int, slow)
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err := io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return
			}
			closed <- 1
		}(c)
	}
	wg.Wait()
	if len(closed) != slow {
		t.Fatalf("%d of %d slow connections still open after the header timeout", slow-len(closed), slow)
	}

	t.Run("HugeHeader", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 200<<10))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("HugeBody", func(t *testing.T) {
		body := strings.NewReader(`{"id":"evt_big","pad":"` + strings.Repeat("x", 1<<20) + `"}`)
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/stripe", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", "t=1,v1=00")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
}
