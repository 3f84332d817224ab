package webhooks

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/billingd/billingd/billing"
)

// Stripe test clocks (test mode only): test_helpers.test_clock.* events
// carry a clock's frozen_time, and customers and subscriptions on a clock
// carry its ID in test_clock. The clock's name (free text) and
// status_details are never read.

const objectTestClock = "test_helpers.test_clock"

var reTestClockID = regexp.MustCompile(`^clock_[A-Za-z0-9]{1,250}$`)

// testClockObject decodes test_helpers.test_clock.* events.
var testClockObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		return setTestClock(ev, in, &rawTestClock{ID: o.ID, Object: o.Object, Livemode: o.Livemode, Status: o.Status, FrozenTime: o.FrozenTime})
	},
	exact: func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
		var rc rawTestClock
		if err := json.Unmarshal(raw, &rc); err != nil {
			return ev, fmt.Errorf("%w: test clock: %w", billing.ErrInvalid, err)
		}
		return setTestClock(ev, in, &rc)
	},
}

// rawTestClock is the whitelist of a test clock object.
type rawTestClock struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Livemode   bool   `json:"livemode"`
	Status     string `json:"status"`
	FrozenTime *int64 `json:"frozen_time"`
}

// setTestClock validates a decoded clock and puts it into ev. A deleted
// clock's status is "deleted" whatever the object says; a live-mode clock
// does not exist in Stripe and is refused, so no simulated time can ever
// judge a live subscription.
func setTestClock(ev billing.Event, in objectInput, rc *rawTestClock) (billing.Event, error) {
	switch {
	case rc.Object != "" && rc.Object != objectTestClock:
		return ev, invalid("object is not a test clock")
	case !reTestClockID.MatchString(rc.ID):
		return ev, invalid("test clock id")
	case rc.Livemode:
		return ev, invalid("test clock in live mode")
	}
	ft := unixPtr(rc.FrozenTime)
	if ft == nil {
		return ev, invalid("test clock frozen_time")
	}
	c := &billing.TestClock{ID: rc.ID, FrozenTime: *ft, Status: billing.TestClockStatus(rc.Status)}
	switch {
	case in.eventType == TypeTestClockDeleted:
		c.Status = billing.TestClockDeleted
	case c.Status != billing.TestClockReady && c.Status != billing.TestClockAdvancing && c.Status != billing.TestClockInternalFailure:
		return ev, invalid("test clock status")
	}
	ev.TestClock = c
	return ev, nil
}

// testClockOf keeps an object's test_clock only in test mode and only when
// it has the shape of a clock ID.
func testClockOf(r ref, livemode bool) string {
	if livemode || !reTestClockID.MatchString(string(r)) {
		return ""
	}
	return string(r)
}
