package billing

import (
	"encoding/json"
	"time"
)

// AccountExport is everything billingd holds about one account, for a
// subject access request (GDPR Art. 15). Each record mirrors its table's
// columns one to one, under the column names, so the export can be checked
// against the data inventory: a column added to an exported table and
// missing here fails a test. An account billingd does not know has an
// export with every list empty.
type AccountExport struct {
	AccountID           string                   `json:"account_id"`
	GeneratedAt         time.Time                `json:"generated_at"`
	Customers           []ExportCustomer         `json:"customers"`
	Subscriptions       []ExportSubscription     `json:"subscriptions"`
	PendingInvoices     []ExportPendingInvoice   `json:"pending_invoice_facts"`
	SubscriptionHistory []ExportSubscriptionVer  `json:"subscription_history"`
	Movements           []ExportMovement         `json:"movements"`
	Activity            []ExportActivity         `json:"subscription_activity"`
	Audit               []ExportAuditEntry       `json:"audit"`
	CustomerDiscounts   []ExportCustomerDiscount `json:"customer_discounts"`
	InvoiceLines        []ExportInvoiceLine      `json:"invoice_lines"`
	// Entitlement features (issue 18): the account's override, its
	// customers' Stripe Entitlements summaries and subscription schedules.
	Overrides            []ExportOverride           `json:"overrides"`
	EntitlementSummaries []ExportEntitlementSummary `json:"stripe_entitlement_summaries"`
	Schedules            []ExportSchedule           `json:"subscription_schedules"`
}

// ExportCustomerDiscount is one row of customer_discount_versions: the
// customer's own discount (amounts only) from a time on.
type ExportCustomerDiscount struct {
	CustomerRef  string          `json:"customer_ref" db:"customer_ref"`
	Livemode     bool            `json:"livemode" db:"livemode"`
	VersionAt    time.Time       `json:"version_at" db:"version_at"`
	VersionEvent string          `json:"version_event" db:"version_event"`
	Discounts    json.RawMessage `json:"discounts" db:"discounts"`
	RecordedAt   time.Time       `json:"recorded_at" db:"recorded_at"`
}

// ExportInvoiceLine is one row of invoice_line_amounts: a paid
// subscription invoice line's amounts and period.
type ExportInvoiceLine struct {
	CustomerRef     string    `json:"customer_ref" db:"customer_ref"`
	SubscriptionRef *string   `json:"subscription_ref" db:"subscription_ref"`
	Livemode        bool      `json:"livemode" db:"livemode"`
	Currency        string    `json:"currency" db:"currency"`
	PriceID         string    `json:"price_id" db:"price_id"`
	UsageKind       string    `json:"usage_kind" db:"usage_kind"`
	PeriodStart     time.Time `json:"period_start" db:"period_start"`
	PeriodEnd       time.Time `json:"period_end" db:"period_end"`
	AmountMinor     int64     `json:"amount_minor" db:"amount_minor"`
	NetMinor        int64     `json:"net_minor" db:"net_minor"`
	PaidAt          time.Time `json:"paid_at" db:"paid_at"`
}

// Empty reports whether the export holds no record at all.
func (e AccountExport) Empty() bool {
	return len(e.Customers) == 0 && len(e.Subscriptions) == 0 && len(e.PendingInvoices) == 0 && len(e.SubscriptionHistory) == 0 &&
		len(e.Movements) == 0 && len(e.Activity) == 0 && len(e.Audit) == 0 && len(e.Overrides) == 0 &&
		len(e.EntitlementSummaries) == 0 && len(e.Schedules) == 0 && len(e.CustomerDiscounts) == 0 &&
		len(e.InvoiceLines) == 0
}

// ExportOverride is one row of account_overrides.
type ExportOverride struct {
	AccountID string          `json:"account_id" db:"account_id"`
	Features  json.RawMessage `json:"features" db:"features"`
	ExpiresAt *time.Time      `json:"expires_at" db:"expires_at"`
	CreatedAt time.Time       `json:"created_at" db:"created_at"`
	UpdatedAt time.Time       `json:"updated_at" db:"updated_at"`
	UpdatedBy string          `json:"updated_by" db:"updated_by"`
}

// ExportEntitlementSummary is one row of stripe_entitlement_summaries.
type ExportEntitlementSummary struct {
	StripeCustomerID string          `json:"stripe_customer_id" db:"stripe_customer_id"`
	Livemode         bool            `json:"livemode" db:"livemode"`
	LookupKeys       json.RawMessage `json:"lookup_keys" db:"lookup_keys"`
	Complete         bool            `json:"complete" db:"complete"`
	VersionAt        time.Time       `json:"version_at" db:"version_at"`
	VersionEvent     string          `json:"version_event" db:"version_event"`
	UpdatedAt        time.Time       `json:"updated_at" db:"updated_at"`
}

// ExportSchedule is one row of subscription_schedules.
type ExportSchedule struct {
	StripeScheduleID     string          `json:"stripe_schedule_id" db:"stripe_schedule_id"`
	StripeCustomerID     string          `json:"stripe_customer_id" db:"stripe_customer_id"`
	StripeSubscriptionID *string         `json:"stripe_subscription_id" db:"stripe_subscription_id"`
	Livemode             bool            `json:"livemode" db:"livemode"`
	Status               string          `json:"status" db:"status"`
	EndBehavior          string          `json:"end_behavior" db:"end_behavior"`
	Phases               json.RawMessage `json:"phases" db:"phases"`
	VersionAt            time.Time       `json:"version_at" db:"version_at"`
	VersionRank          int64           `json:"version_rank" db:"version_rank"`
	VersionEvent         string          `json:"version_event" db:"version_event"`
	UpdatedAt            time.Time       `json:"updated_at" db:"updated_at"`
}

// ExportCustomer is one row of customers: a link between the account and a
// Stripe customer.
type ExportCustomer struct {
	StripeCustomerID string     `json:"stripe_customer_id" db:"stripe_customer_id"`
	CustomerRef      string     `json:"customer_ref" db:"customer_ref"`
	AccountID        *string    `json:"account_id" db:"account_id"` // null once Stripe deleted the customer
	LinkedVia        *string    `json:"linked_via" db:"linked_via"`
	LinkedAt         *time.Time `json:"linked_at" db:"linked_at"`
	Livemode         *bool      `json:"livemode" db:"livemode"`
	Deleted          bool       `json:"deleted" db:"deleted"`
	VersionAt        *time.Time `json:"version_at" db:"version_at"`
	VersionEvent     *string    `json:"version_event" db:"version_event"`
	CreatedAt        time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at" db:"updated_at"`
	TestClockID      *string    `json:"test_clock_id" db:"test_clock_id"` // test mode: the Stripe test clock it is on
}

// ExportSubscription is one row of subscriptions: the current state of a
// subscription of one of the account's customers.
type ExportSubscription struct {
	StripeSubscriptionID string          `json:"stripe_subscription_id" db:"stripe_subscription_id"`
	SubscriptionRef      string          `json:"subscription_ref" db:"subscription_ref"`
	StripeCustomerID     string          `json:"stripe_customer_id" db:"stripe_customer_id"`
	CustomerRef          string          `json:"customer_ref" db:"customer_ref"`
	Livemode             bool            `json:"livemode" db:"livemode"`
	Status               string          `json:"status" db:"status"`
	Currency             string          `json:"currency" db:"currency"`
	Items                json.RawMessage `json:"items" db:"items"`
	ItemsIncomplete      bool            `json:"items_incomplete" db:"items_incomplete"`
	Discounts            json.RawMessage `json:"discounts" db:"discounts"`
	MRRMinor             int64           `json:"mrr_minor" db:"mrr_minor"`
	MRRFixed             bool            `json:"mrr_fixed" db:"mrr_fixed"`
	Created              *time.Time      `json:"created" db:"created"`
	StartDate            *time.Time      `json:"start_date" db:"start_date"`
	CurrentPeriodStart   *time.Time      `json:"current_period_start" db:"current_period_start"`
	CurrentPeriodEnd     *time.Time      `json:"current_period_end" db:"current_period_end"`
	TrialStart           *time.Time      `json:"trial_start" db:"trial_start"`
	TrialEnd             *time.Time      `json:"trial_end" db:"trial_end"`
	CancelAt             *time.Time      `json:"cancel_at" db:"cancel_at"`
	CancelAtPeriodEnd    bool            `json:"cancel_at_period_end" db:"cancel_at_period_end"`
	CanceledAt           *time.Time      `json:"canceled_at" db:"canceled_at"`
	EndedAt              *time.Time      `json:"ended_at" db:"ended_at"`
	CollectionPaused     bool            `json:"collection_paused" db:"collection_paused"`
	AutomaticTax         bool            `json:"automatic_tax" db:"automatic_tax"`
	LatestInvoiceStatus  *string         `json:"latest_invoice_status" db:"latest_invoice_status"`
	InvoiceAttemptCount  int64           `json:"invoice_attempt_count" db:"invoice_attempt_count"`
	NextPaymentAttempt   *time.Time      `json:"next_payment_attempt" db:"next_payment_attempt"`
	InvoiceVersionAt     *time.Time      `json:"invoice_version_at" db:"invoice_version_at"`
	PendingUpdate        json.RawMessage `json:"pending_update" db:"pending_update"`
	VersionAt            time.Time       `json:"version_at" db:"version_at"`
	VersionRank          int64           `json:"version_rank" db:"version_rank"`
	VersionEvent         string          `json:"version_event" db:"version_event"`
	UpdatedAt            time.Time       `json:"updated_at" db:"updated_at"`
}

// ExportPendingInvoice is one row of pending_invoice_facts for one of the
// account's customers: invoice facts waiting for a subscription billingd
// has not seen yet.
type ExportPendingInvoice struct {
	StripeSubscriptionID string     `json:"stripe_subscription_id" db:"stripe_subscription_id"`
	StripeCustomerID     string     `json:"stripe_customer_id" db:"stripe_customer_id"`
	LatestInvoiceStatus  string     `json:"latest_invoice_status" db:"latest_invoice_status"`
	InvoiceAttemptCount  int64      `json:"invoice_attempt_count" db:"invoice_attempt_count"`
	NextPaymentAttempt   *time.Time `json:"next_payment_attempt" db:"next_payment_attempt"`
	InvoiceVersionAt     time.Time  `json:"invoice_version_at" db:"invoice_version_at"`
	ReceivedAt           time.Time  `json:"received_at" db:"received_at"`
}

// ExportSubscriptionVer is one row of subscription_versions: a past state of
// one of the account's subscriptions, as recorded.
type ExportSubscriptionVer struct {
	ID                 int64           `json:"id" db:"id"`
	SubscriptionRef    string          `json:"subscription_ref" db:"subscription_ref"`
	CustomerRef        string          `json:"customer_ref" db:"customer_ref"`
	Livemode           bool            `json:"livemode" db:"livemode"`
	Status             string          `json:"status" db:"status"`
	Currency           string          `json:"currency" db:"currency"`
	Items              json.RawMessage `json:"items" db:"items"`
	Discounts          json.RawMessage `json:"discounts" db:"discounts"`
	MRRMinor           int64           `json:"mrr_minor" db:"mrr_minor"`
	MRRFixed           bool            `json:"mrr_fixed" db:"mrr_fixed"`
	CurrentPeriodStart *time.Time      `json:"current_period_start" db:"current_period_start"`
	CurrentPeriodEnd   *time.Time      `json:"current_period_end" db:"current_period_end"`
	TrialEnd           *time.Time      `json:"trial_end" db:"trial_end"`
	CancelAt           *time.Time      `json:"cancel_at" db:"cancel_at"`
	CancelAtPeriodEnd  bool            `json:"cancel_at_period_end" db:"cancel_at_period_end"`
	EndedAt            *time.Time      `json:"ended_at" db:"ended_at"`
	AutomaticTax       bool            `json:"automatic_tax" db:"automatic_tax"`
	VersionAt          time.Time       `json:"version_at" db:"version_at"`
	VersionRank        int64           `json:"version_rank" db:"version_rank"`
	VersionEvent       string          `json:"version_event" db:"version_event"`
	RecordedAt         time.Time       `json:"recorded_at" db:"recorded_at"`
}

// ExportMovement is one row of mrr_movements for one of the account's
// customers.
type ExportMovement struct {
	ID                int64     `json:"id" db:"id"`
	CustomerRef       string    `json:"customer_ref" db:"customer_ref"`
	SubscriptionRef   *string   `json:"subscription_ref" db:"subscription_ref"`
	Livemode          bool      `json:"livemode" db:"livemode"`
	Currency          string    `json:"currency" db:"currency"`
	EffectiveAt       time.Time `json:"effective_at" db:"effective_at"`
	Kind              string    `json:"kind" db:"kind"`
	DeltaMinor        int64     `json:"delta_minor" db:"delta_minor"`
	CustomerMRRBefore int64     `json:"customer_mrr_before" db:"customer_mrr_before"`
	CustomerMRRAfter  int64     `json:"customer_mrr_after" db:"customer_mrr_after"`
}

// ExportActivity is one row of subscription_activity for one of the
// account's customers: when a subscription started (+1) or stopped (-1)
// contributing MRR.
type ExportActivity struct {
	ID              int64     `json:"id" db:"id"`
	CustomerRef     string    `json:"customer_ref" db:"customer_ref"`
	SubscriptionRef string    `json:"subscription_ref" db:"subscription_ref"`
	Livemode        bool      `json:"livemode" db:"livemode"`
	Currency        string    `json:"currency" db:"currency"`
	EffectiveAt     time.Time `json:"effective_at" db:"effective_at"`
	Delta           int64     `json:"delta" db:"delta"`
}

// ExportAuditEntry is one row of audit_log whose subject is the account.
// subject_hmac is left out: it is the keyed hash the row was found by, and
// says nothing the account ID at the top does not.
type ExportAuditEntry struct {
	ID      int64           `json:"id" db:"id"`
	At      time.Time       `json:"at" db:"at"`
	Actor   string          `json:"actor" db:"actor"`
	Action  string          `json:"action" db:"action"`
	Details json.RawMessage `json:"details" db:"details"`
}
