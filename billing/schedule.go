package billing

import "time"

// ScheduleStatus is a Stripe subscription schedule's status.
type ScheduleStatus string

// The schedule statuses Stripe documents.
const (
	ScheduleNotStarted ScheduleStatus = "not_started"
	ScheduleActive     ScheduleStatus = "active"
	ScheduleCompleted  ScheduleStatus = "completed"
	ScheduleReleased   ScheduleStatus = "released"
	ScheduleCanceled   ScheduleStatus = "canceled"
)

// Valid reports whether s is a status Stripe documents.
func (s ScheduleStatus) Valid() bool {
	switch s {
	case ScheduleNotStarted, ScheduleActive, ScheduleCompleted, ScheduleReleased, ScheduleCanceled:
		return true
	}
	return false
}

// SchedulePhase is one phase of a schedule: when it starts and ends and
// the price and quantity of each item. A phase's metadata, description and
// every other field are never read.
type SchedulePhase struct {
	Start *time.Time  `json:"start,omitempty"`
	End   *time.Time  `json:"end,omitempty"`
	Items []PhaseItem `json:"items"`
}

// Schedule is what billingd keeps of a Stripe subscription schedule
// (subscription_schedule.* events): IDs, status, end behaviour and phases.
type Schedule struct {
	ID             string
	CustomerID     string
	SubscriptionID string // empty until the schedule has started
	Livemode       bool
	Status         ScheduleStatus
	EndBehavior    string // release | cancel (none, renew: legacy)
	Phases         []SchedulePhase
}

// Subjects implements EventObject: the customer and, once started, the
// subscription, so an erased subscription's schedule is not stored again.
func (s *Schedule) Subjects() []string { return []string{s.CustomerID, s.SubscriptionID} }

// LinkHint implements EventObject: a schedule's metadata is never read, so
// it carries no hint.
func (s *Schedule) LinkHint() string { return "" }

// ScheduleRank orders versions of one schedule within the same second:
// further along its life wins, as StatusRank does for subscriptions.
func ScheduleRank(s ScheduleStatus) int {
	switch s {
	case ScheduleNotStarted:
		return 1
	case ScheduleActive:
		return 2
	case ScheduleReleased:
		return 3
	case ScheduleCompleted:
		return 4
	case ScheduleCanceled:
		return 5
	}
	return 0
}

// ScheduleVersionKey is the version key of s carried by an event created
// at `at` with ID eventID.
func ScheduleVersionKey(s Schedule, at time.Time, eventID string) VersionKey {
	return VersionKey{At: at, Rank: ScheduleRank(s.Status), Event: eventID}
}
