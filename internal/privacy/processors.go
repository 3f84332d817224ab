package privacy

// Field is one field billingd sends to a processor, and what goes in it.
type Field struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Processor is an outside service billingd talks to, and exactly what it
// receives from billingd.
type Processor struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Receives []Field  `json:"receives"`
	Calls    []string `json:"calls"`
	Never    string   `json:"never"`
}

// Processors returns what each processor receives. The ProfitWell fields
// are the contract in docs/profitwell-api.md; the ProfitWell fake in the
// tests fails on any request carrying an "@", a fixture personal string, a
// cus_ ID or an account ID. The result is a fresh copy.
func Processors() []Processor {
	out := make([]Processor, len(processors))
	for i, p := range processors {
		p.Receives = append([]Field(nil), p.Receives...)
		p.Calls = append([]string(nil), p.Calls...)
		out[i] = p
	}
	return out
}

var processors = []Processor{
	{
		Name: "Stripe",
		Role: "source of billing truth; holds the customer's personal and payment data, not billingd",
		// Deleting or cancelling names Stripe's own object IDs, which Stripe
		// already holds. The checkout and portal sessions the app asks for
		// send what the app put in its request and the account ID it links:
		// the fields below, nothing billingd stores beyond the account link.
		Receives: []Field{
			{"metadata[account_id]", "the app's account ID, on a Checkout Session the app asked for"},
			{"subscription_data[metadata][account_id]", "the same account ID, on the subscription the session creates"},
			{"client_reference_id", "a signed link reference: bdl1_<key ID>_<expiry>_<HMAC>_<account ID>"},
			{"customer_email", "only when the app passes one for prefill and no customer is reused; forwarded, never stored or logged"},
			{"customer", "Stripe's own customer ID, when one is reused (Checkout) or for the portal"},
			{"success_url", "the app's URL, within APP_URL_ALLOWLIST"},
			{"cancel_url", "the app's URL, within APP_URL_ALLOWLIST"},
			{"return_url", "the app's URL, within APP_URL_ALLOWLIST (portal)"},
			{"mode", "subscription"},
			{"line_items[0][price]", "the Stripe price ID the app asked for"},
			{"line_items[0][quantity]", "the quantity the app asked for"},
			{"subscription_data[trial_period_days]", "the trial the app asked for"},
			{"allow_promotion_codes", "true when the app asked for it"},
			{"configuration", "the portal configuration ID (bpc_...) the app asked for"},
			{"flow_data[type]", "the portal flow the app asked for"},
			{"flow_data[subscription_cancel][subscription]", "Stripe's own subscription ID (cancel flow)"},
			{"flow_data[subscription_update][subscription]", "Stripe's own subscription ID (update flow)"},
			{"flow_data[after_completion][type]", "redirect"},
			{"flow_data[after_completion][redirect][return_url]", "the app's return URL again"},
		},
		Calls: []string{
			"receives webhooks from Stripe (signature-verified; only whitelisted fields are decoded)",
			"reads subscriptions and customers through the API (backfill, reconcile)",
			"cancels a subscription or deletes a customer when the app asks (its own IDs)",
			"reads a price and creates Checkout and Billing Portal sessions when the app asks (POST /v1/checkout/sessions, /v1/billing_portal/sessions)",
		},
		Never: "anything billingd did not get from Stripe, except the app's own request fields above for the sessions it asks for",
	},
	{
		Name: "ProfitWell",
		Role: "revenue analytics, under pseudonymous aliases",
		Receives: []Field{
			{"user_alias", "HMAC-SHA256(PROFITWELL_ALIAS_KEY, customer_ref), hex, at most 36 characters"},
			{"subscription_alias", "HMAC-SHA256(PROFITWELL_ALIAS_KEY, subscription_ref), hex, at most 36 characters"},
			{"email", "the user alias again (the API requires the field; never an address)"},
			{"plan_id", "Stripe price or product ID"},
			{"plan_interval", "month or year"},
			{"plan_currency", "lowercase ISO 4217 currency"},
			{"status", "active or trialing"},
			{"value", "amount per billing period, minor units"},
			{"effective_date", "Unix seconds"},
			{"churn_type", "voluntary or delinquent (churn only)"},
		},
		Calls: []string{
			"POST /v2/subscriptions/ (create)",
			"PUT /v2/subscriptions/{subscription_alias}/ (plan or value change)",
			"DELETE /v2/subscriptions/{subscription_alias}/ (churn)",
			"PUT /v2/unchurn/{subscription_alias}/ (reactivation)",
			"DELETE /v2/users/{user_alias}/ (erasure)",
			"GET /v2/api-status/ (health)",
		},
		Never: "e-mail addresses, names, phones, addresses, Stripe customer IDs, account IDs, descriptions, metadata; billingd never calls /v2/customers/",
	},
}
