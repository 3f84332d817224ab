package webhooks

import (
	"container/list"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/billingd/billingd/internal/httpjson"
	"github.com/prometheus/client_golang/prometheus"
)

// Reading bodies (issue 15). The webhook endpoint is open to the whole
// internet, so a body is read under three limits:
//   - memory: the buffer grows with the bytes that arrive (io.ReadAll),
//     never to a length a client merely announces in Content-Length, up
//     to MaxBodyBytes;
//   - time: the body must arrive within BodyTimeout of the headers (and
//     before the delivery's deadline); Stripe sends it at once;
//   - places: at most MaxBodyReads bodies are read at once. A body that
//     arrives at network speed holds its place for microseconds, one that
//     trickles holds it until its timeout. When every place is taken, a
//     newcomer takes the place of the body that has been read the longest,
//     if that one has been read for evictAfter (25 ms) already (it is
//     answered 503 and its connection closed); otherwise the newcomer is
//     answered 503 at once. Slow clients thus never starve fast ones, and the memory and
//     goroutines they hold are bounded by the places, not by how many
//     connections they open. The default, 128, is far above what bodies
//     arriving at network speed need (each holds a place for well under a
//     millisecond) and keeps the memory 2,000 silent connections cost
//     under 32 MiB (bench headers_only: 28.6 MiB with 256).
//
// Every request answered before its body was read is closed (closeAfter):
// the server would otherwise try to read the rest of the body to reuse the
// connection, holding a goroutine for a client that may never send it.

// evictAfter: a body still arriving after this is far slower than any
// Stripe delivery (a payload of a few KiB comes in the same flight as its
// headers: its read takes microseconds), and may give its place to a
// newcomer. Short, because an attacker who dials faster than
// places ÷ evictAfter keeps every place younger than this and then refuses
// everyone: 100 ms with 128 places let 1,062 dials a second refuse 0.5% of
// normal deliveries (bench slowbody); 25 ms needs over 5,000 a second.
const evictAfter = 25 * time.Millisecond

// bodyReaders holds the places of the bodies being read, oldest first.
type bodyReaders struct {
	mu    sync.Mutex
	max   int
	slots list.List // of *bodyRead
	gauge prometheus.Gauge
}

type bodyRead struct {
	start   time.Time
	rc      *http.ResponseController
	elem    *list.Element
	evicted bool // guarded by bodyReaders.mu
}

// acquire takes a place for a body, evicting the oldest reader when every
// place is taken and it has been reading for evictAfter; false: none.
func (p *bodyReaders) acquire(rc *http.ResponseController, now time.Time) (*bodyRead, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slots.Len() >= p.max {
		oldest := p.slots.Front().Value.(*bodyRead)
		if now.Sub(oldest.start) < evictAfter {
			return nil, false
		}
		p.slots.Remove(oldest.elem)
		oldest.evicted = true
		// Its pending Read returns at once with a timeout. Its handler
		// clears the deadline only after release, which takes mu: an
		// eviction can never reach a request past its body.
		_ = oldest.rc.SetReadDeadline(now)
	}
	r := &bodyRead{start: now, rc: rc}
	r.elem = p.slots.PushBack(r)
	p.gauge.Set(float64(p.slots.Len()))
	return r, true
}

// release gives the place back and reports whether it had been evicted.
func (p *bodyReaders) release(r *bodyRead) (evicted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !r.evicted {
		p.slots.Remove(r.elem)
		p.gauge.Set(float64(p.slots.Len()))
	}
	return r.evicted
}

// readBody reads r's body under the limits above; nil when it answered
// the request itself (413, 408, 503, 400).
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, start, deadline time.Time) []byte {
	rc := http.NewResponseController(w)
	place, ok := h.readers.acquire(rc, start)
	if !ok {
		h.m.rejected.WithLabelValues("body_busy").Inc()
		closeAfter(w)
		w.Header().Set("Retry-After", "5")
		httpjson.WriteError(w, http.StatusServiceUnavailable, "busy", "too many requests being read, retry")
		return nil
	}
	// Not supported by test recorders only: then the server's ReadTimeout
	// is the bound.
	bodyDeadline := start.Add(h.cfg.BodyTimeout)
	if deadline.Before(bodyDeadline) {
		bodyDeadline = deadline
	}
	_ = rc.SetReadDeadline(bodyDeadline)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	evicted := h.readers.release(place)
	if err == nil {
		// From here on a hang-up ends the request (its context), not a
		// deadline on the connection.
		_ = rc.SetReadDeadline(time.Time{})
		return body
	}
	closeAfter(w)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		h.tooLarge(w)
	case evicted:
		h.m.rejected.WithLabelValues("body_busy").Inc()
		w.Header().Set("Retry-After", "5")
		httpjson.WriteError(w, http.StatusServiceUnavailable, "busy", "too many requests being read, retry")
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.m.rejected.WithLabelValues("body_timeout").Inc()
		httpjson.WriteError(w, http.StatusRequestTimeout, "body_timeout", "the request body did not arrive in time")
	default:
		h.m.rejected.WithLabelValues("read").Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "unreadable_body", "could not read the request body")
	}
	return nil
}

// closeAfter makes the server close the connection after this answer
// without reading what is left of the body: net/http reads up to 256 KiB
// of an unread body when the handler returns, Connection: close or not,
// and a read deadline already past is what stops it at once.
func closeAfter(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
