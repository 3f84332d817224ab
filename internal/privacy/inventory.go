// Package privacy is billingd's data inventory as code: every table and
// column the schema holds, what kind of data it is, why it is kept and for
// how long, and what each outside processor receives. The inventory test
// compares it with the live schema after all migrations, so a column cannot
// be added, renamed or dropped without being described here.
//
// Adding a column? Add it to its table below, with a category and a purpose.
// If it does not fit identifier, billing_fact, operational or
// merchant_catalog (names the merchant gave its products), it probably
// holds personal data and does not belong in billingd.
package privacy

// Category says what kind of data a column holds. There is deliberately no
// category for personal data: billingd has none.
type Category string

// The categories a column may have.
const (
	// Identifier: an account, customer or subscription ID, or a random
	// surrogate reference that stands in for one.
	Identifier Category = "identifier"
	// BillingFact: a non-personal fact about a subscription or revenue:
	// status, amounts, currency, dates, price and product IDs.
	BillingFact Category = "billing_fact"
	// Operational: state billingd needs to run: event IDs, outbox and
	// audit state, token hashes, keys, timestamps of its own work.
	Operational Category = "operational"
	// MerchantCatalog: names the merchant gave its products and prices
	// (product names, price nicknames), for display. Typed by the merchant,
	// about its offer, never about a customer.
	MerchantCatalog Category = "merchant_catalog"
)

// Column is one column of a table.
type Column struct {
	Name     string   `json:"name"`
	Category Category `json:"category"`
	Purpose  string   `json:"purpose"`
}

// Table is one table billingd stores, with the retention of its rows.
type Table struct {
	Name      string `json:"name"`
	Purpose   string `json:"purpose"`
	Retention string `json:"retention"`
	OnErasure string `json:"on_erasure"` // what deleting an account does to its rows
	// Export is the section of the subject access export
	// (GET /v1/accounts/{account_id}/export) that holds this table's rows
	// about an account, or "-" with NotExported saying why none are.
	Export      string   `json:"export"`
	NotExported string   `json:"not_exported,omitempty"`
	Columns     []Column `json:"columns"`
}

// Tables returns the inventory of every table billingd stores, in schema
// order. golang-migrate's schema_migrations is bookkeeping, not data, and is
// left out. The result is a fresh copy; callers may change it.
func Tables() []Table {
	out := make([]Table, len(tables))
	for i, t := range tables {
		t.Columns = append([]Column(nil), t.Columns...)
		out[i] = t
	}
	return out
}

// Shorthands keep the table below readable.
const (
	id  = Identifier
	bf  = BillingFact
	ops = Operational
	cat = MerchantCatalog
)

var tables = []Table{
	{
		Name:        "stripe_events",
		Purpose:     "exactly-once processing: the IDs of Stripe events already applied",
		Retention:   "purged after WEBHOOK_EVENT_RETENTION_DAYS, never before Stripe's 3-day retry window",
		OnErasure:   "kept: rows hold no customer, subscription or account ID",
		Export:      "-",
		NotExported: "rows name no customer, subscription or account",
		Columns: []Column{
			{"event_id", ops, "Stripe event ID (evt_...), the idempotency key"},
			{"event_type", ops, "Stripe event type, e.g. customer.subscription.updated"},
			{"created", ops, "the event's creation time, which orders versions"},
			{"livemode", ops, "live or test mode event"},
			{"outcome", ops, "what billingd did with it: applied, stale, ignored, ..."},
			{"received_at", ops, "when billingd received it; drives retention"},
		},
	},
	{
		Name:      "customers",
		Purpose:   "the link between an app account and a Stripe customer",
		Retention: "until the account is erased (DELETE /v1/accounts/{account_id})",
		OnErasure: "deleted; an HMAC tombstone of the customer ID stops it being relinked",
		Export:    "customers",
		Columns: []Column{
			{"stripe_customer_id", id, "Stripe customer ID (cus_...)"},
			{"customer_ref", id, "random surrogate that stands in for the customer in history tables"},
			{"account_id", id, "the app's account ID this customer pays for"},
			{"linked_via", ops, "how the link was made: api, customer/subscription metadata, checkout"},
			{"linked_at", ops, "when the link was made"},
			{"livemode", bf, "live or test mode customer"},
			{"deleted", bf, "the customer was deleted in Stripe"},
			{"former_account_hmac", id, "after Stripe deleted the customer: HMAC (erasure key) of the account it was linked to, so erasing that account still finds it; never the ID"},
			{"version_at", ops, "time of the newest customer version applied (ordering)"},
			{"version_event", ops, "event ID of that version (ordering tie-break)"},
			{"created_at", ops, "row creation time"},
			{"updated_at", ops, "row update time"},
			{"test_clock_id", ops, "test mode only: the Stripe test clock (clock_...) the customer is on, whose simulated time judges its entitlement"},
		},
	},
	{
		Name:      "subscriptions",
		Purpose:   "current state of each subscription: entitlement and revenue",
		Retention: "while the customer row exists",
		OnErasure: "deleted with the customer row (ON DELETE CASCADE)",
		Export:    "subscriptions",
		Columns: []Column{
			{"stripe_subscription_id", id, "Stripe subscription ID (sub_...)"},
			{"subscription_ref", id, "random surrogate that stands in for the subscription in history tables"},
			{"stripe_customer_id", id, "the subscription's Stripe customer"},
			{"customer_ref", id, "the customer's surrogate reference"},
			{"livemode", bf, "live or test mode"},
			{"status", bf, "Stripe subscription status"},
			{"currency", bf, "ISO 4217 currency"},
			{"items", bf, "price/product IDs, quantities, unit amounts, intervals (billing.Item only)"},
			{"items_incomplete", bf, "the event listed only part of the items"},
			{"discounts", bf, "discount amounts, percentages and dates (billing.Discount only; no coupon names)"},
			{"mrr_minor", bf, "monthly recurring revenue in minor units"},
			{"mrr_fixed", bf, "MRR is fixed (false for metered or tiered prices)"},
			{"created", bf, "subscription creation date"},
			{"start_date", bf, "subscription start date"},
			{"current_period_start", bf, "current billing period start"},
			{"current_period_end", bf, "current billing period end"},
			{"trial_start", bf, "trial start"},
			{"trial_end", bf, "trial end"},
			{"cancel_at", bf, "scheduled cancellation date"},
			{"cancel_at_period_end", bf, "cancels at the end of the period"},
			{"canceled_at", bf, "when cancellation was requested"},
			{"ended_at", bf, "when the subscription ended"},
			{"collection_paused", bf, "payment collection is paused"},
			{"automatic_tax", bf, "Stripe Tax computes the tax (inclusive prices then count net of the invoiced tax)"},
			{"latest_invoice_status", bf, "status of the latest invoice (dunning)"},
			{"invoice_attempt_count", bf, "payment attempts on the latest invoice"},
			{"next_payment_attempt", bf, "next automatic payment attempt"},
			{"pending_update", bf, "Stripe's pending_update: its expiry and each item's price ID and quantity (the scheduled change)"},
			{"invoice_version_at", ops, "time of the newest invoice event applied (ordering)"},
			{"version_at", ops, "time of the current version (ordering)"},
			{"version_rank", ops, "lifecycle rank of the current version (ordering tie-break)"},
			{"version_event", ops, "event ID of the current version (ordering tie-break)"},
			{"updated_at", ops, "row update time"},
		},
	},
	{
		Name:      "pending_invoice_facts",
		Purpose:   "invoice facts (paid / payment failed) that arrived before their subscription, so delivery order cannot change the final state",
		Retention: "until the subscription's first version is written (same transaction folds them into subscriptions and deletes them); one that never arrives leaves them until the customer is erased",
		OnErasure: "deleted with the customer row (ON DELETE CASCADE)",
		// Usually gone within seconds, but a subscription that never arrives
		// leaves its row, Stripe IDs and all: held data, so exported.
		Export: "pending_invoice_facts",
		Columns: []Column{
			{"stripe_subscription_id", id, "Stripe subscription ID (sub_...) the invoice belongs to"},
			{"stripe_customer_id", id, "the invoice's Stripe customer"},
			{"latest_invoice_status", bf, "paid or payment_failed"},
			{"invoice_attempt_count", bf, "payment attempts so far"},
			{"next_payment_attempt", bf, "when Stripe retries the payment"},
			{"invoice_version_at", ops, "the invoice event's created time (ordering)"},
			{"received_at", ops, "when billingd received it"},
		},
	},
	{
		Name:      "subscription_versions",
		Purpose:   "state history of every subscription; movements and metrics are derived from it",
		Retention: "kept for revenue history",
		OnErasure: "kept, moved to fresh random references (one per customer, one per subscription); the link rows go, so nothing ties them to a Stripe ID, an account or a reference that ever left billingd",
		Export:    "subscription_history",
		Columns: []Column{
			{"id", ops, "row ID"},
			{"subscription_ref", id, "subscription surrogate reference"},
			{"customer_ref", id, "customer surrogate reference"},
			{"livemode", bf, "live or test mode"},
			{"status", bf, "Stripe subscription status"},
			{"currency", bf, "ISO 4217 currency"},
			{"items", bf, "price/product IDs, quantities, unit amounts, intervals (billing.Item only)"},
			{"discounts", bf, "discount amounts, percentages and dates (billing.Discount only)"},
			{"mrr_minor", bf, "monthly recurring revenue in minor units"},
			{"mrr_fixed", bf, "MRR is fixed"},
			{"current_period_start", bf, "billing period start"},
			{"current_period_end", bf, "billing period end"},
			{"trial_end", bf, "trial end"},
			{"cancel_at", bf, "scheduled cancellation date"},
			{"cancel_at_period_end", bf, "cancels at the end of the period"},
			{"ended_at", bf, "when the subscription ended"},
			{"automatic_tax", bf, "Stripe Tax computes the tax"},
			{"version_at", ops, "version time (ordering)"},
			{"version_rank", ops, "lifecycle rank (ordering tie-break)"},
			{"version_event", ops, "event ID of the version (ordering tie-break)"},
			{"recorded_at", ops, "when billingd recorded it"},
		},
	},
	{
		Name:      "customer_discount_versions",
		Purpose:   "history of each customer's own discount (coupon amounts only), which applies to its subscriptions without a discount of their own",
		Retention: "kept for revenue history, like subscription_versions",
		OnErasure: "kept, moved to fresh random references like subscription_versions; discount IDs replaced by their resolved amounts",
		Export:    "customer_discounts",
		Columns: []Column{
			{"customer_ref", id, "customer surrogate reference"},
			{"livemode", bf, "live or test mode"},
			{"version_at", ops, "version time (ordering)"},
			{"version_event", ops, "event ID of the version (ordering tie-break)"},
			{"discounts", bf, "discount amounts, percentages and dates (billing.Discount only; no coupon names)"},
			{"recorded_at", ops, "when billingd recorded it"},
		},
	},
	{
		Name:        "discount_resolutions",
		Purpose:     "coupon amounts of discounts that arrived as bare IDs, fetched once from Stripe",
		Retention:   "kept while history refers to the discount",
		OnErasure:   "deleted for the erased customers' discounts (their amounts are written into the re-keyed history first)",
		Export:      "-",
		NotExported: "rows name a discount, never a customer, subscription or account; the amounts appear in the subscription_history and customer_discounts sections",
		Columns: []Column{
			{"discount_id", id, "Stripe discount ID (di_...)"},
			{"percent_off_bp", bf, "percentage off in hundredths of a percent"},
			{"amount_off", bf, "amount off per invoice in minor units"},
			{"currency", bf, "currency of amount_off"},
			{"duration", bf, "once, repeating or forever"},
			{"start_at", bf, "discount start"},
			{"end_at", bf, "discount end"},
			{"resolved_at", ops, "when Stripe answered"},
		},
	},
	{
		Name:      "invoice_line_amounts",
		Purpose:   "paid subscription invoice lines (amounts and periods only): usage revenue of metered and tiered prices, and the tax share of tax-inclusive prices",
		Retention: "kept for revenue history; purged with the customer's revenue history (METRICS_RETENTION_DAYS)",
		OnErasure: "kept, moved to fresh random references like subscription_versions",
		Export:    "invoice_lines",
		Columns: []Column{
			{"customer_ref", id, "customer surrogate reference"},
			{"subscription_ref", id, "subscription surrogate reference (when the subscription was known)"},
			{"livemode", bf, "live or test mode"},
			{"currency", bf, "ISO 4217 currency"},
			{"price_id", bf, "Stripe price ID of the line"},
			{"usage_kind", bf, "fixed, metered, tiered or unknown"},
			{"period_start", bf, "billing period start of the line"},
			{"period_end", bf, "billing period end of the line"},
			{"amount_minor", bf, "amount paid, minor units"},
			{"net_minor", bf, "amount excluding tax, minor units"},
			{"paid_at", ops, "time of the invoice.paid event (ordering)"},
		},
	},
	{
		Name:        "catalog_products",
		Purpose:     "product names for display (\"Pro (yearly)\" instead of a price ID), from product.* events and backfill",
		Retention:   "kept while Stripe has the product; a deleted product keeps its row marked deleted, for history",
		OnErasure:   "kept: merchant catalog, about no customer or account",
		Export:      "-",
		NotExported: "rows are the merchant's catalog and name no customer, subscription or account",
		Columns: []Column{
			{"product_id", bf, "Stripe product ID"},
			{"livemode", bf, "live or test mode"},
			{"name", cat, "the product's name as the merchant typed it (clipped, control characters removed)"},
			{"active", bf, "the product is active"},
			{"deleted", bf, "the product was deleted in Stripe"},
			{"version_at", ops, "time of the newest version (ordering)"},
			{"version_event", ops, "event ID of that version (ordering tie-break)"},
			{"updated_at", ops, "row update time"},
		},
	},
	{
		Name:        "catalog_prices",
		Purpose:     "price nicknames and billing facts for display and for classifying invoice lines, from price.* events and backfill",
		Retention:   "kept while Stripe has the price; a deleted price keeps its row marked deleted, for history",
		OnErasure:   "kept: merchant catalog, about no customer or account",
		Export:      "-",
		NotExported: "rows are the merchant's catalog and name no customer, subscription or account",
		Columns: []Column{
			{"price_id", bf, "Stripe price ID"},
			{"livemode", bf, "live or test mode"},
			{"product_id", bf, "the price's product"},
			{"nickname", cat, "the price's nickname as the merchant typed it (clipped, control characters removed)"},
			{"currency", bf, "ISO 4217 currency"},
			{"unit_amount", bf, "unit amount in minor units"},
			{"interval", bf, "billing interval"},
			{"interval_count", bf, "intervals per billing period"},
			{"usage_type", bf, "licensed or metered"},
			{"billing_scheme", bf, "per_unit or tiered"},
			{"tax_behavior", bf, "inclusive, exclusive or unspecified"},
			{"active", bf, "the price is active"},
			{"deleted", bf, "the price was deleted in Stripe"},
			{"version_at", ops, "time of the newest version (ordering)"},
			{"version_event", ops, "event ID of that version (ordering tie-break)"},
			{"updated_at", ops, "row update time"},
		},
	},
	{
		Name:      "mrr_movements",
		Purpose:   "revenue ledger (new, expansion, contraction, churn, reactivation) for finance metrics",
		Retention: "kept for revenue history; re-derived from subscription_versions",
		OnErasure: "kept, moved to fresh random references like subscription_versions",
		Export:    "movements",
		Columns: []Column{
			{"id", ops, "row ID"},
			{"customer_ref", id, "customer surrogate reference"},
			{"subscription_ref", id, "subscription surrogate reference"},
			{"livemode", bf, "live or test mode"},
			{"currency", bf, "ISO 4217 currency"},
			{"effective_at", bf, "when the movement took effect"},
			{"kind", bf, "new, expansion, contraction, churn or reactivation"},
			{"delta_minor", bf, "MRR change in minor units"},
			{"customer_mrr_before", bf, "customer MRR before, minor units"},
			{"customer_mrr_after", bf, "customer MRR after, minor units"},
		},
	},
	{
		Name:      "subscription_activity",
		Purpose:   "active-subscription counts over time for finance metrics (+1/-1 as a subscription starts or stops contributing MRR)",
		Retention: "kept for revenue history; re-derived from subscription_versions with mrr_movements",
		OnErasure: "kept, moved to fresh random references like subscription_versions",
		// Derived, like movements, but still held about the account: Art. 15
		// covers everything held, so it is exported too.
		Export: "subscription_activity",
		Columns: []Column{
			{"id", ops, "row ID"},
			{"customer_ref", id, "customer surrogate reference"},
			{"subscription_ref", id, "subscription surrogate reference"},
			{"livemode", bf, "live or test mode"},
			{"currency", bf, "ISO 4217 currency"},
			{"effective_at", bf, "when the subscription started or stopped contributing MRR"},
			{"delta", bf, "+1 started, -1 stopped"},
		},
	},
	{
		Name:        "revenue_daily",
		Purpose:     "daily revenue rollup (sums of the ledger per mode, currency and day) so finance reports stay fast",
		Retention:   "kept for revenue history; recomputed by billingd metrics rebuild",
		OnErasure:   "kept: aggregates with no customer, subscription or account reference",
		Export:      "-",
		NotExported: "aggregates over all customers; no row is about one account",
		Columns: []Column{
			{"id", ops, "row ID"},
			{"livemode", bf, "live or test mode"},
			{"currency", bf, "ISO 4217 currency"},
			{"day", bf, "UTC day the changes took effect"},
			{"mrr_delta", bf, "net MRR change, minor units"},
			{"new_minor", bf, "new MRR, minor units"},
			{"expansion_minor", bf, "expansion MRR, minor units"},
			{"contraction_minor", bf, "contraction MRR, minor units"},
			{"churn_minor", bf, "churned MRR, minor units"},
			{"reactivation_minor", bf, "reactivation MRR, minor units"},
			{"paying_delta", bf, "change in paying customers"},
			{"churned_customers", bf, "customers churned"},
			{"active_delta", bf, "change in active subscriptions"},
		},
	},
	{
		Name:        "outbox",
		Purpose:     "durable queue of ProfitWell syncs, Stripe jobs and outbound app webhooks, written in the transaction that makes them",
		Retention:   "until delivered or dead (dead rows stay visible until retried); delivered ProfitWell rows are deleted after 24 h; ProfitWell payloads hold surrogate references and billing facts only",
		OnErasure:   "app webhook rows not yet delivered are deleted (delivered ones are deleted on delivery); ProfitWell rows kept (surrogate references only); an erasure's Stripe jobs (kind stripe) hold the one customer or subscription ID they act on until Stripe confirms, then the payload is replaced by {}",
		Export:      "-",
		NotExported: "a transient delivery queue: ProfitWell rows repeat billing facts the export already shows (subscription_history) under the same surrogate references; Stripe job rows exist only between an erasure and Stripe's confirmation",
		Columns: []Column{
			{"id", ops, "row ID (delivery order)"},
			{"kind", ops, "profitwell, stripe or app_webhook"},
			{"ordering_key", ops, "delivery-order key: kind plus the customer's surrogate customer_ref (never a Stripe ID); app webhooks: app: plus the MD5 of the account ID"},
			{"action", ops, "what to send: create, update, churn, ..."},
			{"payload", ops, "ProfitWell: surrogate customer_ref/subscription_ref (aliased with PROFITWELL_ALIAS_KEY only at send time) and billing facts (price ID, interval, currency, value, dates, churn type); app webhooks: the feed position only ({\"seq\": N})"},
			{"state", ops, "pending, sent or dead"},
			{"attempts", ops, "delivery attempts"},
			{"next_attempt_at", ops, "when to try next (backoff)"},
			{"last_status", ops, "HTTP status of the last attempt"},
			{"last_error", ops, "short error of the last attempt (no payload)"},
			{"created_at", ops, "row creation time"},
			{"sent_at", ops, "when it was delivered"},
		},
	},
	{
		Name:        "tombstones",
		Purpose:     "erasure is final: keyed hashes of erased Stripe IDs, so later events cannot relink them",
		Retention:   "forever (as long as the erasure keys exist: they stay in ERASURE_KEYS for good)",
		OnErasure:   "written",
		Export:      "-",
		NotExported: "written only once an account is erased, as keyed hashes of Stripe IDs; nothing links them to an account",
		Columns: []Column{
			{"subject_hmac", id, "HMAC of an erased customer or subscription ID under the erasure ring's first key (not reversible without the key)"},
			{"kind", ops, "customer or subscription"},
			{"deleted_at", ops, "when it was erased"},
		},
	},
	{
		Name:        "account_tombstones",
		Purpose:     "erasure is final for the account: keyed hashes of erased account IDs, so no hint (metadata, checkout reference) links anything to them again",
		Retention:   "forever (as long as the erasure keys exist)",
		OnErasure:   "written (and a reuse undone)",
		Export:      "-",
		NotExported: "a keyed hash of the account ID and two times: the erasure and any reuse, which the audit entries in the export already report",
		Columns: []Column{
			{"subject_hmac", id, "HMAC of an erased account ID (the same as audit_log.subject_hmac; not reversible without the key)"},
			{"erased_at", ops, "when it was (last) erased"},
			{"reused_at", ops, "when the app reused the erased ID on purpose (audited); hints still never link to it"},
		},
	},
	{
		Name:        "api_tokens",
		Purpose:     "authentication of the app backend and finance clients",
		Retention:   "until the operator deletes the token; revoked tokens keep their row for audit",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "about API clients, not accounts",
		Columns: []Column{
			{"id", ops, "token ID"},
			{"name", ops, "operator-chosen label (restricted to [A-Za-z0-9_.:-])"},
			{"scope", ops, "app or finance"},
			{"token_hash", ops, "SHA-256 of the token; the token itself is never stored"},
			{"created_at", ops, "creation time"},
			{"last_used_at", ops, "last successful use"},
			{"revoked_at", ops, "revocation time"},
		},
	},
	{
		Name:        "dashboard_sessions",
		Purpose:     "finance dashboard sign-ins, held server-side so signing out or revoking the token ends them",
		Retention:   "deleted at sign-out, with their token's revocation, and by the purge once past DASHBOARD_SESSION_TTL or DASHBOARD_SESSION_IDLE",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "about finance users of the dashboard, not accounts; no IP address or user agent is kept",
		Columns: []Column{
			{"session_hash", ops, "SHA-256 of the random session ID; the ID itself is only in the browser's cookie"},
			{"token_id", ops, "the finance token (api_tokens.id) that signed in"},
			{"created_at", ops, "sign-in time"},
			{"expires_at", ops, "lifetime cap (DASHBOARD_SESSION_TTL), never extended"},
			{"idle_expires_at", ops, "idle expiry (DASHBOARD_SESSION_IDLE), moved forward by use up to the cap"},
		},
	},
	{
		Name:      "audit_log",
		Purpose:   "accountability for links, erasures and token changes, without personal data",
		Retention: "kept for accountability",
		OnErasure: "kept: subjects are HMACs of the account ID, not the ID",
		Export:    "audit",
		Columns: []Column{
			{"id", ops, "row ID"},
			{"at", ops, "when"},
			{"actor", ops, "who: token name or command"},
			{"action", ops, "what: link, erase, token create, ..."},
			{"subject_hmac", id, "HMAC of the account ID concerned (erasure key)"},
			{"details", ops, "counts and enums about the action; no IDs, no free text"},
		},
	},
	{
		Name:        "instance_keys",
		Purpose:     "keys billingd generates for itself (the erasure and link signing HMAC keys) so replicas agree",
		Retention:   "for the life of the deployment",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "keys, not about accounts",
		Columns: []Column{
			{"name", ops, "key name"},
			{"key", ops, "key material (never logged or exported)"},
			{"created_at", ops, "creation time"},
		},
	},
	{
		Name:        "backfill_cursors",
		Purpose:     "resumable `billingd stripe backfill`: how far each Stripe list has been applied",
		Retention:   "deleted when a backfill run completes",
		OnErasure:   "not about accounts: creation times and counts, no Stripe or account IDs",
		Export:      "-",
		NotExported: "progress of an operator command; names no customer, subscription or account",
		Columns: []Column{
			{"list", ops, "customers or subscriptions"},
			{"created_lte", ops, "resume point: Stripe creation time of the oldest object applied"},
			{"done", ops, "the list is complete in this run"},
			{"objects", ops, "objects applied so far in this run"},
			{"started_at", ops, "when the run began"},
			{"updated_at", ops, "last progress"},
		},
	},
	{
		Name:        "backfill_partitions",
		Purpose:     "resumable, parallel `billingd stripe backfill`: each part of a Stripe list (a creation-time range) and how far it has been applied",
		Retention:   "deleted when a backfill run completes",
		OnErasure:   "not about accounts: creation times and counts, no Stripe or account IDs",
		Export:      "-",
		NotExported: "progress of an operator command; names no customer, subscription or account",
		Columns: []Column{
			{"list", ops, "customers or subscriptions"},
			{"part", ops, "the part's number in this run"},
			{"created_gte", ops, "the part's oldest Stripe creation time (open when empty)"},
			{"created_lte", ops, "resume point: Stripe creation time of the oldest object applied in the part (open when empty)"},
			{"done", ops, "the part is complete"},
			{"objects", ops, "objects applied so far in the part"},
			{"updated_at", ops, "last progress"},
		},
	},
	{
		Name:        "rate_slots",
		Purpose:     "fleet-wide spacing of requests to outside APIs (ProfitWell's 25 per 5 s holds across replicas)",
		Retention:   "one row per API, overwritten",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "a timestamp per outside API; names no customer, subscription or account",
		Columns: []Column{
			{"name", ops, "the API, e.g. profitwell"},
			{"next_at", ops, "earliest start of the next request"},
		},
	},
	{
		Name:        "cache_invalidations",
		Purpose:     "tells every replica's entitlement and token cache what changed, durably (no NOTIFY lock on the event path)",
		Retention:   "10 minutes (deleted by the replicas' cache pollers)",
		OnErasure:   "holds no account ID: a 16-bit bucket of it, gone within minutes",
		Export:      "-",
		NotExported: "a transaction ID and a 16-bit bucket; names no customer, subscription or account",
		Columns: []Column{
			{"id", ops, "row order"},
			{"xid", ops, "writing transaction, for the pollers' commit-safe window"},
			{"kind", ops, "account or token change"},
			{"bucket", ops, "16-bit hash bucket of the account ID (0 for tokens)"},
			{"at", ops, "when written, for the 10-minute purge"},
		},
	},
	{
		Name:        "entitlement_dirty",
		Purpose:     "the change feed's work queue: accounts whose entitlement may have changed, written in the changing transaction",
		Retention:   "until the feed producer's next pass (100 ms by default) consumes the row",
		OnErasure:   "deleted (the producer then writes nothing more about the account: it checks the account's tombstone)",
		Export:      "-",
		NotExported: "a transient work item naming only the account ID the requester already has; gone within a poll",
		Columns: []Column{
			{"id", ops, "row order"},
			{"account_id", id, "the app's account ID whose entitlement may have changed"},
		},
	},
	{
		Name:        "entitlement_feed_state",
		Purpose:     "one change feed entry per change of an answer: a hash of the answer last put in the feed, per account and mode",
		Retention:   "while the account exists",
		OnErasure:   "deleted",
		Export:      "-",
		NotExported: "a SHA-256 of the entitlement answer, which the entitlement endpoint and the export's subscriptions state in full",
		Columns: []Column{
			{"account_id", id, "the app's account ID"},
			{"livemode", bf, "live or test mode answer"},
			{"answer_hash", ops, "SHA-256 of the rendered entitlement answer last put in the feed"},
			{"recheck_at", bf, "when time alone changes the answer next (grace period or scheduled cancellation end)"},
		},
	},
	{
		Name:        "entitlement_changes",
		Purpose:     "the change feed (GET /v1/changes) and outbound app webhooks: each change of an account's entitlement answer",
		Retention:   "CHANGES_RETENTION (default 7 days)",
		OnErasure:   "deleted, with the account's undelivered app webhooks",
		Export:      "-",
		NotExported: "entitlement answers (entitled, status, plan, valid until) derived from the subscriptions the export holds; the app received them itself",
		Columns: []Column{
			{"seq", ops, "feed position (the cursor)"},
			{"account_id", id, "the app's account ID"},
			{"livemode", bf, "live or test mode answer"},
			{"at", ops, "when the feed recorded the change"},
			{"entitlement", bf, "the rendered entitlement answer (the entitlement endpoint's body: no personal data)"},
		},
	},
	{
		Name:        "entitlement_feed",
		Purpose:     "the change feed's purge horizon: cursors below it are expired (410 cursor_expired)",
		Retention:   "one row, for the life of the deployment",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "one number; names no customer, subscription or account",
		Columns: []Column{
			{"singleton", ops, "always true: the one row"},
			{"purged_through", ops, "highest feed position purged"},
		},
	},
	{
		Name:        "schema_compat",
		Purpose:     "safe rollbacks: per applied migration, the oldest binary (by the schema version it knows) that may still run against it",
		Retention:   "one row per migration, for the life of the deployment (the migrator's bookkeeping, like schema_migrations)",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "migration numbers; names no customer, subscription or account",
		Columns: []Column{
			{"version", ops, "migration version"},
			{"oldest_binary", ops, "oldest binary schema version compatible with it (0: any)"},
			{"recorded_at", ops, "when the applying binary recorded it"},
		},
	},
	{
		Name:        "key_fingerprints",
		Purpose:     "keys cannot change silently: fingerprints of the HMAC keys tombstones, audit subjects, ProfitWell aliases and link references were made with; billingd refuses to start without them",
		Retention:   "erasure keys for good; link keys until the operator forgets them (needed while their references are valid); the ProfitWell alias key until it is rotated on purpose",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "fingerprints of keys; names no customer, subscription or account",
		Columns: []Column{
			{"purpose", ops, "erasure, link_signing or profitwell_alias"},
			{"fingerprint", ops, "HMAC-SHA256(key, \"billingd key fingerprint\"), first 16 bytes in hex: names the key, never reveals it"},
			{"first_used_at", ops, "when the key first made something billingd depends on"},
			{"valid_until", ops, "link keys: the latest expiry of a reference signed through the API, plus an hour"},
			{"legacy_until", ops, "link keys: references of the form without expiry link until then (24 h after the upgrade)"},
		},
	},
	{
		Name:        "entitlement_catalog",
		Purpose:     "the features catalog: which product and price grants which feature and limit (the merchant's product description)",
		Retention:   "one row, replaced as a whole",
		OnErasure:   "not about accounts",
		Export:      "-",
		NotExported: "the merchant's catalog (feature keys and names, product and price IDs); names no customer, subscription or account",
		Columns: []Column{
			{"id", ops, "always 1: one catalog"},
			{"document", cat, "feature keys and names as the merchant typed them, product/price IDs and their grants (billing.Catalog only)"},
			{"updated_at", ops, "when it was last replaced"},
			{"updated_by", ops, "name of the token (or cli) that replaced it"},
		},
	},
	{
		Name:      "account_overrides",
		Purpose:   "per-account feature overrides for sales deals and support",
		Retention: "until deleted through the API or the account is erased",
		OnErasure: "deleted",
		Export:    "overrides",
		Columns: []Column{
			{"account_id", id, "the app's account ID"},
			{"features", bf, "feature keys and their grants (true, false, a limit, unlimited)"},
			{"expires_at", bf, "when the override stops applying"},
			{"created_at", ops, "row creation time"},
			{"updated_at", ops, "row update time"},
			{"updated_by", ops, "name of the token that set it (also in audit_log)"},
		},
	},
	{
		Name:      "stripe_entitlement_summaries",
		Purpose:   "Stripe Entitlements: each customer's active features by lookup key (the merchant's catalog)",
		Retention: "while the customer row exists",
		OnErasure: "deleted with the customer row (ON DELETE CASCADE)",
		Export:    "stripe_entitlement_summaries",
		Columns: []Column{
			{"stripe_customer_id", id, "the Stripe customer"},
			{"livemode", bf, "live or test mode"},
			{"lookup_keys", bf, "lookup keys of the active features (feature names are not kept)"},
			{"complete", ops, "false while the full list of a multi-page summary waits for its Stripe job"},
			{"version_at", ops, "time of the current version (ordering)"},
			{"version_event", ops, "event ID of the current version (ordering tie-break; empty for an API fetch)"},
			{"updated_at", ops, "row update time"},
		},
	},
	{
		Name:      "subscription_schedules",
		Purpose:   "scheduled changes: the phases of Stripe subscription schedules (no metadata, no descriptions)",
		Retention: "while the customer row exists",
		OnErasure: "deleted with the customer row (ON DELETE CASCADE)",
		Export:    "subscription_schedules",
		Columns: []Column{
			{"stripe_schedule_id", id, "Stripe subscription schedule ID (sub_sched_...)"},
			{"stripe_customer_id", id, "the schedule's Stripe customer"},
			{"stripe_subscription_id", id, "the subscription it drives, once started"},
			{"livemode", bf, "live or test mode"},
			{"status", bf, "schedule status"},
			{"end_behavior", bf, "release or cancel after the last phase"},
			{"phases", bf, "each phase's start, end, price IDs and quantities"},
			{"version_at", ops, "time of the current version (ordering)"},
			{"version_rank", ops, "lifecycle rank of the current version (ordering tie-break)"},
			{"version_event", ops, "event ID of the current version (ordering tie-break)"},
			{"updated_at", ops, "row update time"},
		},
	},
	{
		Name:        "stripe_sweep_cursors",
		Purpose:     "the missed-event sweeper (`billingd stripe sweep`, SWEEP_INTERVAL): per mode and group of event types, the newest Stripe event applied from the Events API",
		Retention:   "one row per mode and group of handled event types; rows of groups no longer handled are deleted by the next complete sweep",
		OnErasure:   "not about accounts: event IDs and types, no customer, subscription or account ID",
		Export:      "-",
		NotExported: "progress of a background job; names no customer, subscription or account",
		Columns: []Column{
			{"livemode", ops, "the mode of the API key the sweep read with"},
			{"event_types", ops, "the group's event types, sorted and comma-joined (one Events API filter, at most 20)"},
			{"event_id", ops, "the newest Stripe event applied (evt_...): the next sweep lists the events after it"},
			{"event_created", ops, "that event's creation: Stripe keeps events 30 days, older cursors restart from the window's start"},
			{"completed_at", ops, "when a sweep of the group last reached the newest event"},
			{"updated_at", ops, "last progress"},
		},
	},
	{
		Name:        "stripe_test_clocks",
		Purpose:     "test mode: each Stripe test clock's simulated time (test_helpers.test_clock.* events), at which the entitlement of its customers' subscriptions is judged",
		Retention:   "one row per test clock; a deleted clock's row stays (a few bytes; Stripe deletes its customers)",
		OnErasure:   "not about accounts: clock IDs and times; the customer's link to its clock goes with the customer row",
		Export:      "-",
		NotExported: "a test-mode simulation clock; names no customer, subscription or account (customers.test_clock_id is exported with the customer)",
		Columns: []Column{
			{"test_clock_id", ops, "Stripe test clock ID (clock_...); its name (free text) is never stored"},
			{"frozen_time", ops, "the clock's simulated time: the latest any of its events reported (clocks only move forward)"},
			{"status", ops, "ready, advancing, internal_failure or deleted, from the newest event"},
			{"version_at", ops, "creation time of the newest event applied (ordering)"},
			{"updated_at", ops, "row update time"},
		},
	},
}
