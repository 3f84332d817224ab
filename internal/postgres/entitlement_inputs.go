package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/billingd/billingd/billing"
)

// EntitlementInputs returns what an account's full entitlement answer is
// computed from in one mode, except the catalog (the entitlement cache
// keeps it in memory): its subscriptions, the live schedules of its
// customers, their Stripe Entitlements summaries and its override. Two
// queries; customers Stripe deleted have no account_id, so nothing of
// theirs is read.
func (s *Store) EntitlementInputs(ctx context.Context, accountID string, livemode bool) (billing.ResolveInput, error) {
	var in billing.ResolveInput
	subs, err := s.AccountSubscriptions(ctx, accountID, livemode)
	if err != nil {
		return in, err
	}
	in.Subscriptions = subs
	const q = `
SELECT
  (SELECT coalesce(json_agg(json_build_object('id', sc.stripe_schedule_id, 'sub', sc.stripe_subscription_id,
          'livemode', sc.livemode, 'status', sc.status, 'end_behavior', sc.end_behavior, 'phases', sc.phases)), '[]')
   FROM customers c JOIN subscription_schedules sc ON sc.stripe_customer_id = c.stripe_customer_id
   WHERE c.account_id = $1 AND sc.livemode = $2 AND sc.status IN ('not_started', 'active')) AS schedules,
  (SELECT coalesce(json_agg(json_build_object('keys', e.lookup_keys, 'complete', e.complete)), '[]')
   FROM customers c JOIN stripe_entitlement_summaries e ON e.stripe_customer_id = c.stripe_customer_id
   WHERE c.account_id = $1 AND e.livemode = $2) AS summaries,
  (SELECT json_build_object('features', o.features, 'expires_at', o.expires_at)
   FROM account_overrides o WHERE o.account_id = $1) AS override`
	var row struct {
		Schedules []byte `db:"schedules"`
		Summaries []byte `db:"summaries"`
		Override  []byte `db:"override"`
	}
	if err := s.db.GetContext(ctx, &row, q, accountID, livemode); err != nil {
		return in, fmt.Errorf("read entitlement inputs: %w", translate(err))
	}
	if in.Schedules, err = decodeSchedules(row.Schedules); err != nil {
		return in, err
	}
	var sums []struct {
		Keys     []string `json:"keys"`
		Complete bool     `json:"complete"`
	}
	if err := json.Unmarshal(row.Summaries, &sums); err != nil {
		return in, fmt.Errorf("read entitlement summaries: %w", err)
	}
	for _, sm := range sums {
		in.Summaries = append(in.Summaries, billing.EntitlementSummary{Livemode: livemode, Features: sm.Keys, Complete: sm.Complete})
	}
	if len(row.Override) > 0 {
		var o struct {
			Features  json.RawMessage `json:"features"`
			ExpiresAt *time.Time      `json:"expires_at"`
		}
		if err := json.Unmarshal(row.Override, &o); err != nil {
			return in, fmt.Errorf("read override: %w", err)
		}
		feats, err := decodeOverrideFeatures(o.Features)
		if err != nil {
			return in, err
		}
		in.Override = &billing.Override{AccountID: accountID, Features: feats, ExpiresAt: o.ExpiresAt}
	}
	return in, nil
}

// decodeSchedules reads a json_agg of schedule rows (EntitlementInputs,
// AccountBilling).
func decodeSchedules(raw []byte) ([]billing.Schedule, error) {
	var rows []struct {
		ID          string        `json:"id"`
		Sub         *string       `json:"sub"`
		Customer    string        `json:"customer"`
		Livemode    bool          `json:"livemode"`
		Status      string        `json:"status"`
		EndBehavior string        `json:"end_behavior"`
		Phases      []scheduleDoc `json:"phases"`
	}
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("read subscription schedules: %w", err)
	}
	out := make([]billing.Schedule, 0, len(rows))
	for _, r := range rows {
		sc := billing.Schedule{ID: r.ID, CustomerID: r.Customer, Livemode: r.Livemode, Status: billing.ScheduleStatus(r.Status),
			EndBehavior: r.EndBehavior, Phases: fromScheduleDocs(r.Phases)}
		if r.Sub != nil {
			sc.SubscriptionID = *r.Sub
		}
		out = append(out, sc)
	}
	return out, nil
}
