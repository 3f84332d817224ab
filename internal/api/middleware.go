package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/gorilla/mux"
)

type ctxKey int

const reqInfoKey ctxKey = 1

// reqInfo travels in the request context: the outer middleware creates it,
// the router fills in the matched route template.
type reqInfo struct {
	id    string
	route string
	actor string // name of the API token that authenticated the request (auth.go)
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// RequestID returns the request's ID (from X-Request-Id, or generated).
func RequestID(ctx context.Context) string {
	if ri, ok := ctx.Value(reqInfoKey).(*reqInfo); ok {
		return ri.id
	}
	return ""
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (the webhook
// handler's read deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// middleware adds the request ID, recovers panics as 500s, and logs one line
// per request at debug level (info for errors). It logs the route template,
// never the raw path: paths carry account IDs.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ri := &reqInfo{id: id, route: "unmatched"}
		ctx := context.WithValue(r.Context(), reqInfoKey, ri)
		rec := &statusRecorder{ResponseWriter: w}
		if s.httpm != nil {
			s.httpm.inflight.Inc()
		}
		defer func() {
			if p := recover(); p != nil {
				s.Log.Error("panic in handler", "request_id", id, "panic", p)
				if rec.status == 0 {
					writeError(rec, http.StatusInternalServerError, "internal", "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			if s.httpm != nil {
				s.httpm.inflight.Dec()
				s.httpm.observe(ri.route, r.Method, status, time.Since(start))
			}
			lvl := slog.LevelDebug
			if status >= 500 {
				lvl = slog.LevelWarn
			}
			// Checked first: building the attributes costs allocations on
			// the hot path even when debug logging is off.
			if s.Log.Enabled(ctx, lvl) {
				s.Log.Log(ctx, lvl, "http request", "request_id", id, "method", r.Method, "route", ri.route,
					"status", status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
			}
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// routeTemplate records the matched route's path template: a bounded label
// for logs and metrics.
func routeTemplate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
			if cr := mux.CurrentRoute(r); cr != nil {
				if tpl, err := cr.GetPathTemplate(); err == nil {
					ri.route = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
