package stripeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// EventQuery is one request to the Events API.
type EventQuery struct {
	// Types filters by event type: at most 20 (billing.SweepGroups).
	Types []string
	// After, when set, asks for the events just newer than this event
	// (Stripe's ending_before); otherwise the newest events created at or
	// after From, or with StartingAfter the ones just older than that.
	After         string
	From          time.Time
	StartingAfter string
}

// EventPage is one page of the Events API.
type EventPage struct {
	// Events are raw event envelopes, oldest first (Stripe lists newest
	// first; the page is turned round here).
	Events []json.RawMessage
	// HasMore: with After, newer events remain; otherwise older ones.
	HasMore bool
}

// EventsPage fetches one page of events, retrying rate limits as every
// read of this client does. The raw envelopes are what a webhook endpoint
// of the event's API version would have received.
func (c *Client) EventsPage(ctx context.Context, q EventQuery) (EventPage, error) {
	if len(q.Types) == 0 || len(q.Types) > 20 {
		return EventPage{}, fmt.Errorf("list events: %d types (1 to 20)", len(q.Types))
	}
	for attempt := 0; ; attempt++ {
		p := &stripe.EventListParams{ListParams: stripe.ListParams{Context: ctx, Limit: stripe.Int64(c.pageSize), Single: true}}
		p.Types = stripe.StringSlice(q.Types)
		switch {
		case q.After != "":
			p.EndingBefore = stripe.String(q.After)
		case q.StartingAfter != "":
			p.StartingAfter = stripe.String(q.StartingAfter)
		}
		if q.After == "" && !q.From.IsZero() {
			p.CreatedRange = &stripe.RangeQueryParams{GreaterThanOrEqual: q.From.Unix()}
		}
		it := c.api.Events.List(p)
		err := it.Err()
		if err == nil {
			return eventPage(it.List())
		}
		if !rateLimited(err) || attempt >= c.retries {
			return EventPage{}, readError("list events", err)
		}
		if err := c.sleep(ctx, attempt); err != nil {
			return EventPage{}, err
		}
	}
}

func eventPage(l stripe.ListContainer) (EventPage, error) {
	el, ok := l.(*stripe.EventList)
	if !ok || el.LastResponse == nil {
		return EventPage{}, errors.New("list events: page without a response")
	}
	var body struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.Unmarshal(el.LastResponse.RawJSON, &body); err != nil {
		return EventPage{}, fmt.Errorf("read events page: %w", err)
	}
	slices.Reverse(body.Data)
	return EventPage{Events: body.Data, HasMore: body.HasMore}, nil
}
