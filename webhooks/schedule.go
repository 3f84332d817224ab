package webhooks

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/billingd/billingd/billing"
)

// The subscription_schedule.* events: each carries the schedule, whose
// phases give a subscription's scheduled change. A schedule's metadata,
// description, default_settings, phases' metadata and descriptions, and
// every other field are never read.
const (
	TypeScheduleCreated   = "subscription_schedule.created"
	TypeScheduleUpdated   = "subscription_schedule.updated"
	TypeScheduleReleased  = "subscription_schedule.released"
	TypeScheduleCanceled  = "subscription_schedule.canceled"
	TypeScheduleCompleted = "subscription_schedule.completed"
	TypeScheduleAborted   = "subscription_schedule.aborted"
	TypeScheduleExpiring  = "subscription_schedule.expiring"
	objectSchedule        = "subscription_schedule"
	// maxPhases bounds a schedule (Stripe allows 10 phases).
	maxPhases = 50
	// maxPhaseItems bounds a phase's items (Stripe allows 20).
	maxPhaseItems = 100
)

var reScheduleID = regexp.MustCompile(`^sub_sched_[A-Za-z0-9]{1,240}$`)

// rawSchedule is the whitelist of a subscription schedule.
type rawSchedule struct {
	ID           string     `json:"id"`
	Object       string     `json:"object"`
	Customer     ref        `json:"customer"`
	Subscription ref        `json:"subscription"`
	Livemode     bool       `json:"livemode"`
	Status       string     `json:"status"`
	EndBehavior  string     `json:"end_behavior"`
	Phases       []rawPhase `json:"phases"`
}

// rawPhase is the whitelist of a schedule phase.
type rawPhase struct {
	StartDate *int64         `json:"start_date"`
	EndDate   *int64         `json:"end_date"`
	Items     []rawPhaseItem `json:"items"`
}

// rawPhaseItem is a phase's (or a pending update's) item: its price (an
// ID or an expanded price) and quantity; the legacy plan when no price.
type rawPhaseItem struct {
	Price    ref    `json:"price"`
	Plan     ref    `json:"plan"`
	Quantity *int64 `json:"quantity"`
}

// scheduleObject decodes subscription_schedule.* events.
var scheduleObject = objectDecoder{
	union: func(o *rawObject, _ objectInput, ev billing.Event) (billing.Event, error) {
		sc, err := scheduleFromRaw(&rawSchedule{ID: o.ID, Object: o.Object, Customer: o.Customer, Subscription: o.Subscription,
			Livemode: o.Livemode, Status: o.Status, EndBehavior: o.EndBehavior, Phases: o.Phases})
		ev.Schedule = &sc
		return ev, err
	},
	exact: func(raw []byte, _ objectInput, ev billing.Event) (billing.Event, error) {
		var rs rawSchedule
		if err := json.Unmarshal(raw, &rs); err != nil {
			if oor := numberTooLarge(err); oor != nil {
				return ev, fmt.Errorf("subscription schedule: %w", oor)
			}
			return ev, fmt.Errorf("%w: subscription schedule: %w", billing.ErrInvalid, err)
		}
		sc, err := scheduleFromRaw(&rs)
		ev.Schedule = &sc
		return ev, err
	},
}

// scheduleFromRaw validates and converts a decoded schedule.
func scheduleFromRaw(rs *rawSchedule) (billing.Schedule, error) {
	if rs.Object != "" && rs.Object != objectSchedule {
		return billing.Schedule{}, invalid("object is not a subscription schedule")
	}
	if !reScheduleID.MatchString(rs.ID) {
		return billing.Schedule{}, invalid("subscription schedule id")
	}
	if !reCustomerID.MatchString(string(rs.Customer)) {
		return billing.Schedule{}, invalid("subscription schedule customer")
	}
	sc := billing.Schedule{ID: rs.ID, CustomerID: string(rs.Customer), Livemode: rs.Livemode,
		Status: billing.ScheduleStatus(rs.Status), EndBehavior: rs.EndBehavior}
	if sub := string(rs.Subscription); sub != "" {
		if !reSubscriptionID.MatchString(sub) {
			return billing.Schedule{}, invalid("subscription schedule subscription")
		}
		sc.SubscriptionID = sub
	}
	if !sc.Status.Valid() {
		return billing.Schedule{}, invalid("subscription schedule status")
	}
	switch sc.EndBehavior {
	case "release", "cancel", "none", "renew":
	case "":
		sc.EndBehavior = "release"
	default:
		return billing.Schedule{}, invalid("subscription schedule end_behavior")
	}
	if len(rs.Phases) > maxPhases {
		return billing.Schedule{}, outOfRange("subscription schedule phases")
	}
	sc.Phases = make([]billing.SchedulePhase, 0, len(rs.Phases))
	for _, rp := range rs.Phases {
		items, err := phaseItems(rp.Items, "subscription schedule phase")
		if err != nil {
			return billing.Schedule{}, err
		}
		sc.Phases = append(sc.Phases, billing.SchedulePhase{Start: unixPtr(rp.StartDate), End: unixPtr(rp.EndDate), Items: items})
	}
	return sc, nil
}

// phaseItems converts the items of a phase or pending update: price IDs
// (the plan's for legacy plans) and quantities (1 when absent, as Stripe
// bills it).
func phaseItems(ris []rawPhaseItem, what string) ([]billing.PhaseItem, error) {
	if len(ris) > maxPhaseItems {
		return nil, outOfRange(what + " items")
	}
	out := make([]billing.PhaseItem, 0, len(ris))
	for _, ri := range ris {
		price := string(ri.Price)
		if price == "" {
			price = string(ri.Plan)
		}
		if !reObjectID.MatchString(price) {
			return nil, invalid(what + " item price")
		}
		q := int64(1)
		if ri.Quantity != nil {
			q = *ri.Quantity
		}
		if q < 0 || q > billing.MaxLimit {
			return nil, outOfRange(what + " item quantity")
		}
		out = append(out, billing.PhaseItem{PriceID: price, Quantity: q})
	}
	return out, nil
}

// rawPendingUpdate is a subscription's pending_update: its expiry and
// items; billing_cycle_anchor and trial fields are not read.
type rawPendingUpdate struct {
	ExpiresAt         *int64         `json:"expires_at"`
	SubscriptionItems []rawPhaseItem `json:"subscription_items"`
}

// pendingFromRaw converts a pending_update (nil: none).
func pendingFromRaw(rp *rawPendingUpdate) (*billing.PendingUpdate, error) {
	if rp == nil {
		return nil, nil
	}
	items, err := phaseItems(rp.SubscriptionItems, "subscription pending_update")
	if err != nil {
		return nil, err
	}
	return &billing.PendingUpdate{ExpiresAt: unixPtr(rp.ExpiresAt), Items: items}, nil
}
