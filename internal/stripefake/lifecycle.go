package stripefake

import (
	"fmt"
	"time"
)

// SimEvent is one webhook event of a simulated life cycle, ready to sign.
type SimEvent struct {
	ID      string
	Type    string
	Created time.Time
	Payload []byte
}

// SimOutcome is where one simulated customer's subscription ends up.
type SimOutcome struct {
	AccountID      string
	CustomerID     string
	SubscriptionID string
	Status         string
	PriceID        string
	Quantity       int64
	UnitAmount     int64 // per month, minor units (every simulated price is monthly)
	// Features are the Stripe Entitlements lookup keys the customer's
	// summary event lists (none once canceled).
	Features []string
	// ScheduledPlan is the price a subscription schedule moves the
	// subscription to in ten days ("" for none): the downgrade demo.
	ScheduledPlan string
}

// SimCatalog is the features catalog `billingd simulate --token` applies
// (PUT /v1/catalog) before sending events: limits from the plans, seats
// from the quantity.
const SimCatalog = `{"features": {"projects": {"name": "Projects"}, "seats": {"name": "Seats"}, "sso": {"name": "Single sign-on"}},
 "products": {"prod_sim_app": {"projects": 10, "seats": {"per_unit": 1}}},
 "prices": {"price_sim_pro": {"projects": 100, "sso": true}}}`

// The simulated plans: monthly prices in EUR cents.
const (
	SimPriceStarter = "price_sim_starter"
	SimPricePro     = "price_sim_pro"
	simStarter      = 1900
	simPro          = 4900
)

// Lifecycle returns a realistic stream of webhook events for n fake
// customers (full of the fake personal data), in delivery order, and the
// state each one ends in. Customers cycle through six stories: trial that
// converts, upgrade to Pro, seats added, payment failing (past_due),
// cancellation, and a trial that lapses. Every event is created before
// now (the stream starts 45 days back), so history and revenue movements
// spread over the last weeks.
func Lifecycle(n int, now time.Time) ([]SimEvent, []SimOutcome, error) {
	var events []SimEvent
	var outcomes []SimOutcome
	start := now.UTC().Truncate(time.Second).Add(-45 * 24 * time.Hour)
	seq := 0
	for i := range n {
		t0 := start.Add(time.Duration(i) * 7 * time.Minute)
		day := func(d int) time.Time { return t0.Add(time.Duration(d) * 24 * time.Hour) }
		c := Customer{ID: fmt.Sprintf("cus_Sim%05d", i), Created: t0, AccountID: fmt.Sprintf("acct_sim_%05d", i)}
		s := Subscription{
			ID: fmt.Sprintf("sub_Sim%05d", i), CustomerID: c.ID, Status: "active", Created: t0, Currency: "eur",
			PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0), AccountID: c.AccountID,
			Items: []Item{{PriceID: SimPriceStarter, ProductID: "prod_sim_app", UnitAmount: simStarter, Interval: "month", Quantity: 1}},
		}
		if i%2 == 1 {
			s.APIVersion = Version20250331
		}
		emit := func(typ string, at time.Time, obj map[string]any) error {
			seq++
			id := fmt.Sprintf("evt_sim%05d%04d", i, seq)
			b, err := Event(id, typ, at, false, obj)
			if err != nil {
				return err
			}
			events = append(events, SimEvent{ID: id, Type: typ, Created: at, Payload: b})
			return nil
		}
		sub := func(typ string, at time.Time) error { return emit(typ, at, s.JSON(&c)) }
		invoice := func(typ string, at time.Time, attempts int64) error {
			return emit(typ, at, invoiceJSON(fmt.Sprintf("in_sim%05d%04d", i, seq), s, at, attempts, typ == "invoice.paid"))
		}
		err := func() error {
			if err := emit("customer.created", t0, c.JSON()); err != nil {
				return err
			}
			trial := i%6 == 0 || i%6 == 5
			if trial {
				end := day(14)
				s.Status, s.TrialStart, s.TrialEnd = "trialing", &t0, &end
				s.PeriodEnd = end
			}
			if err := sub("customer.subscription.created", t0.Add(time.Second)); err != nil {
				return err
			}
			if !trial {
				if err := invoice("invoice.paid", t0.Add(2*time.Second), 1); err != nil {
					return err
				}
			}
			switch i % 6 {
			case 0: // trial converts
				s.Status, s.PeriodStart, s.PeriodEnd = "active", day(14), day(14).AddDate(0, 1, 0)
				if err := sub("customer.subscription.updated", day(14)); err != nil {
					return err
				}
				return invoice("invoice.paid", day(14).Add(time.Second), 1)
			case 1: // upgrade to Pro
				s.Items[0].PriceID, s.Items[0].UnitAmount = SimPricePro, simPro
				return sub("customer.subscription.updated", day(20))
			case 2: // two seats added
				s.Items[0].Quantity = 3
				return sub("customer.subscription.updated", day(10))
			case 3: // renewal payment fails
				if err := invoice("invoice.payment_failed", day(30), 1); err != nil {
					return err
				}
				s.Status = "past_due"
				return sub("customer.subscription.updated", day(30).Add(time.Second))
			case 4: // cancels
				ended := day(25)
				s.Status, s.CanceledAt, s.EndedAt = "canceled", &ended, &ended
				return sub("customer.subscription.deleted", ended)
			default: // trial lapses without a payment method
				ended := day(14)
				s.Status, s.CanceledAt, s.EndedAt = "canceled", &ended, &ended
				return sub("customer.subscription.deleted", ended)
			}
		}()
		if err != nil {
			return nil, nil, err
		}
		it := s.Items[0]
		o := SimOutcome{AccountID: c.AccountID, CustomerID: c.ID, SubscriptionID: s.ID,
			Status: s.Status, PriceID: it.PriceID, Quantity: it.Quantity, UnitAmount: it.UnitAmount}
		last := events[len(events)-1].Created
		// Stripe Entitlements: the features of the customer's plan, as its
		// summary event lists them.
		if s.Status != "canceled" {
			o.Features = []string{"api_access"}
			if it.PriceID == SimPricePro {
				o.Features = append(o.Features, "priority_support")
			}
		}
		if err := emit("entitlements.active_entitlement_summary.updated", last.Add(time.Second), summaryJSON(c.ID, o.Features)); err != nil {
			return nil, nil, err
		}
		// The upgrade to Pro is scheduled to go back to Starter in ten days.
		if i%6 == 1 {
			next := now.UTC().Truncate(time.Second).Add(10 * 24 * time.Hour)
			if err := emit("subscription_schedule.created", last.Add(2*time.Second), scheduleJSON(i, s, last, next)); err != nil {
				return nil, nil, err
			}
			o.ScheduledPlan = SimPriceStarter
		}
		outcomes = append(outcomes, o)
	}
	return events, outcomes, nil
}

// invoiceJSON renders an invoice of s, with the personal fields Stripe
// copies onto invoices.
func invoiceJSON(id string, s Subscription, at time.Time, attempts int64, paid bool) map[string]any {
	var next any
	if !paid {
		next = at.Add(72 * time.Hour).Unix()
	}
	return map[string]any{
		"id": id, "object": "invoice", "customer": s.CustomerID, "subscription": s.ID, "livemode": s.Livemode,
		"status": map[bool]string{true: "paid", false: "open"}[paid], "paid": paid, "attempt_count": attempts,
		"next_payment_attempt": next, "created": at.Unix(), "currency": s.Currency,
		"amount_due":     s.Items[0].UnitAmount * s.Items[0].Quantity,
		"customer_email": PersonalEmail, "customer_name": PersonalName, "customer_phone": PersonalPhone,
		"customer_address": address(), "customer_tax_ids": []any{map[string]any{"type": "gb_vat", "value": PersonalTaxID}},
		"description": PersonalDescription,
		"parent":      map[string]any{"type": "subscription_details", "subscription_details": map[string]any{"subscription": s.ID}},
	}
}

// summaryJSON is an entitlements.active_entitlement_summary with the
// customer's active features, one page.
func summaryJSON(customerID string, keys []string) map[string]any {
	data := []any{}
	for i, k := range keys {
		data = append(data, activeEntitlement(customerID, i, k, false))
	}
	return map[string]any{
		"object": "entitlements.active_entitlement_summary", "customer": customerID, "livemode": false,
		"entitlements": map[string]any{"object": "list", "data": data, "has_more": false, "url": "/v1/customer/" + customerID + "/entitlements"},
	}
}

// scheduleJSON is a subscription schedule that keeps s's current plan
// until next, then moves it to Starter: a scheduled downgrade. Its
// metadata and descriptions hold the fake personal data a merchant may put
// there.
func scheduleJSON(i int, s Subscription, from, next time.Time) map[string]any {
	it := s.Items[0]
	return map[string]any{
		"id": fmt.Sprintf("sub_sched_Sim%05d", i), "object": "subscription_schedule", "customer": s.CustomerID,
		"subscription": s.ID, "livemode": false, "status": "active", "end_behavior": "release", "created": from.Unix(),
		"metadata": metadata(s.AccountID), "current_phase": map[string]any{"start_date": from.Unix(), "end_date": next.Unix()},
		"default_settings": map[string]any{"description": PersonalDescription},
		"phases": []any{
			map[string]any{"start_date": from.Unix(), "end_date": next.Unix(), "description": PersonalDescription,
				"items": []any{map[string]any{"price": it.PriceID, "quantity": it.Quantity}}},
			map[string]any{"start_date": next.Unix(), "end_date": next.AddDate(0, 1, 0).Unix(), "metadata": metadata(s.AccountID),
				"items": []any{map[string]any{"price": SimPriceStarter, "quantity": it.Quantity}}},
		},
	}
}
