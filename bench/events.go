package main

import (
	"encoding/json"
	"fmt"
	"time"
)

// benchEvents returns n customer.subscription.created events, each for its
// own customer and subscription (so the run measures throughput, not lock
// waits on one row), shaped like real 2023-10-16 payloads with two items, a
// discount and personal-looking metadata.
func benchEvents(tag string, n int) [][]byte {
	base := time.Now().Add(-time.Hour).Unix()
	out := make([][]byte, n)
	for i := range out {
		sub, cus := fmt.Sprintf("sub_%s%07d", tag, i), fmt.Sprintf("cus_%s%07d", tag, i)
		created := base + int64(i%3600)
		item := func(n int, price string, amount int) map[string]any {
			return map[string]any{
				"id": fmt.Sprintf("si_%s%07d%d", tag, i, n), "object": "subscription_item", "created": created,
				"quantity": 1 + i%5, "subscription": sub, "metadata": map[string]any{},
				"price": map[string]any{
					"id": price, "object": "price", "active": true, "billing_scheme": "per_unit", "created": base - 86400,
					"currency": "usd", "livemode": true, "lookup_key": nil, "metadata": map[string]any{}, "nickname": nil,
					"product": "prod_" + price[6:], "tax_behavior": "unspecified", "tiers_mode": nil, "transform_quantity": nil,
					"type": "recurring", "unit_amount": amount, "unit_amount_decimal": fmt.Sprint(amount),
					"recurring": map[string]any{"aggregate_usage": nil, "interval": "month", "interval_count": 1, "trial_period_days": nil, "usage_type": "licensed"},
				},
			}
		}
		obj := map[string]any{
			"id": sub, "object": "subscription", "application": nil, "billing_cycle_anchor": created,
			"cancel_at": nil, "cancel_at_period_end": false, "canceled_at": nil, "collection_method": "charge_automatically",
			"created": created, "currency": "usd", "current_period_start": created, "current_period_end": created + 30*86400,
			"customer": cus, "days_until_due": nil, "default_payment_method": "pm_1Bench" + fmt.Sprint(i),
			"description": "Seats for Ada Lovelace, 12 Analytical St", "discount": map[string]any{
				"id": "di_bench", "object": "discount", "coupon": map[string]any{"id": "LAUNCH20", "object": "coupon", "percent_off": 20.0, "amount_off": nil, "duration": "forever", "name": "Launch"},
				"start": created, "end": nil, "customer": cus, "subscription": sub,
			},
			"ended_at": nil, "items": map[string]any{"object": "list", "has_more": false, "total_count": 2,
				"url":  "/v1/subscription_items?subscription=" + sub,
				"data": []any{item(1, "price_seat", 1500), item(2, "price_support", 4900)}},
			"latest_invoice": "in_bench" + fmt.Sprint(i), "livemode": true,
			"metadata":         map[string]any{"account_id": fmt.Sprintf("acct_%s%07d", tag, i), "contact": "ada@example.com"},
			"pause_collection": nil, "start_date": created, "status": "active", "trial_end": nil, "trial_start": nil,
		}
		ev := map[string]any{
			"id": fmt.Sprintf("evt_%s%07d", tag, i), "object": "event", "api_version": "2023-10-16", "created": created,
			"data": map[string]any{"object": obj}, "livemode": true, "pending_webhooks": 1,
			"request": map[string]any{"id": nil, "idempotency_key": nil}, "type": "customer.subscription.created",
		}
		out[i], _ = json.Marshal(ev)
	}
	return out
}
