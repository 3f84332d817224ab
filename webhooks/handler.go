package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/httpjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Config is what the webhook handler needs.
type Config struct {
	// Secrets are the endpoint signing secrets (whsec_...); a request is
	// accepted if it is signed with any of them, so secrets rotate
	// without downtime.
	Secrets []string
	// Tolerance is the maximum age of the signature timestamp (default 5m).
	Tolerance time.Duration
	// MaxBodyBytes caps the body (default 1 MiB); larger bodies get 413.
	MaxBodyBytes int64
	// Links checks client_reference_id on checkout sessions: only a
	// reference it accepts (signed by a key of the link ring, not expired
	// when the checkout completed) links a customer. nil refuses them all.
	Links *billing.LinkVerifier
	// Store applies each event in one transaction.
	Store billing.EventApplier
	// Log gets event IDs, types and outcomes; never payloads.
	Log *slog.Logger
	// Registerer receives the webhook counters; nil: not collected.
	Registerer prometheus.Registerer
	// ApplyTimeout bounds one event's transaction (default 10s): past it
	// the transaction rolls back and the answer is 503, before Stripe gives
	// up on the request and retries anyway.
	ApplyTimeout time.Duration
}

// Handler serves POST /webhooks/stripe.
type Handler struct {
	cfg Config
	m   *metrics
}

// NewHandler checks cfg and builds the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("webhooks: no signing secret")
	}
	if cfg.Store == nil {
		return nil, errors.New("webhooks: no store")
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = webhook.DefaultTolerance
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 10 * time.Second
	}
	return &Handler{cfg: cfg, m: newMetrics(cfg.Registerer)}, nil
}

// response is the body of a 2xx answer.
type response struct {
	Received bool            `json:"received"`
	Outcome  billing.Outcome `json:"outcome"`
}

// ServeHTTP verifies, decodes and applies one event. Status codes: 200 once
// the event's effects are committed (duplicates, unhandled types, ignored
// and future-dated events included); 400 for a bad signature or a payload
// that can never be stored (value_out_of_range for amounts beyond Stripe's
// limits); 405, 413, 415 for the wrong method, size or type; 503 with
// Retry-After when a retry can succeed (httpjson.Classify), so Stripe
// retries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.m.rejected.WithLabelValues("bad_method").Inc()
		w.Header().Set("Allow", http.MethodPost)
		httpjson.WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		h.m.rejected.WithLabelValues("bad_content_type").Inc()
		httpjson.WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.tooLarge(w)
		return
	}
	body, err := readBody(w, r, h.cfg.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.tooLarge(w)
			return
		}
		h.m.rejected.WithLabelValues("read").Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "unreadable_body", "could not read the request body")
		return
	}
	if len(body) == 0 {
		h.m.rejected.WithLabelValues("empty").Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "empty_body", "the request body is empty")
		return
	}
	if reason, err := h.verify(body, r.Header.Get("Stripe-Signature")); err != nil {
		h.m.sigFails.WithLabelValues(reason).Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "signature_"+reason, err.Error())
		return
	}
	ev, err := DecodeEvent(body, DecodeOptions{Links: h.cfg.Links})
	if errors.Is(err, ErrUnhandled) {
		// Unhandled types (charge.succeeded, ...) leave no trace but a counter.
		h.m.event(typeOther, billing.OutcomeUnhandled)
		httpjson.WriteJSON(w, http.StatusOK, response{Received: true, Outcome: billing.OutcomeUnhandled})
		return
	}
	if errors.Is(err, ErrOutOfRange) {
		// Amounts or quantities Stripe never sends (limits.go): refused,
		// and counted apart from malformed payloads.
		h.m.rejected.WithLabelValues("out_of_range").Inc()
		h.cfg.Log.Warn("webhook payload rejected: value out of range", "stripe_event_id", safeID(ev.ID), "event_type", labelType(ev.Type), "err", err)
		httpjson.WriteError(w, http.StatusBadRequest, "value_out_of_range", err.Error())
		return
	}
	if err != nil {
		h.m.rejected.WithLabelValues("invalid_payload").Inc()
		h.cfg.Log.Warn("webhook payload rejected", "stripe_event_id", safeID(ev.ID), "event_type", labelType(ev.Type), "err", err)
		httpjson.WriteError(w, http.StatusBadRequest, "invalid_payload", err.Error())
		return
	}
	if futureDated(ev.Created, time.Now(), r.Header.Get("Stripe-Signature"), h.cfg.Tolerance) {
		// Recorded by ID only, so it can neither become a version nor be
		// applied by a redelivery later (future.go).
		h.cfg.Log.Warn("webhook event created in the future: acknowledged, not applied",
			"stripe_event_id", ev.ID, "event_type", ev.Type)
		ev = billing.Event{ID: ev.ID, Type: ev.Type, Created: ev.Created, Livemode: ev.Livemode, Connect: ev.Connect, FutureDated: true}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ApplyTimeout)
	defer cancel()
	out, err := h.cfg.Store.ApplyEvent(ctx, ev)
	if err != nil {
		h.applyFailed(w, r.Context(), ev, err)
		return
	}
	h.m.event(ev.Type, out)
	if ev.Checkout != nil && ev.Checkout.ReferenceRejected != "" && out != billing.OutcomeDuplicate {
		h.m.reference(ev.Checkout.ReferenceRejected)
		h.cfg.Log.Info("checkout client_reference_id not accepted: customer recorded, not linked",
			"stripe_event_id", ev.ID, "reason", string(ev.Checkout.ReferenceRejected))
	}
	switch {
	case out == billing.OutcomeLinkConflict:
		h.cfg.Log.Warn("webhook link conflict: customer already linked to another account; link kept",
			"stripe_event_id", ev.ID, "event_type", ev.Type)
	case out == billing.OutcomeLinkErased:
		h.cfg.Log.Warn("webhook hint names an erased account: customer recorded, not linked",
			"stripe_event_id", ev.ID, "event_type", ev.Type)
	case h.cfg.Log.Enabled(r.Context(), slog.LevelDebug):
		h.cfg.Log.Debug("webhook event", "stripe_event_id", ev.ID, "event_type", ev.Type, "outcome", string(out))
	}
	httpjson.WriteJSON(w, http.StatusOK, response{Received: true, Outcome: out})
}

// readBody reads at most max bytes, in one allocation when the client sent
// Content-Length (Stripe does).
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength <= 0 {
		return io.ReadAll(body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, r.ContentLength+bytes.MinRead))
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

func (h *Handler) tooLarge(w http.ResponseWriter) {
	h.m.rejected.WithLabelValues("too_large").Inc()
	httpjson.WriteError(w, http.StatusRequestEntityTooLarge, "body_too_large",
		fmt.Sprintf("the body is larger than %d bytes", h.cfg.MaxBodyBytes))
}

// verify checks the signature against every configured secret and returns
// a bounded reason when none matches.
func (h *Handler) verify(body []byte, header string) (string, error) {
	var last error
	for _, secret := range h.cfg.Secrets {
		last = webhook.ValidatePayloadWithTolerance(body, header, secret, h.cfg.Tolerance)
		if last == nil {
			return "", nil
		}
		if errors.Is(last, webhook.ErrNotSigned) || errors.Is(last, webhook.ErrInvalidHeader) || errors.Is(last, webhook.ErrTooOld) {
			break // the same for every secret
		}
	}
	switch {
	case errors.Is(last, webhook.ErrNotSigned):
		return "missing", errors.New("no Stripe-Signature header")
	case errors.Is(last, webhook.ErrInvalidHeader):
		return "malformed", errors.New("malformed Stripe-Signature header")
	case errors.Is(last, webhook.ErrTooOld):
		return "expired", errors.New("signature timestamp outside the tolerance")
	}
	return "invalid", errors.New("no signature matches a configured secret")
}

// applyFailed answers a failed apply with httpjson.Classify, the table the
// API uses too: 503 with Retry-After when a retry can succeed (the database
// unavailable, the deadline passed, the client gone), 400 for an event that
// can never be stored, 500 otherwise (Stripe retries those too). The error's
// text goes to the log only.
func (h *Handler) applyFailed(w http.ResponseWriter, ctx context.Context, ev billing.Event, err error) {
	p := httpjson.Classify(err)
	switch p {
	case httpjson.Unavailable:
		h.m.rejected.WithLabelValues("unavailable").Inc()
		h.cfg.Log.Warn("webhook event not applied: database unavailable", "stripe_event_id", ev.ID, "event_type", ev.Type, "err", err)
	case httpjson.Invalid:
		h.m.rejected.WithLabelValues("invalid_payload").Inc()
		h.cfg.Log.Warn("webhook event rejected by the store", "stripe_event_id", ev.ID, "event_type", ev.Type, "err", err)
	default:
		// Not found, conflict and the like never come out of ApplyEvent;
		// if one did, it is a fault here, not the sender's.
		p = httpjson.Internal
		h.m.rejected.WithLabelValues("internal").Inc()
		h.cfg.Log.ErrorContext(ctx, "webhook event not applied", "stripe_event_id", ev.ID, "event_type", ev.Type, "err", err)
	}
	httpjson.Write(w, p)
}

// labelType bounds an event type for logs of rejected payloads.
func labelType(t string) string {
	if Handled(t) {
		return t
	}
	return typeOther
}

// safeID returns an event ID only if it has the shape of one: a rejected
// payload's "id" could be anything.
func safeID(id string) string {
	if reEventID.MatchString(id) {
		return id
	}
	return ""
}
