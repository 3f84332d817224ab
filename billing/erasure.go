package billing

// ErasureRequest asks to erase every link between an app account and
// Stripe (DELETE /v1/accounts/{account_id}).
type ErasureRequest struct {
	AccountID string
	// Actor names who asked, for the audit log: an API token's name or a
	// command. Never a person's name or address.
	Actor string
	// CancelSubscriptions cancels the account's live subscriptions in
	// Stripe, after the local erasure commits.
	CancelSubscriptions bool
	// DeleteCustomer deletes the account's customers in Stripe (which
	// cancels their subscriptions and makes Stripe erase its own copy).
	DeleteCustomer bool
	// EraseProfitWell asks ProfitWell to erase each customer's user and its
	// history, after the churns.
	EraseProfitWell bool
}

// ErasureResult counts what one erasure removed and queued. It holds no
// IDs: it is what the audit log keeps.
type ErasureResult struct {
	Customers       int `json:"customers"`
	Subscriptions   int `json:"subscriptions"`
	Tombstones      int `json:"tombstones"`
	ProfitWellChurn int `json:"profitwell_churns"`
	ProfitWellErase int `json:"profitwell_erasures"`
	StripeJobs      int `json:"stripe_jobs"`
}

// Stripe job actions (outbox rows of kind OutboxStripe). Their payload is a
// StripeJobPayload; it holds a Stripe ID only until Stripe confirms.
const (
	StripeCancelSubscription = "cancel_subscription"
	StripeDeleteCustomer     = "delete_customer"
	// StripeResolveDiscounts fetches the amounts of discounts that arrived
	// as bare IDs: the subscription (with its discounts expanded) when
	// SubscriptionID is set, else the coupon CouponID of the customer's
	// discount DiscountID.
	StripeResolveDiscounts = "resolve_discounts"
)

// StripeJobPayload is the payload of a Stripe job: the one Stripe object the
// call is about. It is scrubbed when the job completes.
type StripeJobPayload struct {
	CustomerID     string `json:"customer_id,omitempty"`
	SubscriptionID string `json:"subscription_id,omitempty"`
	CouponID       string `json:"coupon_id,omitempty"`
	DiscountID     string `json:"discount_id,omitempty"`
	Livemode       bool   `json:"livemode,omitempty"`
}

// SubscriptionLive reports whether a subscription in status s still runs in
// Stripe (can be cancelled, and has not churned in a revenue tracker).
func SubscriptionLive(s Status) bool {
	switch s {
	case StatusCanceled, StatusIncompleteExpired:
		return false
	}
	return true
}

// SyncLive reports whether a subscription in status s is live in a revenue
// tracker (created there and not churned): the subscriptions an erasure
// must churn there.
func SyncLive(s Status) bool { return phaseOf(s) == phaseLive }
