package webhooks

import (
	"context"
	"errors"
	"fmt"
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
	// Tolerance bounds the signature timestamp's distance from now, in
	// either direction (default 5m).
	Tolerance time.Duration
	// MaxBodyBytes caps the body (default 1 MiB); larger bodies get 413.
	MaxBodyBytes int64
	// BodyTimeout bounds the time a body may take to arrive after its
	// headers (default 2s); slower ones get 408 (body.go).
	BodyTimeout time.Duration
	// MaxBodyReads bounds the bodies read at once (default 128); beyond
	// it the slowest reader or the newcomer gets 503 (body.go).
	MaxBodyReads int
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
	// ApplyTimeout is every delivery's deadline, from the moment its
	// headers are read (default 5s): reading the body, waiting for a batch
	// and committing all fit in it, or the answer is 503 with Retry-After,
	// well before Stripe gives up on the request and retries anyway. An
	// event that cannot be applied in time is refused at once (the store's
	// admission control), not queued.
	ApplyTimeout time.Duration
}

// admitter is implemented by stores with admission control
// (*postgres.Store): asked before a body is decoded, so that an event
// that would be refused costs no decoding.
type admitter interface {
	AdmitEvent(deadline time.Time) error
}

// Handler serves POST /webhooks/stripe.
type Handler struct {
	cfg     Config
	m       *metrics
	readers *bodyReaders
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
		cfg.ApplyTimeout = 5 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 2 * time.Second
	}
	if cfg.MaxBodyReads <= 0 {
		cfg.MaxBodyReads = 128
	}
	m := newMetrics(cfg.Registerer)
	return &Handler{cfg: cfg, m: m, readers: &bodyReaders{max: cfg.MaxBodyReads, gauge: m.reading}}, nil
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
// limits); 405, 408, 413, 415 for the wrong method, a body too slow, too
// large or of the wrong type; 503 with Retry-After when a retry can
// succeed (httpjson.Classify), among them an event that cannot be
// committed before its deadline (ApplyTimeout: overload, locked rows), so
// Stripe retries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
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
		closeAfter(w)
		h.tooLarge(w)
		return
	}
	// Whatever can be judged without the body is judged before reading it.
	sig := r.Header.Get("Stripe-Signature")
	if reason, err := checkHeader(sig, start, h.cfg.Tolerance); err != nil {
		closeAfter(w)
		h.m.sigFails.WithLabelValues(reason).Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "signature_"+reason, err.Error())
		return
	}
	deadline := start.Add(h.cfg.ApplyTimeout)
	body := h.readBody(w, r, start, deadline)
	if body == nil {
		return
	}
	if len(body) == 0 {
		h.m.rejected.WithLabelValues("empty").Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "empty_body", "the request body is empty")
		return
	}
	if reason, err := h.verify(body, sig); err != nil {
		h.m.sigFails.WithLabelValues(reason).Inc()
		httpjson.WriteError(w, http.StatusBadRequest, "signature_"+reason, err.Error())
		return
	}
	if a, ok := h.cfg.Store.(admitter); ok {
		if err := a.AdmitEvent(deadline); err != nil {
			h.overloaded(w, r.Context(), "", err)
			return
		}
	}
	ev, err := DecodeEvent(body, DecodeOptions{Links: h.cfg.Links})
	if errors.Is(err, ErrUnhandled) {
		// Unhandled types (charge.succeeded, ...) leave no trace but a counter.
		h.m.event(typeOther, billing.OutcomeUnhandled)
		httpjson.WriteJSON(w, http.StatusOK, response{Received: true, Outcome: billing.OutcomeUnhandled})
		return
	}
	if errors.Is(err, ErrDecodeIncomplete) {
		// A shape this binary does not know: nothing is applied and the
		// ID is not recorded, so after an upgrade `billingd stripe sweep
		// --since` applies it (Stripe keeps it 30 days). 200: retries
		// would fail alike, and an endpoint failing for days is disabled.
		h.m.partial.WithLabelValues(labelType(ev.Type)).Inc()
		h.cfg.Log.Warn("webhook event of an unknown API shape lacks a needed field: acknowledged, not applied",
			"stripe_event_id", safeID(ev.ID), "event_type", labelType(ev.Type), "err", err)
		httpjson.WriteJSON(w, http.StatusOK, response{Received: true, Outcome: billing.OutcomeDecodeIncomplete})
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
	if futureDated(ev.Created, time.Now(), sig, h.cfg.Tolerance) {
		// Recorded by ID only, so it can neither become a version nor be
		// applied by a redelivery later (future.go).
		h.cfg.Log.Warn("webhook event created in the future: acknowledged, not applied",
			"stripe_event_id", ev.ID, "event_type", ev.Type)
		ev = billing.Event{ID: ev.ID, Type: ev.Type, Created: ev.Created, Livemode: ev.Livemode, Connect: ev.Connect, FutureDated: true}
	}
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
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
	if errors.Is(err, billing.ErrOverloaded) {
		h.overloaded(w, ctx, ev.ID, err)
		return
	}
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

// overloaded answers an event refused because it could not be applied
// before its deadline (billing.ErrOverloaded, an ErrUnavailable): 503 with
// Retry-After, as httpjson.Classify answers it. Logged at debug only: under
// overload there is one per refused delivery, and
// billingd_webhook_rejected_total counts them: reason "overloaded" when
// refused at once, "deadline" when its deadline passed in the queue.
func (h *Handler) overloaded(w http.ResponseWriter, ctx context.Context, eventID string, err error) {
	reason := "overloaded"
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		reason = "deadline"
	}
	h.m.rejected.WithLabelValues(reason).Inc()
	if h.cfg.Log.Enabled(ctx, slog.LevelDebug) {
		h.cfg.Log.Debug("webhook event refused: overloaded", "stripe_event_id", eventID, "err", err)
	}
	httpjson.Write(w, httpjson.Classify(err))
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
