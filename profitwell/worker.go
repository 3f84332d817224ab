package profitwell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/billingd/billingd/billing"
)

// Queue is the outbox as the worker needs it (internal/postgres.Store).
type Queue interface {
	OutboxClaim(ctx context.Context, kind string, limit int, lease time.Duration) ([]billing.OutboxJob, error)
	OutboxMarkSent(ctx context.Context, id int64, attempt, status int) error
	OutboxRetryLater(ctx context.Context, id int64, attempt int, delay time.Duration, status int, summary string, counted bool) error
	OutboxMarkDead(ctx context.Context, id int64, attempt, status int, summary string) error
}

// purger is the optional clean-up side of the Queue.
type purger interface {
	OutboxPurgeSent(ctx context.Context, kind string, age time.Duration) (int64, error)
}

// SentRetention is how long delivered rows stay in the outbox (for
// debugging "was it sent?") before the worker deletes them.
const SentRetention = 24 * time.Hour

// Worker delivers ProfitWell outbox rows. Several workers (goroutines or
// replicas) may run at once: the claim hands each row to one of them, and
// a customer's rows go one at a time in order. Delivery is at least once
// (a worker that dies after sending but before recording resends after its
// lease), and every send is made idempotent: a create that exists becomes
// an update, a churn of a churned subscription, an unchurn of a live one
// and an erase of an unknown user are done.
type Worker struct {
	Queue       Queue
	Client      *Client
	AliasKey    []byte // PROFITWELL_ALIAS_KEY
	MaxAttempts int    // PROFITWELL_MAX_ATTEMPTS; default 10
	Backoff     Backoff
	Batch       int           // rows per claim; default 5
	Lease       time.Duration // claim lease; default 2 min, must exceed Batch × Timeout
	Timeout     time.Duration // per send, limiter wait included; default 20 s
	Poll        time.Duration // idle poll interval; default 500 ms
	Log         *slog.Logger
	Metrics     *Metrics // nil: not collected
}

func (w *Worker) defaults() {
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 10
	}
	if w.Batch <= 0 {
		w.Batch = 5
	}
	if w.Timeout <= 0 {
		w.Timeout = 20 * time.Second
	}
	if w.Lease <= 0 {
		w.Lease = max(2*time.Minute, time.Duration(w.Batch+1)*w.Timeout)
	}
	if w.Poll <= 0 {
		w.Poll = 500 * time.Millisecond
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
}

// Run delivers rows until ctx ends. An idle worker looks for new rows
// every Poll, so a row written by the event path goes out within about
// that long. Errors reaching the database are logged and retried.
func (w *Worker) Run(ctx context.Context) error {
	w.defaults()
	w.Log.Info("profitwell worker started", "batch", w.Batch, "max_attempts", w.MaxAttempts)
	sctx, cancel := context.WithTimeout(ctx, w.Timeout)
	if err := w.Client.Status(sctx); err != nil {
		// Not fatal: ProfitWell may be down for a moment; rows wait.
		w.Log.Warn("profitwell api-status check failed", "err", err)
	}
	cancel()
	var lastPurge time.Time
	failures := 0
	for {
		if p, ok := w.Queue.(purger); ok && time.Since(lastPurge) > 10*time.Minute {
			lastPurge = time.Now()
			if n, err := p.OutboxPurgeSent(ctx, billing.OutboxProfitWell, SentRetention); err != nil {
				w.Log.Warn("profitwell worker: purge of sent rows failed", "err", err)
			} else if n > 0 {
				w.Log.Info("profitwell worker: purged sent rows", "rows", n)
			}
		}
		n, err := w.RunOnce(ctx)
		if ctx.Err() != nil {
			w.Log.Info("profitwell worker stopped")
			return nil
		}
		wait := w.Poll
		if err != nil {
			// The database is away: back off (up to 30 s) instead of
			// logging twice a second until it returns.
			failures++
			wait = min(w.Poll<<min(failures, 6), 30*time.Second)
			w.Log.Warn("profitwell worker: claim failed", "err", err, "retry_in", wait.String())
		} else {
			failures = 0
		}
		if n == w.Batch && err == nil {
			continue // more may be due: no pause while there is a backlog
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			w.Log.Info("profitwell worker stopped")
			return nil
		case <-t.C:
		}
	}
}

// RunOnce claims one batch and delivers it, returning how many rows it
// claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.defaults()
	jobs, err := w.Queue.OutboxClaim(ctx, billing.OutboxProfitWell, w.Batch, w.Lease)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(w.Lease - w.Timeout/2)
	for _, job := range jobs {
		if ctx.Err() != nil || time.Now().After(deadline) {
			// Not started: the lease runs out and the row is claimed again.
			break
		}
		w.deliver(ctx, job, deadline)
	}
	return len(jobs), nil
}

// outcome classifies one send.
type outcome int

const (
	sent      outcome = iota
	retry             // transient: network, timeout, 5xx
	throttled         // 429: retry without counting the attempt
	dead              // the receiver refuses the request: retrying cannot help
)

func (w *Worker) deliver(ctx context.Context, job billing.OutboxJob, deadline time.Time) {
	end := time.Now().Add(w.Timeout)
	if deadline.Before(end) {
		end = deadline
	}
	sctx, cancel := context.WithDeadline(ctx, end)
	status, err := w.send(sctx, job)
	cancel()
	oc, summary, wait := w.classify(status, err, job)
	if oc == retry && ctx.Err() != nil {
		// Shutting down mid-send: the outcome is unknown, so the row goes
		// back at once without counting it (a resend is idempotent).
		oc, wait = throttled, 0
		summary = "interrupted by shutdown"
	}
	// Record the outcome even while shutting down: dropping it would only
	// cost a resend after the lease, but there is no reason to.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	log := w.Log.With("outbox_id", job.ID, "action", job.Action, "attempt", job.Attempts, "status", status)
	var rerr error
	switch oc {
	case sent:
		rerr = w.Queue.OutboxMarkSent(rctx, job.ID, job.Attempts, status)
		log.Debug("profitwell row sent")
	case retry, throttled:
		rerr = w.Queue.OutboxRetryLater(rctx, job.ID, job.Attempts, wait, status, summary, oc == retry)
		log.Warn("profitwell row will be retried", "retry_in", wait.Round(time.Millisecond).String(), "error", summary)
	case dead:
		rerr = w.Queue.OutboxMarkDead(rctx, job.ID, job.Attempts, status, summary)
		log.Error("profitwell row dead-lettered", "error", summary)
	}
	w.Metrics.observe(job.Action, oc, status)
	if rerr != nil {
		// Most likely the lease ran out and another worker has the row.
		log.Warn("profitwell row outcome not recorded", "err", rerr)
	}
}

// classify maps a send's result to what happens to the row, with a
// summary fit for the database and logs (no payload, no personal data).
func (w *Worker) classify(status int, err error, job billing.OutboxJob) (outcome, string, time.Duration) {
	if err == nil {
		return sent, "", 0
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		return dead, perm.msg, 0
	}
	if errors.Is(err, ErrRateLimitWait) {
		// Never sent: held by our own limiter (ProfitWell asked us to slow
		// down). Like a 429, this must not spend the row's attempts.
		return throttled, "held by the rate limit", time.Second
	}
	var apiErr *Error
	isAPI := errors.As(err, &apiErr)
	summary := "network error"
	var urlErr *url.Error
	switch {
	case isAPI:
		summary = apiErr.Error()
	case errors.Is(err, context.DeadlineExceeded):
		summary = "timeout"
	case errors.As(err, &urlErr):
		// The inner error (e.g. "dial tcp ...: connection refused"), not
		// the URL: it names only ProfitWell's host, never a payload.
		summary = "network error: " + urlErr.Err.Error()
	}
	if isAPI && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden) {
		// A refused token is the deployment's fault, not the row's:
		// dead-lettering would bury every row until someone retried them
		// all. Keep them, without spending attempts, and say so loudly.
		w.Log.Error("profitwell refused the API token (PROFITWELL_API_TOKEN): rows wait", "status", apiErr.Status)
		return throttled, summary, time.Minute
	}
	if isAPI && !apiErr.Temporary() {
		return dead, summary, 0
	}
	if isAPI && apiErr.Throttled() {
		return throttled, summary, max(apiErr.RetryAfter, time.Second)
	}
	if job.Attempts >= w.MaxAttempts {
		return dead, fmt.Sprintf("gave up after %d attempts: %s", job.Attempts, summary), 0
	}
	wait := w.Backoff.Delay(job.Attempts)
	if isAPI && apiErr.RetryAfter > wait {
		wait = apiErr.RetryAfter
	}
	return retry, summary, wait
}

// permanentError is a row that cannot be sent as stored.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// send performs the call(s) for one row and returns the last HTTP status.
func (w *Worker) send(ctx context.Context, job billing.OutboxJob) (int, error) {
	var p billing.SyncPayload
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.CustomerRef == "" {
		return 0, &permanentError{"payload is not a sync payload"}
	}
	user := Alias(w.AliasKey, p.CustomerRef)
	var sub string
	if p.SubscriptionRef != "" {
		sub = Alias(w.AliasKey, p.SubscriptionRef)
	}
	if sub == "" && billing.SyncKind(job.Action) != billing.SyncEraseUser {
		return 0, &permanentError{"payload has no subscription reference"}
	}
	update := Update{PlanID: p.PlanID, PlanInterval: p.PlanInterval, Value: p.Value, EffectiveDate: p.EffectiveDate, Status: p.Status}
	switch billing.SyncKind(job.Action) {
	case billing.SyncCreate:
		currency := p.PlanCurrency
		if currency == "" {
			currency = "usd"
		}
		status, err := w.Client.CreateSubscription(ctx, Subscription{
			UserAlias: user, SubscriptionAlias: sub, Email: user,
			PlanID: p.PlanID, PlanInterval: p.PlanInterval, PlanCurrency: currency,
			Status: p.Status, Value: p.Value, EffectiveDate: p.EffectiveDate,
		})
		var e *Error
		if errors.As(err, &e) && e.alreadyExists() {
			// A resend after a crash, or a backfill of a subscription
			// ProfitWell has: make it agree, from when the row was written
			// (never backdating a change to the subscription's start).
			update.EffectiveDate = max(update.EffectiveDate, job.CreatedAt.Unix())
			return w.Client.UpdateSubscription(ctx, sub, update)
		}
		return status, err
	case billing.SyncUpdate:
		return w.Client.UpdateSubscription(ctx, sub, update)
	case billing.SyncChurn:
		status, err := w.Client.ChurnSubscription(ctx, sub, p.EffectiveDate, string(p.ChurnType))
		var e *Error
		if errors.As(err, &e) && e.alreadyChurned() {
			return status, nil
		}
		return status, err
	case billing.SyncUnchurn:
		status, err := w.Client.UnchurnSubscription(ctx, sub)
		var e *Error
		if errors.As(err, &e) && e.notChurned() {
			return status, nil
		}
		return status, err
	case billing.SyncEraseUser:
		status, err := w.Client.DeleteUser(ctx, user)
		if IsNotFound(err) {
			return status, nil // nothing (left) to erase
		}
		return status, err
	}
	return 0, &permanentError{fmt.Sprintf("unknown action %q", job.Action)}
}
