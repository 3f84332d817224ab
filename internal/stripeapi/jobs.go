package stripeapi

// The Stripe jobs of erasures: the Stripe calls an account erasure asks for
// (cancel subscriptions, delete customers), run from the durable outbox
// after the local erasure has committed. Jobs are claimed with SKIP LOCKED
// and a lease, so any number of replicas may run a worker and each call is
// made once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"
)

// JobStore is the outbox API the job worker needs (internal/postgres).
type JobStore interface {
	OutboxClaim(ctx context.Context, kind string, limit int, lease time.Duration) ([]billing.OutboxJob, error)
	OutboxRetryLater(ctx context.Context, id int64, attempt int, delay time.Duration, status int, summary string, counted bool) error
	StripeJobDone(ctx context.Context, id int64, attempt, status int) error
	StripeJobDead(ctx context.Context, id int64, attempt, status int, summary string) error
	// ResolveDiscounts records the amounts of discounts that arrived as
	// bare IDs and re-derives the customer's ledger.
	ResolveDiscounts(ctx context.Context, customerID string, rs []billing.DiscountResolution) error
}

// JobWorker claims and runs Stripe jobs.
type JobWorker struct {
	Store JobStore
	// Stripe makes the calls: a Client with NoNetworkRetries (the outbox
	// retries, durably).
	Stripe *Client
	Log    *slog.Logger
	// Interval is the pause when no job is due (default 5s).
	Interval time.Duration
	// Lease is how long a claimed job is hidden from other workers; a call
	// must finish well within it (default 2m; the HTTP client times out
	// sooner).
	Lease time.Duration
	// Events applies what a fetch job read from Stripe (the complete list
	// of a customer's active entitlements) through the event path; nil:
	// such jobs fail and are retried.
	Events billing.EventApplier
	// MaxBackoff caps the delay between attempts (default 1h). Jobs are
	// retried until Stripe answers: an erasure must not be dropped because
	// Stripe was down for a day.
	MaxBackoff time.Duration

	m *jobMetrics
}

type jobMetrics struct {
	jobs *prometheus.CounterVec
}

// Register adds the worker's metrics to reg. Call once, before Run.
func (w *JobWorker) Register(reg prometheus.Registerer) {
	w.m = &jobMetrics{jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "billingd_stripe_jobs_total",
		Help: "Stripe job attempts by action and outcome (done, retry, dead).",
	}, []string{"action", "outcome"})}
	reg.MustRegister(w.m.jobs)
}

func (w *JobWorker) defaults() {
	if w.Interval <= 0 {
		w.Interval = 5 * time.Second
	}
	if w.Lease <= 0 {
		w.Lease = 2 * time.Minute
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = time.Hour
	}
	if w.Log == nil {
		w.Log = slog.Default()
	}
}

// Run works jobs until ctx ends.
func (w *JobWorker) Run(ctx context.Context) {
	w.defaults()
	for ctx.Err() == nil {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.Warn("stripe jobs: claim failed", "err", err)
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.Interval):
		}
	}
}

// RunOnce claims the due jobs (up to 10) and runs them; it returns how many
// it claimed.
func (w *JobWorker) RunOnce(ctx context.Context) (int, error) {
	w.defaults()
	jobs, err := w.Store.OutboxClaim(ctx, billing.OutboxStripe, 10, w.Lease)
	if err != nil {
		return 0, fmt.Errorf("claim stripe jobs: %w", err)
	}
	for _, j := range jobs {
		w.run(ctx, j)
	}
	return len(jobs), nil
}

// idPattern is the shape of the Stripe IDs a job may hold.
var idPattern = regexp.MustCompile(`^(cus|sub)_[A-Za-z0-9]{1,250}$`)

// jobOutcomeKind is what one attempt decided.
type jobOutcomeKind int

const (
	jobDone jobOutcomeKind = iota
	jobRetry
	jobDead
)

func (w *JobWorker) run(ctx context.Context, j billing.OutboxJob) {
	status, summary, oc := w.call(ctx, j)
	var err error
	switch oc {
	case jobDone:
		err = w.Store.StripeJobDone(ctx, j.ID, j.Attempts, status)
	case jobDead:
		err = w.Store.StripeJobDead(ctx, j.ID, j.Attempts, status, summary)
		w.Log.Error("stripe job refused: dead until re-queued (billingd stripe-jobs retry)", "outbox_id", j.ID, "action", j.Action, "status", status, "summary", summary)
	case jobRetry:
		delay := w.backoff(j.Attempts)
		err = w.Store.OutboxRetryLater(ctx, j.ID, j.Attempts, delay, status, summary, true)
		w.Log.Warn("stripe job failed; will retry", "outbox_id", j.ID, "action", j.Action, "attempt", j.Attempts,
			"status", status, "summary", summary, "retry_in_s", int(delay.Seconds()))
	}
	if w.m != nil {
		w.m.jobs.WithLabelValues(j.Action, [...]string{"done", "retry", "dead"}[oc]).Inc()
	}
	if err != nil {
		// A lost lease means another worker has the job now; anything else
		// leaves the job to be claimed again when the lease ends.
		w.Log.Warn("stripe job outcome not recorded", "outbox_id", j.ID, "err", err)
	}
}

// call makes the job's Stripe request and classifies the answer. The
// summary names the action, status and Stripe error code only: Stripe's
// messages quote the IDs, which must not reach logs or last_error.
func (w *JobWorker) call(ctx context.Context, j billing.OutboxJob) (int, string, jobOutcomeKind) {
	var p billing.StripeJobPayload
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		return 0, "malformed payload", jobDead
	}
	var err error
	switch j.Action {
	case billing.StripeDeleteCustomer:
		if !idPattern.MatchString(p.CustomerID) {
			return 0, "payload has no customer ID", jobDead
		}
		err = w.Stripe.DeleteCustomer(p.CustomerID)
	case billing.StripeCancelSubscription:
		if !idPattern.MatchString(p.SubscriptionID) {
			return 0, "payload has no subscription ID", jobDead
		}
		err = w.Stripe.CancelSubscription(p.SubscriptionID)
	case ActionFetchEntitlements:
		if !idPattern.MatchString(p.CustomerID) {
			return 0, "payload has no customer ID", jobDead
		}
		err = w.fetchEntitlements(ctx, p.CustomerID)
		if errors.Is(err, errApplyFetched) {
			// The database or the applier: retried, durably.
			return 0, j.Action + ": could not apply the fetched list", jobRetry
		}
	case billing.StripeResolveDiscounts:
		return w.resolveDiscounts(ctx, p)
	default:
		return 0, "unknown action", jobDead
	}
	return jobOutcome(j.Action, err)
}

// jobOutcome maps a stripe-go result onto an outcome. 404 (resource_missing)
// is success: the object is already gone, e.g. a second replica's call or
// a deletion in the Dashboard. Rate limits, conflicts, auth problems (a key
// can be fixed) and 5xx are retried; other 4xx are refused for good.
func jobOutcome(action string, err error) (int, string, jobOutcomeKind) {
	if err == nil {
		return http.StatusOK, "", jobDone
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		return 0, action + ": no answer from Stripe", jobRetry
	}
	st := se.HTTPStatusCode
	summary := fmt.Sprintf("%s: stripe %d %s %s", action, st, se.Type, se.Code)
	switch {
	case st == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing:
		return st, "", jobDone
	case st == http.StatusTooManyRequests, st == http.StatusConflict, st == http.StatusUnauthorized,
		st == http.StatusForbidden, st >= 500, st == 0:
		return st, summary, jobRetry
	}
	return st, summary, jobDead
}

// backoff is the delay after attempt n: 5s doubling, capped, with jitter so
// replicas retrying together spread out.
func (w *JobWorker) backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < w.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// ActionFetchEntitlements is the Stripe job that fetches a customer's
// complete active entitlements (postgres.StripeFetchEntitlements queues it
// when a summary event had more than one page).
const ActionFetchEntitlements = "fetch_entitlements"

// errApplyFetched marks a fetch job whose Stripe call succeeded but whose
// result could not be applied.
var errApplyFetched = errors.New("apply fetched objects")

// couponIDPattern is the shape of a coupon ID (generated or chosen by the
// merchant): the webhook decoder keeps no other.
var couponIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,255}$`)

// resolveDiscounts fetches the amounts of discounts that arrived as bare
// IDs (the subscription with its discounts expanded, or the coupon of a
// customer's discount) and hands them to the store, which re-derives the
// customer's ledger. A discount gone from Stripe (404) is done: there is
// nothing left to resolve.
func (w *JobWorker) resolveDiscounts(ctx context.Context, p billing.StripeJobPayload) (int, string, jobOutcomeKind) {
	const action = billing.StripeResolveDiscounts
	if !idPattern.MatchString(p.CustomerID) {
		return 0, "payload has no customer ID", jobDead
	}
	var rs []billing.DiscountResolution
	switch {
	case p.SubscriptionID != "":
		if !idPattern.MatchString(p.SubscriptionID) {
			return 0, "payload has no subscription ID", jobDead
		}
		raw, err := w.Stripe.SubscriptionWithDiscounts(p.SubscriptionID)
		if err != nil {
			return jobOutcome(action, err)
		}
		if rs, err = webhooks.DecodeDiscountResolutions(raw); err != nil {
			return http.StatusOK, action + ": unreadable subscription discounts", jobDead
		}
	case p.CouponID != "":
		if !couponIDPattern.MatchString(p.CouponID) {
			return 0, "payload has no coupon ID", jobDead
		}
		raw, err := w.Stripe.Coupon(p.CouponID)
		if err != nil {
			return jobOutcome(action, err)
		}
		r, ok, err := webhooks.DecodeCouponResolution(raw, p.DiscountID)
		if err != nil {
			return http.StatusOK, action + ": unreadable coupon", jobDead
		}
		if ok {
			rs = append(rs, r)
		}
	default:
		return 0, "payload names nothing to resolve", jobDead
	}
	if len(rs) == 0 {
		return http.StatusOK, "", jobDone
	}
	if err := w.Store.ResolveDiscounts(ctx, p.CustomerID, rs); err != nil {
		return http.StatusOK, action + ": storing the amounts failed", jobRetry
	}
	return http.StatusOK, "", jobDone
}
