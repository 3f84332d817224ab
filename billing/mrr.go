package billing

// SubscriptionMRR is the monthly recurring revenue of s in minor units of
// s.Currency, per ../shared/docs/metrics.md (items × quantity after
// discounts, normalised to a month, rounded once half-even), and whether it
// is fixed (false when a metered or tiered item's amount is unknown ahead).
// Statuses that contribute nothing (trialing, incomplete, paused, canceled,
// unpaid, incomplete_expired) give 0.
//
// OWNER: issue 6 (metrics). Until that lands this reports 0.
func SubscriptionMRR(s Subscription) (minor int64, fixed bool) {
	return 0, true
}
