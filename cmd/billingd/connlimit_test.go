package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connections over the limit are answered 503 and closed by the accept
// loop; the ones within it are served, and a closed one frees its place.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	limited := newLimitListener(ln, 2, reg)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(limited) }()
	t.Cleanup(func() { _ = srv.Close() })

	get := func(c net.Conn) (int, string, error) {
		_ = c.SetDeadline(time.Now().Add(time.Minute)) // a hang guard
		if _, err := fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	held := []net.Conn{dial(), dial()}
	for i, c := range held { // served, and kept open (keep-alive)
		if status, body, err := get(c); err != nil || status != http.StatusOK || body != "ok" {
			t.Fatalf("connection %d within the limit: %d %q %v", i, status, body, err)
		}
	}
	status, body, err := get(dial())
	if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"busy"`) {
		t.Fatalf("connection over the limit: %d %q %v, want 503 busy", status, body, err)
	}
	held[0].Close()
	var got int
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, _, _ = get(dial()); got == http.StatusOK {
			break
		}
	}
	if got != http.StatusOK {
		t.Fatalf("after one closed: %d, want its place given to a new connection", got)
	}
}
