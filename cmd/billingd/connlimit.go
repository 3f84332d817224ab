package main

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connections (issue 15). Every open connection costs a goroutine and
// buffers, about 30 KiB, before any handler runs: admission control and
// the webhook body limits only act once a request reaches its handler.
// When the machine is too busy to run those handlers promptly (a flood
// that also starves the CPU), connections pile up with nothing to stop
// them: measured, 510 MiB resident with the load generator holding 15,000
// connections. So serve holds at most HTTP_MAX_CONNS open; the accept loop
// answers any more with a fixed 503 written straight to the socket — no
// goroutine, no request parsing — and closes it.

// refusedResponse is the whole answer to a connection over the limit.
var refusedResponse = func() []byte {
	body := `{"error":{"code":"busy","message":"too many connections, retry"}}` + "\n"
	return []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}()

// refusedLinger is how long a refused connection stays open after its
// answer: closing it at once, with the client's request unread, would
// reset it and could discard the answer before the client reads it.
const refusedLinger = 250 * time.Millisecond

// limitListener accepts at most cap(slots) open connections at once.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	open    prometheus.Gauge
	refused prometheus.Counter
}

func newLimitListener(ln net.Listener, max int, reg prometheus.Registerer) *limitListener {
	l := &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, max),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "billingd_http_connections", Help: "Open HTTP connections on LISTEN_ADDR (at most HTTP_MAX_CONNS).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "billingd_http_connections_refused_total", Help: "Connections answered 503 and closed at once because HTTP_MAX_CONNS were open.",
		}),
	}
	if reg != nil {
		reg.MustRegister(l.open, l.refused)
	}
	return l
}

// Accept returns the next connection within the limit, refusing the ones
// over it on the way.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			l.open.Inc()
			return &limitConn{Conn: c, release: l.release}, nil
		default:
			l.refuse(c)
		}
	}
}

func (l *limitListener) release() {
	<-l.slots
	l.open.Dec()
}

func (l *limitListener) refuse(c net.Conn) {
	l.refused.Inc()
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)) // a fresh socket's buffer takes it at once
	_, _ = c.Write(refusedResponse)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	time.AfterFunc(refusedLinger, func() { _ = c.Close() })
}

// limitConn gives its slot back when it is closed (once, however often
// net/http closes it).
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite keeps net/http's graceful close (half-close, then wait) on
// the wrapped TCP connection.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
