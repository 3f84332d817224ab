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
		// already holds: nothing new leaves billingd.
		Receives: []Field{},
		Calls: []string{
			"receives webhooks from Stripe (signature-verified; only whitelisted fields are decoded)",
			"reads subscriptions and customers through the API (backfill, reconcile)",
			"cancels a subscription or deletes a customer when the app asks (its own IDs)",
		},
		Never: "anything billingd did not get from Stripe",
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
