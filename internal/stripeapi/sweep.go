package stripeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/webhooks"
)

// The missed-event sweeper: Stripe keeps 30 days of events behind its
// Events API, whether or not a webhook endpoint received them. A sweep
// lists the event types billingd handles, oldest first, after the newest
// event the last sweep applied, and applies each through the webhook path
// (decode, then ApplyEvent), where event IDs deduplicate: an event a
// webhook delivered is a duplicate, one it never delivered is recovered.

// SweepOptions configures one sweep.
type SweepOptions struct {
	// Since, when positive, lists the events created in this last
	// duration (at most Stripe's 30 days) whatever the cursors say:
	// `billingd stripe sweep --since`, e.g. after fixing an endpoint.
	Since time.Duration
	// Lookback is how far a first sweep (no cursor yet) looks back;
	// default DefaultSweepLookback.
	Lookback time.Duration
	// Metrics, when set, counts recovered events as they are applied.
	Metrics *SweepMetrics
}

// DefaultSweepLookback is how far back a first sweep starts: Stripe's
// webhook retries span 3 days, so events older than that were either
// delivered or lost before billingd was watching. --since reaches further.
const DefaultSweepLookback = 72 * time.Hour

// sweepMargin keeps a restart point clear of the 30-day edge, where an
// event may vanish between two requests.
const sweepMargin = time.Hour

// SweepSummary is what one sweep did.
type SweepSummary struct {
	Listed    int // handled events Stripe listed
	Recovered int // applied now: no webhook had delivered them
	Delivered int // already recorded (a webhook delivered them): duplicates
	// Incomplete: events of an API shape whose needed fields decoded
	// absent: nothing applied (billingd_webhook_decode_incomplete_total).
	Incomplete int
	Failed     []Failure // events that can never be applied (invalid)
	// Gap: a cursor's event is older than Stripe keeps, so events between
	// it and the window's start may have been missed for good.
	Gap     bool
	Elapsed time.Duration
}

// Sweep lists and applies the events webhooks may have missed (see the
// package comment of this file). It holds the Stripe sync lock (ErrBusy
// when another backfill, reconcile or sweep holds it), saves its cursor
// after every page, so an interrupted sweep resumes, and keeps going past
// events that can never be applied (listed in the summary; the run then
// returns an error naming how many). A database outage stops the run.
func (s *Syncer) Sweep(ctx context.Context, opt SweepOptions) (SweepSummary, error) {
	var sum SweepSummary
	start := s.now()
	release, ok, err := s.Store.TryStripeSyncLock(ctx)
	if err != nil {
		return sum, err
	}
	if !ok {
		return sum, ErrBusy
	}
	defer release()
	if opt.Lookback <= 0 {
		opt.Lookback = DefaultSweepLookback
	}
	live := s.Client.Livemode()
	cursors, err := s.Store.SweepCursors(ctx, live)
	if err != nil {
		return sum, err
	}
	fallback := oldestPosition(cursors)
	groups := billing.SweepGroups(webhooks.HandledTypes())
	keys := make([]string, 0, len(groups))
	for _, g := range groups {
		key := billing.TypeGroupKey(g)
		keys = append(keys, key)
		var cur *billing.SweepCursor
		if c, ok := cursors[key]; ok {
			cur = &c
		}
		if err := s.sweepGroup(ctx, g, cur, fallback, opt, &sum); err != nil {
			sum.Elapsed = s.now().Sub(start)
			return sum, fmt.Errorf("sweep events (resumable: run it again): %w", err)
		}
	}
	if err := s.Store.DropSweepCursors(ctx, live, keys); err != nil {
		return sum, err
	}
	sum.Elapsed = s.now().Sub(start)
	s.log().Info("sweep done", "listed", sum.Listed, "recovered", sum.Recovered, "delivered", sum.Delivered,
		"incomplete", sum.Incomplete, "failed", len(sum.Failed), "gap", sum.Gap)
	if len(sum.Failed) > 0 {
		return sum, fmt.Errorf("sweep: %d events could not be applied (listed above); everything else was", len(sum.Failed))
	}
	return sum, nil
}

// oldestPosition is the oldest point any cursor of the mode reached: where
// a group without a cursor of its own (its types changed) starts, so no
// event of a newly handled type since the last sweep is skipped.
func oldestPosition(cursors map[string]billing.SweepCursor) *time.Time {
	var oldest *time.Time
	for _, c := range cursors {
		t := c.EventCreated
		if t == nil {
			t = c.CompletedAt
		}
		if t != nil && (oldest == nil || t.Before(*oldest)) {
			oldest = t
		}
	}
	return oldest
}

// sweepGroup sweeps one group of at most 20 event types: from its cursor
// when Stripe still has the cursor's event, else from the oldest page of
// the events created since the start time, then page by page towards the
// newest event.
func (s *Syncer) sweepGroup(ctx context.Context, types []string, cur *billing.SweepCursor, fallback *time.Time, opt SweepOptions, sum *SweepSummary) error {
	now := s.now()
	c := billing.SweepCursor{Livemode: s.Client.Livemode(), Types: billing.TypeGroupKey(types)}
	if cur != nil {
		c.EventID, c.EventCreated = cur.EventID, cur.EventCreated
		if cur.EventID == "" && cur.CompletedAt != nil {
			// A group that has seen no event yet continues from its last
			// complete sweep.
			fallback = cur.CompletedAt
		}
	}
	after, from, gap := billing.SweepStart(cur, fallback, opt.Since, opt.Lookback, sweepMargin, now)
	if gap {
		sum.Gap = true
		s.log().Warn("sweep: the last swept event is older than Stripe keeps events; events between it and the window's start may be lost for good (run stripe reconcile --fix)",
			"event_types", c.Types, "from", from.Format(time.RFC3339))
	}
	if after == "" {
		c.EventID, c.EventCreated = "", nil
		page, err := s.oldestPage(ctx, types, from)
		if err != nil {
			return err
		}
		if err := s.applyPage(ctx, page, &c, sum, opt.Metrics); err != nil {
			return err
		}
	}
	for c.EventID != "" {
		page, err := s.Client.EventsPage(ctx, EventQuery{Types: types, After: c.EventID})
		if err != nil {
			return err
		}
		if err := s.applyPage(ctx, page.Events, &c, sum, opt.Metrics); err != nil {
			return err
		}
		if !page.HasMore {
			break
		}
	}
	done := s.now().UTC()
	c.CompletedAt = &done
	return s.Store.SaveSweepCursor(ctx, c)
}

// oldestPage returns the oldest page of the events created at or after
// from, oldest first: Stripe lists newest first, so the pages before it
// are read for their last ID only. Their events are applied afterwards,
// in order, walking back up from the oldest page.
func (s *Syncer) oldestPage(ctx context.Context, types []string, from time.Time) ([]json.RawMessage, error) {
	var last []json.RawMessage
	q := EventQuery{Types: types, From: from}
	for {
		page, err := s.Client.EventsPage(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(page.Events) > 0 {
			last = page.Events
		}
		if !page.HasMore || len(page.Events) == 0 {
			return last, nil
		}
		q.StartingAfter = envelopeOf(page.Events[0]).ID
	}
}

// envelopeFields are the envelope fields the sweeper reads itself.
type envelopeFields struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
}

func envelopeOf(raw json.RawMessage) envelopeFields {
	var e envelopeFields
	_ = json.Unmarshal(raw, &e)
	return e
}

// applyPage applies a page's events oldest first and saves the cursor at
// its newest event.
func (s *Syncer) applyPage(ctx context.Context, events []json.RawMessage, c *billing.SweepCursor, sum *SweepSummary, m *SweepMetrics) error {
	if len(events) == 0 {
		return nil
	}
	for _, raw := range events {
		if err := s.sweepEvent(ctx, raw, sum, m); err != nil {
			return err
		}
	}
	newest := envelopeOf(events[len(events)-1])
	if newest.ID == "" || newest.Created <= 0 {
		return errors.New("list events: an event without id or created")
	}
	created := time.Unix(newest.Created, 0).UTC()
	c.EventID, c.EventCreated = newest.ID, &created
	return s.Store.SaveSweepCursor(ctx, *c)
}

// sweepEvent decodes and applies one listed event as the webhook handler
// would have.
func (s *Syncer) sweepEvent(ctx context.Context, raw json.RawMessage, sum *SweepSummary, m *SweepMetrics) error {
	ev, err := webhooks.DecodeEvent(raw, webhooks.DecodeOptions{Links: s.Links})
	switch {
	case errors.Is(err, webhooks.ErrUnhandled):
		return nil // not asked for; a type the fake or Stripe added
	case errors.Is(err, webhooks.ErrDecodeIncomplete):
		sum.Listed++
		sum.Incomplete++
		s.log().Warn("sweep: event of an API shape billingd does not know lacks a needed field: not applied",
			"stripe_event_id", ev.ID, "event_type", ev.Type, "err", err)
		return nil
	case err != nil:
		sum.Listed++
		id := envelopeOf(raw).ID
		sum.Failed = append(sum.Failed, failure("event", safeEventID(id), err))
		s.log().Warn("sweep: event cannot be applied", "stripe_event_id", safeEventID(id), "err", err)
		return nil
	}
	sum.Listed++
	out, err := s.Store.ApplyEvent(ctx, ev)
	if err != nil {
		if fatal(err) {
			return err
		}
		sum.Failed = append(sum.Failed, failure("event", ev.ID, err))
		s.log().Warn("sweep: event not applied", "stripe_event_id", ev.ID, "event_type", ev.Type, "err", err)
		return nil
	}
	if out == billing.OutcomeDuplicate {
		sum.Delivered++
		return nil
	}
	sum.Recovered++
	m.recover()
	s.log().Info("sweep recovered an event no webhook delivered", "stripe_event_id", ev.ID, "event_type", ev.Type, "outcome", string(out))
	return nil
}

// safeEventID keeps an ID only if it looks like one (it goes to logs).
func safeEventID(id string) string {
	if len(id) > 4 && len(id) <= 255 && id[:4] == "evt_" {
		for _, r := range id[4:] {
			if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return ""
			}
		}
		return id
	}
	return ""
}
