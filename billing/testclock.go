package billing

import "time"

// TestClockStatus is a Stripe test clock's status, or TestClockDeleted.
type TestClockStatus string

// The statuses of a test clock billingd records.
const (
	TestClockReady           TestClockStatus = "ready"
	TestClockAdvancing       TestClockStatus = "advancing"
	TestClockInternalFailure TestClockStatus = "internal_failure"
	TestClockDeleted         TestClockStatus = "deleted"
)

// TestClock is what a test_helpers.test_clock.* event tells: a test-mode
// clock's simulated time. Objects on a clock (its customers and their
// subscriptions) are judged at FrozenTime, not the wall clock's time, so a
// team can rehearse a year of renewals, trials and dunning in minutes. The
// clock's name is never read.
type TestClock struct {
	ID         string
	Livemode   bool
	FrozenTime time.Time
	Status     TestClockStatus
}

// Subjects implements EventObject: none. A clock is no customer or
// subscription; applying it locks no customer row and checks no tombstone.
func (c *TestClock) Subjects() []string { return nil }

// LinkHint implements EventObject: a clock names no account.
func (c *TestClock) LinkHint() string { return "" }

// JudgedAt is the time an account's subscription is judged at: its test
// clock's frozen time when its customer is on one, else now.
func (as AccountSubscription) JudgedAt(now time.Time) time.Time {
	if as.ClockTime != nil {
		return *as.ClockTime
	}
	return now
}
