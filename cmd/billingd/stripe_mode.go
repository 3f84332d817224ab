package main

import (
	"context"
)

// recentEventsChecked is how many of the latest webhook events the key's
// mode is compared with.
const recentEventsChecked = 100

// modeName names a Stripe mode as the Dashboard does.
func modeName(live bool) string {
	if live {
		return "live"
	}
	return "test"
}

// warnStripeKeyMode logs a warning when STRIPE_API_KEY's mode (live or
// test) is not the mode of any of the latest webhook events: the Stripe
// jobs of erasures would then ask Stripe about objects of the other mode
// (404, counted as done) and reconcile would compare with the wrong
// account half. Checked at start (serve, stripe commands), where it costs
// one indexed read; a database with no events yet says nothing.
func (e *env) warnStripeKeyMode(ctx context.Context, st interface {
	RecentEventModes(ctx context.Context, n int) (int, int, error)
}) {
	if e.cfg.StripeAPIKey == "" {
		return
	}
	live, test, err := st.RecentEventModes(ctx, recentEventsChecked)
	if err != nil {
		e.log.Warn("could not compare STRIPE_API_KEY's mode with the recent webhook events", "err", err)
		return
	}
	keyLive := stripeKeyLive(e.cfg.StripeAPIKey)
	same, other := test, live
	if keyLive {
		same, other = live, test
	}
	if other > 0 && same == 0 {
		e.log.Warn("STRIPE_API_KEY's mode differs from the webhook events': check that the key and the webhook endpoint belong to the same mode",
			"key_mode", modeName(keyLive), "events_mode", modeName(!keyLive), "recent_events", other)
	}
}
