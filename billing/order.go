package billing

import (
	"cmp"
	"time"
)

// Ordering of versions (design invariant 2).
//
// Stripe delivers events late, twice and out of order, so every change to
// an object carries a version key and current state only ever moves to a
// greater key:
//
//  1. At: the event's created time (whole seconds), or for an object
//     fetched from the API the moment Stripe answered, which is newer than
//     any event already delivered about it.
//  2. Rank: within one second Stripe can send several changes of one
//     subscription (created and updated, updated and deleted). Their
//     created times tie, so the state further along the lifecycle wins:
//     incomplete < trialing < active < past_due < unpaid < paused <
//     incomplete_expired < canceled. A tie can therefore never resurrect a
//     canceled subscription or undo a failed payment; the rare real
//     backwards move within one second (past_due → active after a retry
//     succeeds) is settled by the next event or by reconcile.
//  3. Event: the event ID, a last resort that is arbitrary but the same on
//     every replica and in every delivery order. API fetches have none ("")
//     and lose such a tie to a delivered event.
//
// Late (stale) versions are still recorded in the state history, which
// metrics derive from; they just do not change current state.

// VersionKey orders the versions of one object.
type VersionKey struct {
	At    time.Time
	Rank  int
	Event string
}

// Compare returns -1, 0 or +1 as k is older than, the same as, or newer
// than o.
func (k VersionKey) Compare(o VersionKey) int {
	if c := k.At.Compare(o.At); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Rank, o.Rank); c != 0 {
		return c
	}
	return cmp.Compare(k.Event, o.Event)
}

// NewerThan reports whether k should replace current state keyed o.
func (k VersionKey) NewerThan(o VersionKey) bool { return k.Compare(o) > 0 }

// StatusRank is a status's place in the subscription lifecycle, the
// tie-break for versions of the same second. Unknown statuses rank first.
func StatusRank(s Status) int {
	switch s {
	case StatusIncomplete:
		return 1
	case StatusTrialing:
		return 2
	case StatusActive:
		return 3
	case StatusPastDue:
		return 4
	case StatusUnpaid:
		return 5
	case StatusPaused:
		return 6
	case StatusIncompleteExpired:
		return 7
	case StatusCanceled:
		return 8
	}
	return 0
}

// SubscriptionVersionKey is the version key of s as carried by an event
// created at `at` with ID eventID.
func SubscriptionVersionKey(s Subscription, at time.Time, eventID string) VersionKey {
	return VersionKey{At: at, Rank: StatusRank(s.Status), Event: eventID}
}

// InvoiceRank orders invoice facts of the same second: a payment that
// succeeded outranks one that failed, so a tie never reopens dunning.
func InvoiceRank(s InvoiceStatus) int {
	switch s {
	case InvoicePaymentFailed:
		return 1
	case InvoicePaid:
		return 2
	}
	return 0
}

// InvoiceFactsNewer reports whether invoice facts (status s at time at)
// replace the stored ones (status cur at time curAt; curAt nil: none yet).
// Ties go to the higher InvoiceRank, then to the higher attempt count.
func InvoiceFactsNewer(at time.Time, s InvoiceStatus, attempts int64, curAt *time.Time, cur InvoiceStatus, curAttempts int64) bool {
	if curAt == nil {
		return true
	}
	if c := at.Compare(*curAt); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(InvoiceRank(s), InvoiceRank(cur)); c != 0 {
		return c > 0
	}
	return attempts > curAttempts
}
