package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
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
	var row inputsRow
	if err := s.db.GetContext(ctx, &row, qEntitlementInputs, accountID, livemode); err != nil {
		return in, fmt.Errorf("read entitlement inputs: %w", translate(err))
	}
	if err := row.decode(&in, accountID, livemode); err != nil {
		return in, err
	}
	return in, nil
}

// inputsColumns selects the inputs besides subscriptions of the account
// named by the SQL expression account in the mode named by livemode:
// EntitlementInputs binds them to its parameters, the change feed
// (feedInputs) to each row of a list of accounts in both modes. One text,
// so the feed's answers are computed from exactly what the endpoint's are.
func inputsColumns(account, livemode string) string {
	return strings.NewReplacer("{account}", account, "{livemode}", livemode).Replace(`
  (SELECT coalesce(json_agg(json_build_object('id', sc.stripe_schedule_id, 'sub', sc.stripe_subscription_id,
          'livemode', sc.livemode, 'status', sc.status, 'end_behavior', sc.end_behavior, 'phases', sc.phases)), '[]')
   FROM customers c JOIN subscription_schedules sc ON sc.stripe_customer_id = c.stripe_customer_id
   WHERE c.account_id = {account} AND sc.livemode = {livemode} AND sc.status IN ('not_started', 'active')) AS schedules,
  (SELECT coalesce(json_agg(json_build_object('keys', e.lookup_keys, 'complete', e.complete)), '[]')
   FROM customers c JOIN stripe_entitlement_summaries e ON e.stripe_customer_id = c.stripe_customer_id
   WHERE c.account_id = {account} AND e.livemode = {livemode}) AS summaries,
  (SELECT json_build_object('features', o.features, 'expires_at', o.expires_at)
   FROM account_overrides o WHERE o.account_id = {account}) AS override`)
}

var (
	qEntitlementInputs = `SELECT` + inputsColumns("$1", "$2")
	// qFeedInputs: every account of $1 in both modes.
	qFeedInputs = `SELECT a.account_id, m.livemode,` + inputsColumns("a.account_id", "m.livemode") + `
FROM unnest($1::text[]) AS a(account_id) CROSS JOIN (VALUES (true), (false)) AS m(livemode)`
)

// inputsRow is a row of qEntitlementInputs or qFeedInputs.
type inputsRow struct {
	AccountID string `db:"account_id"` // qFeedInputs only
	Livemode  bool   `db:"livemode"`   // qFeedInputs only
	Schedules []byte `db:"schedules"`
	Summaries []byte `db:"summaries"`
	Override  []byte `db:"override"`
}

// decode adds the row's schedules, summaries and override to in.
func (row inputsRow) decode(in *billing.ResolveInput, accountID string, livemode bool) error {
	var err error
	if in.Schedules, err = decodeSchedules(row.Schedules); err != nil {
		return err
	}
	var sums []struct {
		Keys     []string `json:"keys"`
		Complete bool     `json:"complete"`
	}
	if err := json.Unmarshal(row.Summaries, &sums); err != nil {
		return fmt.Errorf("read entitlement summaries: %w", err)
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
			return fmt.Errorf("read override: %w", err)
		}
		feats, err := decodeOverrideFeatures(o.Features)
		if err != nil {
			return err
		}
		in.Override = &billing.Override{AccountID: accountID, Features: feats, ExpiresAt: o.ExpiresAt}
	}
	return nil
}

// feedInputs is EntitlementInputs for many accounts in both modes, in tx,
// with the catalog: the change feed's producer computes every answer from
// it with billing.ResolveEntitlement, as the entitlement cache does. Three
// queries, whatever the number of accounts.
func feedInputs(ctx context.Context, tx *sqlx.Tx, accounts []string) (map[feedKey]billing.ResolveInput, error) {
	rec, err := readCatalog(ctx, tx)
	if err != nil {
		return nil, err
	}
	var subRows []accountSubRow
	if err := tx.SelectContext(ctx, &subRows, qEntitlementSubs+`
WHERE c.account_id = ANY($1)`, pq.Array(accounts)); err != nil {
		return nil, fmt.Errorf("read feed account subscriptions: %w", translate(err))
	}
	var rows []inputsRow
	if err := tx.SelectContext(ctx, &rows, qFeedInputs, pq.Array(accounts)); err != nil {
		return nil, fmt.Errorf("read feed entitlement inputs: %w", translate(err))
	}
	out := make(map[feedKey]billing.ResolveInput, len(rows))
	for _, r := range rows {
		in := billing.ResolveInput{Catalog: &rec.Catalog}
		if err := r.decode(&in, r.AccountID, r.Livemode); err != nil {
			return nil, err
		}
		out[feedKey{r.AccountID, r.Livemode}] = in
	}
	for _, r := range subRows {
		as, err := r.toAccountSubscription()
		if err != nil {
			return nil, fmt.Errorf("read feed account subscriptions: %w", err)
		}
		k := feedKey{r.AccountID, r.Livemode}
		in := out[k]
		in.Subscriptions = append(in.Subscriptions, as)
		out[k] = in
	}
	return out, nil
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
