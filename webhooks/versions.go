package webhooks

import (
	"fmt"
	"regexp"

	"github.com/billingd/billingd/billing"
)

// API versions. A webhook payload follows its endpoint's API version, and
// an account's default moves when someone upgrades it, so billingd reads
// every version's shapes. The shapes it knows are those of the versions up
// to NewestKnownAPIVersion: the fixtures of apiversions_test.go are built
// from Stripe's published OpenAPI specifications and decode to the same
// facts in each. An event of a newer version whose needed fields decode
// as absent is refused with ErrDecodeIncomplete rather than stored with
// nulls: its shape may have moved them where this binary does not look.

// NewestKnownAPIVersion is the newest API version whose shapes billingd
// was checked against (stripe-mock v0.203.0's embedded specification).
const NewestKnownAPIVersion = "2026-08-26.dahlia"

var reAPIVersion = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})(\.[a-z]{1,20})?$`)

// knownAPIVersion reports whether billingd knows the shapes of version v:
// any version released up to NewestKnownAPIVersion. An event without
// api_version (test payloads, fetched objects) is read as known.
func knownAPIVersion(v string) bool {
	if v == "" {
		return true
	}
	m := reAPIVersion.FindStringSubmatch(v)
	return m != nil && m[1] <= NewestKnownAPIVersion[:10]
}

// versionLabel bounds an API version for error messages and logs.
func versionLabel(v string) string {
	if reAPIVersion.MatchString(v) {
		return v
	}
	return "unrecognised"
}

// incomplete returns ErrDecodeIncomplete naming the first needed field ev
// lacks, when its version's shapes are unknown; nil otherwise. Needed:
// a subscription's current period and items (entitlement and revenue), an
// invoice's subscription, a checkout session's customer, a schedule's
// phases (the active entitlement summary's list is checked by its decoder,
// which alone sees whether the list was there). In a known shape
// their absence means what it says (a one-off invoice, a guest checkout);
// in an unknown one it may mean the field moved.
func incomplete(ev billing.Event, version string) error {
	if knownAPIVersion(version) {
		return nil
	}
	missing := ""
	switch {
	case ev.Subscription != nil:
		s := ev.Subscription
		switch {
		case s.CurrentPeriodStart == nil || s.CurrentPeriodEnd == nil:
			missing = "subscription current period"
		case len(s.Items) == 0:
			missing = "subscription items"
		case s.Currency == "":
			missing = "subscription currency"
		}
	case ev.Invoice != nil && ev.Invoice.SubscriptionID == "":
		missing = "invoice subscription"
	case ev.Invoice != nil && ev.Invoice.CustomerID == "":
		missing = "invoice customer"
	case ev.Checkout != nil && ev.Checkout.CustomerID == "":
		missing = "checkout session customer"
	case ev.Schedule != nil:
		missing = schedulePhasesMissing(ev.Schedule)
	}
	if missing == "" {
		return nil
	}
	return incompleteField(missing, version)
}

// schedulePhasesMissing names what a schedule's phases lack, "" if
// nothing: every published shape gives a schedule at least one phase, each
// with its start, end and items, so in an unknown shape their absence
// means they moved, and storing the schedule would erase its scheduled
// change.
func schedulePhasesMissing(sc *billing.Schedule) string {
	if len(sc.Phases) == 0 {
		return "subscription schedule phases"
	}
	for _, p := range sc.Phases {
		switch {
		case p.Start == nil || p.End == nil:
			return "subscription schedule phase dates"
		case len(p.Items) == 0:
			return "subscription schedule phase items"
		}
	}
	return ""
}

// incompleteField is ErrDecodeIncomplete for a needed field absent from an
// event of an unknown API version.
func incompleteField(missing, version string) error {
	return fmt.Errorf("%w: %s absent in API version %s (newest known %s)", ErrDecodeIncomplete, missing, versionLabel(version), NewestKnownAPIVersion)
}
