package stripeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
)

// SyncStore is what backfill and reconcile need from the database
// (*postgres.Store implements it).
type SyncStore interface {
	billing.EventApplier
	// ApplyObjects applies API-fetched objects as ApplyEvent would, in one
	// transaction (backfill's pages).
	ApplyObjects(ctx context.Context, evs []billing.Event) ([]billing.Outcome, []error, error)
	SubscriptionStates(ctx context.Context, ids []string) (map[string]billing.Subscription, error)
	CustomerStates(ctx context.Context, ids []string) (map[string]billing.StoredCustomer, error)
	ReconcileSubscriptions(ctx context.Context, livemode bool, createdSince *time.Time) (map[string]billing.Subscription, error)
	ReconcileCustomers(ctx context.Context, livemode bool) (map[string]billing.StoredCustomer, error)
	BackfillCursors(ctx context.Context) (map[string]billing.BackfillCursor, error)
	SaveBackfillCursor(ctx context.Context, c billing.BackfillCursor) error
	BackfillPartitions(ctx context.Context) (map[string][]billing.BackfillPartition, error)
	SaveBackfillPartitions(ctx context.Context, ps []billing.BackfillPartition) error
	ClearBackfillCursors(ctx context.Context) error
	TryStripeSyncLock(ctx context.Context) (release func(), ok bool, err error)
	Tombstoned(ctx context.Context, ids []string) (map[string]bool, error)
	SweepCursors(ctx context.Context, livemode bool) (map[string]billing.SweepCursor, error)
	SaveSweepCursor(ctx context.Context, c billing.SweepCursor) error
	DropSweepCursors(ctx context.Context, livemode bool, keep []string) error
	LastSweep(ctx context.Context, livemode bool) (at time.Time, ok bool, err error)
}

// ErrBusy means another backfill or reconcile holds the lock.
var ErrBusy = errors.New("another backfill or reconcile is running (it holds the Stripe sync lock); try again when it ends")

// Syncer runs backfill, reconcile and the missed-event sweep.
type Syncer struct {
	Client *Client
	Store  SyncStore
	Log    *slog.Logger
	// Links checks checkout client references of swept events, as the
	// webhook handler's (nil refuses them all).
	Links *billing.LinkVerifier
	// Progress, when set, receives one line per page (counts, objects/s).
	Progress io.Writer
	// Now is the clock for --since windows and rates; nil: time.Now.
	Now func() time.Time
	// Parallel is how many parts of a list a backfill walks at once
	// (backfill_parts.go); 0 or 1 walks each list with a single cursor.
	Parallel int
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Syncer) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Counts is what happened to the objects of one list.
type Counts struct {
	Listed    int // objects Stripe listed
	Applied   int // written through ApplyEvent (state or link changed)
	Unchanged int // already stored exactly so: not written again
	Skipped   int // erased (tombstoned) or older than stored state
	Failed    int
}

// Failure is one object that could not be applied. Err names the field
// or cause, never a value from the object.
type Failure struct {
	Object string // customer or subscription
	ID     string
	Err    string
}

// BackfillSummary reports a backfill run.
type BackfillSummary struct {
	Resumed       bool
	Customers     Counts
	Subscriptions Counts
	Failures      []Failure
	Elapsed       time.Duration
}

// idOf reads only "id" and "created" of a raw object, for cursors and
// failure reports.
type idOf struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
}

// Backfill applies every customer and subscription Stripe lists (every
// status), customers first. It resumes an interrupted run from its cursor,
// skips objects stored exactly as Stripe has them (so a second run changes
// nothing), and keeps going past objects that fail: they are listed in the
// summary and the run returns an error naming how many. A database outage
// stops the run; the cursor keeps what was done.
func (s *Syncer) Backfill(ctx context.Context) (BackfillSummary, error) {
	var sum BackfillSummary
	start := s.now()
	release, ok, err := s.Store.TryStripeSyncLock(ctx)
	if err != nil {
		return sum, err
	}
	if !ok {
		return sum, ErrBusy
	}
	defer release()
	cursors, err := s.Store.BackfillCursors(ctx)
	if err != nil {
		return sum, err
	}
	parts, err := s.Store.BackfillPartitions(ctx)
	if err != nil {
		return sum, err
	}
	sum.Resumed = len(cursors) > 0 || len(parts) > 0
	for _, list := range []string{billing.BackfillCustomers, billing.BackfillSubscriptions} {
		c, ok := cursors[list]
		if !ok {
			c = billing.BackfillCursor{List: list}
		}
		if c.Done {
			continue
		}
		counts := &sum.Customers
		if list == billing.BackfillSubscriptions {
			counts = &sum.Subscriptions
		}
		if s.Parallel > 1 || len(parts[list]) > 0 {
			// A run begun in parts resumes in parts, whatever Parallel is now.
			if err := s.Store.SaveBackfillCursor(ctx, c); err != nil {
				return sum, err
			}
			s.Parallel = max(s.Parallel, 1)
			if err := s.backfillParts(ctx, list, c, parts[list], counts, &sum.Failures); err != nil {
				sum.Elapsed = s.now().Sub(start)
				return sum, fmt.Errorf("backfill %s (resumable: run it again): %w", list, err)
			}
			c.Done = true
			if err := s.Store.SaveBackfillCursor(ctx, c); err != nil {
				return sum, err
			}
			continue
		}
		var w Window
		if c.CreatedLTE != nil {
			w.LTE = *c.CreatedLTE
		}
		fn := func(objs []listed, at time.Time) error {
			var err error
			if list == billing.BackfillCustomers {
				err = s.applyCustomers(ctx, objs, at, counts, &sum.Failures)
			} else {
				err = s.applySubscriptions(ctx, objs, at, counts, &sum.Failures)
			}
			if err != nil {
				return err
			}
			c.Objects += int64(len(objs))
			if oldest := oldestCreated(objs); oldest != nil {
				c.CreatedLTE = oldest
			}
			if err := s.Store.SaveBackfillCursor(ctx, c); err != nil {
				return err
			}
			s.progress(list, c.Objects, start)
			return nil
		}
		if err := s.listPages(ctx, list, w, fn); err != nil {
			sum.Elapsed = s.now().Sub(start)
			return sum, fmt.Errorf("backfill %s (resumable: run it again): %w", list, err)
		}
		c.Done = true
		if err := s.Store.SaveBackfillCursor(ctx, c); err != nil {
			return sum, err
		}
	}
	if err := s.Store.ClearBackfillCursors(ctx); err != nil {
		return sum, err
	}
	sum.Elapsed = s.now().Sub(start)
	s.log().Info("backfill done", "customers", sum.Customers.Listed, "subscriptions", sum.Subscriptions.Listed,
		"applied", sum.Customers.Applied+sum.Subscriptions.Applied, "failed", len(sum.Failures))
	if len(sum.Failures) > 0 {
		return sum, fmt.Errorf("backfill: %d objects could not be applied (listed above); everything else was", len(sum.Failures))
	}
	return sum, nil
}

func (s *Syncer) progress(list string, n int64, start time.Time) {
	if s.Progress == nil {
		return
	}
	secs := s.now().Sub(start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(n) / secs
	}
	fmt.Fprintf(s.Progress, "%s: %d listed (%.0f objects/s)\n", list, n, rate)
}

// listed is one object of a list page, decoded once: paging needs its
// creation time, applying it the decoded object.
type listed struct {
	id      string // for a failure's line
	created int64  // unix seconds; 0 when unknown
	cust    billing.Customer
	sub     billing.Subscription
	err     error // the decoder's
}

// listPages lists list (customers or subscriptions) in w and calls fn
// with each page's objects, decoded in one pass, and when Stripe answered.
func (s *Syncer) listPages(ctx context.Context, list string, w Window, fn func(objs []listed, at time.Time) error) error {
	if list == billing.BackfillCustomers {
		return s.Client.ListCustomerPages(ctx, w, func(p ListedPage[billing.Customer]) error {
			return fn(listedOf(p.Objects, func(o *listed, c billing.Customer) { o.cust = c }), p.At)
		})
	}
	return s.Client.ListSubscriptionPages(ctx, w, func(p ListedPage[billing.Subscription]) error {
		return fn(listedOf(p.Objects, func(o *listed, sub billing.Subscription) { o.sub = sub }), p.At)
	})
}

func listedOf[T any](objs []webhooks.Listed[T], set func(*listed, T)) []listed {
	out := make([]listed, len(objs))
	for i, lo := range objs {
		o := &out[i]
		o.id, o.created, o.err = lo.ID, lo.Created, lo.Err
		if lo.Err != nil {
			// Not validated: a failure line quotes at most 64 bytes of it.
			o.id = truncID(lo.ID)
			continue
		}
		set(o, lo.Object)
	}
	return out
}

// oldestCreated is the creation second of the oldest object on a page.
func oldestCreated(objs []listed) *time.Time {
	var oldest *time.Time
	for _, o := range objs {
		if o.created <= 0 {
			continue
		}
		t := time.Unix(o.created, 0).UTC()
		if oldest == nil || t.Before(*oldest) {
			oldest = &t
		}
	}
	return oldest
}

func rawID(raw json.RawMessage) string {
	var o idOf
	_ = json.Unmarshal(raw, &o)
	return truncID(o.ID)
}

func truncID(id string) string {
	if len(id) > 64 {
		return id[:64]
	}
	return id
}

// fatal reports whether an apply error should stop the run (the database
// is unreachable: every further object would fail too) rather than be
// listed as one object's failure.
func fatal(err error) bool {
	return errors.Is(err, billing.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// failure keeps the decoder's or store's message: both name fields and
// causes, never values from the object.
func failure(object, id string, err error) Failure {
	return Failure{Object: object, ID: id, Err: err.Error()}
}

// applySubscriptions decodes a page of subscriptions and applies the ones
// that differ from stored state, or carry an account hint for a customer
// not linked yet.
func (s *Syncer) applySubscriptions(ctx context.Context, objs []listed, at time.Time, counts *Counts, fails *[]Failure) error {
	subs := make([]billing.Subscription, 0, len(objs))
	ids, custIDs := make([]string, 0, len(objs)), make([]string, 0, len(objs))
	for _, o := range objs {
		counts.Listed++
		if o.err != nil {
			counts.Failed++
			*fails = append(*fails, failure("subscription", o.id, o.err))
			continue
		}
		subs = append(subs, o.sub)
		ids, custIDs = append(ids, o.sub.ID), append(custIDs, o.sub.CustomerID)
	}
	stored, err := s.Store.SubscriptionStates(ctx, ids)
	if err != nil {
		return err
	}
	custs, err := s.Store.CustomerStates(ctx, custIDs)
	if err != nil {
		return err
	}
	var evs []billing.Event
	for i := range subs {
		sub := subs[i]
		cur, ok := stored[sub.ID]
		c := custs[sub.CustomerID]
		if ok && billing.SubscriptionDiff(cur, sub) == nil && (sub.AccountHint == "" || c.Linked || c.Deleted) {
			counts.Unchanged++
			continue
		}
		evs = append(evs, subscriptionEvent(sub, at))
	}
	return s.applyEvents(ctx, "subscription", evs, counts, fails)
}

// applyEvents applies a page's objects through the event path in one
// transaction (Store.ApplyObjects: ApplyEvent's rules, one object alone
// when the page's transaction fails). A database outage stops the page;
// any other error is that object's failure.
func (s *Syncer) applyEvents(ctx context.Context, object string, evs []billing.Event, counts *Counts, fails *[]Failure) error {
	if len(evs) == 0 {
		return nil
	}
	outs, errs, err := s.Store.ApplyObjects(ctx, evs)
	if err != nil {
		return err
	}
	var stop error
	for i, ev := range evs {
		switch err := errs[i]; {
		case err == nil:
			switch outs[i] {
			case billing.OutcomeApplied, billing.OutcomeLinkConflict:
				counts.Applied++
			default:
				counts.Skipped++
			}
		case fatal(err):
			counts.Failed++
			stop = err
		default:
			counts.Failed++
			id := ""
			if ev.Subscription != nil {
				id = ev.Subscription.ID
			} else if ev.Customer != nil {
				id = ev.Customer.ID
			}
			*fails = append(*fails, failure(object, id, err))
		}
	}
	return stop
}

// applyCustomers decodes a page of customers and applies the ones not
// stored yet, or whose account hint can link them.
func (s *Syncer) applyCustomers(ctx context.Context, objs []listed, at time.Time, counts *Counts, fails *[]Failure) error {
	custs := make([]billing.Customer, 0, len(objs))
	ids := make([]string, 0, len(objs))
	for _, o := range objs {
		counts.Listed++
		if o.err != nil {
			counts.Failed++
			*fails = append(*fails, failure("customer", o.id, o.err))
			continue
		}
		custs = append(custs, o.cust)
		ids = append(ids, o.cust.ID)
	}
	stored, err := s.Store.CustomerStates(ctx, ids)
	if err != nil {
		return err
	}
	var evs []billing.Event
	for _, c := range custs {
		if cur, ok := stored[c.ID]; ok && customerUnchanged(cur, c) {
			counts.Unchanged++
			continue
		}
		evs = append(evs, customerEvent(c, at))
	}
	return s.applyEvents(ctx, "customer", evs, counts, fails)
}

// customerUnchanged: applying c would change nothing. A deleted customer
// stays deleted (Stripe cannot undelete), a linked one stays linked.
func customerUnchanged(cur billing.StoredCustomer, c billing.Customer) bool {
	if cur.Deleted {
		return true
	}
	return cur.Livemode != nil && *cur.Livemode == c.Livemode && !c.Deleted && (c.AccountHint == "" || cur.Linked)
}

func subscriptionEvent(sub billing.Subscription, at time.Time) billing.Event {
	return billing.Event{Type: webhooks.TypeSubscriptionUpdated, Created: at, Livemode: sub.Livemode, Subscription: &sub}
}

func customerEvent(c billing.Customer, at time.Time) billing.Event {
	typ := webhooks.TypeCustomerUpdated
	if c.Deleted {
		typ = webhooks.TypeCustomerDeleted
	}
	return billing.Event{Type: typ, Created: at, Livemode: c.Livemode, Customer: &c}
}
