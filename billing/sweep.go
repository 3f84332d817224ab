package billing

import (
	"slices"
	"strings"
	"time"
)

// Stripe's Events API keeps 30 days of events and filters a list by at
// most 20 types at once.
const (
	// EventRetention is how long Stripe keeps events behind its Events
	// API: a missed event older than this is lost for good.
	EventRetention = 30 * 24 * time.Hour
	// MaxEventTypesPerList is the Events API's limit on types[].
	MaxEventTypesPerList = 20
)

// SweepCursor is how far the missed-event sweeper has read one group of
// event types in one mode: the newest event it applied (the next sweep
// lists the events after it) and when a sweep of the group last reached
// the newest event.
type SweepCursor struct {
	Livemode bool
	// Types is the group's key: its event types, sorted, comma-joined.
	Types        string
	EventID      string     // "" before the first event
	EventCreated *time.Time // creation of EventID
	CompletedAt  *time.Time // nil until a sweep of the group completes
}

// SweepGroups splits event types into sorted groups of at most
// MaxEventTypesPerList, each one Events API filter, keyed by TypeGroupKey.
// The split depends only on the set of types, so cursors keep their keys
// from one sweep to the next while the handled types stay the same.
func SweepGroups(types []string) [][]string {
	s := slices.Clone(types)
	slices.Sort(s)
	s = slices.Compact(s)
	var out [][]string
	for len(s) > 0 {
		n := min(len(s), MaxEventTypesPerList)
		out = append(out, s[:n:n])
		s = s[n:]
	}
	return out
}

// TypeGroupKey is the cursor key of a group of event types.
func TypeGroupKey(group []string) string { return strings.Join(group, ",") }

// SweepStart decides where a group's sweep begins. With a cursor whose
// event Stripe still keeps (created after now - EventRetention + margin),
// it continues after that event (after != ""). Otherwise it lists events
// created at or after since: the caller's --since, else the oldest
// position any group of the mode reached (fallback, for a group whose
// types changed), else now - lookback. gap reports a cursor whose event
// Stripe no longer keeps: events may have been missed for good.
func SweepStart(c *SweepCursor, fallback *time.Time, since, lookback, margin time.Duration, now time.Time) (after string, from time.Time, gap bool) {
	oldest := now.Add(-EventRetention + margin)
	switch {
	case since > 0:
		return "", maxTime(now.Add(-since), oldest), false
	case c != nil && c.EventID != "" && c.EventCreated != nil && c.EventCreated.After(oldest):
		return c.EventID, time.Time{}, false
	case c != nil && c.EventID != "" && c.EventCreated != nil:
		return "", oldest, true
	case fallback != nil:
		return "", maxTime(*fallback, oldest), fallback.Before(oldest)
	}
	return "", maxTime(now.Add(-lookback), oldest), false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
