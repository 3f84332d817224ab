package billing

import "math/big"

// Reports never fail on what is stored. Decoders refuse amounts Stripe
// would never send (webhooks/limits.go), but a ledger may hold older
// values, or sums of many large ones, beyond int64 or beyond what a JSON
// client reads exactly. Stores sum in arbitrary precision (numeric) and
// clamp here; a clamped figure says so (Clamped) instead of failing the
// report of its currency, or silently wrapping around.

// MaxReportAmount is the largest magnitude a report shows, in minor units:
// 2^53 − 1, the largest integer a JSON number keeps exactly in JavaScript
// (the dashboard) and in most JSON decoders, 90 trillion units of any
// currency. Every figure derived from a few clamped amounts (ARR is 12 ×
// MRR, net new a sum of five) still fits an int64 before it is clamped in
// turn.
const MaxReportAmount = 1<<53 - 1

var (
	maxReportBig = big.NewInt(MaxReportAmount)
	minReportBig = big.NewInt(-MaxReportAmount)
)

// ClampAmount returns v limited to ±MaxReportAmount, and whether it had to
// be limited.
func ClampAmount(v *big.Int) (int64, bool) {
	switch {
	case v.Cmp(maxReportBig) > 0:
		return MaxReportAmount, true
	case v.Cmp(minReportBig) < 0:
		return -MaxReportAmount, true
	}
	return v.Int64(), false
}

// clampInt64 is ClampAmount for an int64.
func clampInt64(v int64) (int64, bool) {
	switch {
	case v > MaxReportAmount:
		return MaxReportAmount, true
	case v < -MaxReportAmount:
		return -MaxReportAmount, true
	}
	return v, false
}

// satAdd adds two MRR amounts (non-negative), saturating at the int64
// maximum instead of wrapping to a negative total.
func satAdd(a, b int64) int64 {
	if s := a + b; (s > a) == (b > 0) {
		return s
	}
	if b > 0 {
		return 1<<63 - 1
	}
	return -1 << 63
}
