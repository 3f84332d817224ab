package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Subscription schedules and Stripe Entitlements summaries: objects of a
// customer, each kept as its newest version (billing.VersionKey, the same
// order as subscriptions: event time, then a rank, then the event ID), on
// the customer row the batch locked. Both are deleted with the customer's
// row (ON DELETE CASCADE) when the account is erased.

// scheduleDoc is a schedule phase as the phases column stores it.
type scheduleDoc struct {
	Start *time.Time     `json:"start,omitempty"`
	End   *time.Time     `json:"end,omitempty"`
	Items []phaseItemDoc `json:"items"`
}

func toScheduleDocs(ps []billing.SchedulePhase) []scheduleDoc {
	out := make([]scheduleDoc, len(ps))
	for i, p := range ps {
		d := scheduleDoc{Start: p.Start, End: p.End, Items: make([]phaseItemDoc, len(p.Items))}
		for j, it := range p.Items {
			d.Items[j] = phaseItemDoc(it)
		}
		out[i] = d
	}
	return out
}

func fromScheduleDocs(ds []scheduleDoc) []billing.SchedulePhase {
	out := make([]billing.SchedulePhase, len(ds))
	for i, d := range ds {
		p := billing.SchedulePhase{Start: d.Start, End: d.End, Items: make([]billing.PhaseItem, len(d.Items))}
		for j, it := range d.Items {
			p.Items[j] = billing.PhaseItem(it)
		}
		out[i] = p
	}
	return out
}

const qUpsertSchedule = `
INSERT INTO subscription_schedules (stripe_schedule_id, stripe_customer_id, stripe_subscription_id, livemode, status,
    end_behavior, phases, version_at, version_rank, version_event)
VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (stripe_schedule_id) DO UPDATE SET
    stripe_subscription_id = EXCLUDED.stripe_subscription_id, livemode = EXCLUDED.livemode,
    status = EXCLUDED.status, end_behavior = EXCLUDED.end_behavior, phases = EXCLUDED.phases,
    version_at = EXCLUDED.version_at, version_rank = EXCLUDED.version_rank,
    version_event = EXCLUDED.version_event, updated_at = now()
WHERE subscription_schedules.stripe_customer_id = EXCLUDED.stripe_customer_id
  AND (subscription_schedules.version_at, subscription_schedules.version_rank, subscription_schedules.version_event COLLATE "C")
    < (EXCLUDED.version_at, EXCLUDED.version_rank, EXCLUDED.version_event COLLATE "C")
RETURNING 1`

// applySchedule handles subscription_schedule.* events: the schedule
// replaces the stored one when its version is newer (else
// OutcomeStale), and the customer's account is told.
func applySchedule(ctx context.Context, tx ptx, at time.Time, eventID string, sc *billing.Schedule, c *lockedCustomer) (billing.Outcome, error) {
	phases, err := json.Marshal(toScheduleDocs(sc.Phases))
	if err != nil {
		return "", fmt.Errorf("apply schedule: %w", err)
	}
	k := billing.ScheduleVersionKey(*sc, at, eventID)
	var one []int
	if err := sqlx.SelectContext(ctx, tx, &one, qUpsertSchedule, sc.ID, sc.CustomerID, sc.SubscriptionID, sc.Livemode,
		string(sc.Status), sc.EndBehavior, string(phases), k.At, k.Rank, k.Event); err != nil {
		return "", fmt.Errorf("apply schedule: %w", translate(err))
	}
	if len(one) == 0 {
		return billing.OutcomeStale, nil
	}
	if err := notifyAccountChange(ctx, tx, tx.changed, c.AccountID.String); err != nil {
		return "", fmt.Errorf("notify account change: %w", err)
	}
	return billing.OutcomeApplied, nil
}

const qUpsertSummary = `
INSERT INTO stripe_entitlement_summaries (stripe_customer_id, livemode, lookup_keys, complete, version_at, version_event)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (stripe_customer_id) DO UPDATE SET
    livemode = EXCLUDED.livemode, lookup_keys = EXCLUDED.lookup_keys, complete = EXCLUDED.complete,
    version_at = EXCLUDED.version_at, version_event = EXCLUDED.version_event, updated_at = now()
WHERE (stripe_entitlement_summaries.version_at, stripe_entitlement_summaries.complete,
       stripe_entitlement_summaries.version_event COLLATE "C")
    < (EXCLUDED.version_at, EXCLUDED.complete, EXCLUDED.version_event COLLATE "C")
RETURNING 1`

// StripeFetchEntitlements is the Stripe job action that fetches a
// customer's complete list of active entitlements (a summary event said
// there were more than one page) and applies it as an API fetch.
const StripeFetchEntitlements = "fetch_entitlements"

// Summaries are ordered by (time, complete, event ID): within one second
// a complete list beats a truncated one, so the list the fetch job reads
// (an API fetch, no event ID, versioned by Stripe's answer, which can fall
// in the second of the event that queued it) is never lost to that event.

// applySummary handles entitlements.active_entitlement_summary.updated
// (and the complete list fetched by the Stripe job, an API fetch). A
// summary whose list had more pages is stored as it came, marked
// incomplete (the answer says so), and a Stripe job is queued in the same
// transaction to fetch the whole list: features are never dropped.
func applySummary(ctx context.Context, tx ptx, at time.Time, eventID string, sum *billing.EntitlementSummary, c *lockedCustomer) (billing.Outcome, error) {
	keys := sum.Features
	if keys == nil {
		keys = []string{}
	}
	var one []int
	if err := sqlx.SelectContext(ctx, tx, &one, qUpsertSummary, sum.CustomerID, sum.Livemode, pq.Array(keys), sum.Complete,
		at, eventID); err != nil {
		return "", fmt.Errorf("apply entitlement summary: %w", translate(err))
	}
	if len(one) == 0 {
		return billing.OutcomeStale, nil
	}
	if !sum.Complete {
		if _, err := enqueueOutbox(ctx, tx.Tx, OutboxEntry{Kind: billing.OutboxStripe, OrderingKey: StripeJobOrderingKey(c.Ref),
			Action: StripeFetchEntitlements, Payload: billing.StripeJobPayload{CustomerID: sum.CustomerID}}); err != nil {
			return "", fmt.Errorf("queue entitlement fetch: %w", err)
		}
	}
	if err := notifyAccountChange(ctx, tx, tx.changed, c.AccountID.String); err != nil {
		return "", fmt.Errorf("notify account change: %w", err)
	}
	return billing.OutcomeApplied, nil
}
