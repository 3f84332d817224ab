package webhooks

import (
	"strconv"
	"strings"
	"time"
)

// futureDated reports whether an event created at created is further
// ahead than tolerance: of this replica's clock and of the moment Stripe
// signed the delivery (the Stripe-Signature header's t=), whichever is
// later. Stripe signs an event after it created it, so a genuine delivery
// is never future-dated by this rule, even when this replica's clock runs
// behind Stripe's; a signed event from year 9999 is, and as a version it
// would outrank every genuine later one of its subscription for good (a
// real deletion answered "stale").
//
// Retrying cannot make such an event right, so it is acknowledged (200),
// counted (billingd_webhook_events_total{outcome="future_dated"}) and
// recorded by ID only (billing.Event.FutureDated).
func futureDated(created, now time.Time, sigHeader string, tolerance time.Duration) bool {
	ref := now
	if t, ok := signedAt(sigHeader); ok && t.After(ref) {
		ref = t
	}
	return created.Sub(ref) > tolerance
}

// signedAt reads the t= timestamp of a Stripe-Signature header
// ("t=1700000000,v1=...,v0=..."); ok is false when there is none.
func signedAt(header string) (time.Time, bool) {
	for header != "" {
		var part string
		part, header, _ = strings.Cut(header, ",")
		if v, found := strings.CutPrefix(strings.TrimSpace(part), "t="); found {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || n > maxUnix {
				return time.Time{}, false
			}
			return time.Unix(n, 0), true
		}
	}
	return time.Time{}, false
}
