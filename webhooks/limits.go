package webhooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/billingd/billingd/billing"
)

// Signed input is still input: a payload can be signed and still hold
// amounts no Stripe account can produce (a leaked secret, a test harness, a
// bug upstream). Stored, they overflowed MRR arithmetic and made revenue
// reports fail for their currency. Decoders refuse them.
//
// The limits are Stripe's, taken at their widest so that no genuine event
// is ever refused:
//
//   - amounts (unit_amount, unit_amount_decimal's integer part, a legacy
//     plan's amount, a coupon's amount_off): Stripe caps amounts at 8
//     digits of the minor unit for most currencies (99,999,999: $999,999.99)
//     and at 12 for a few with small units (IDR's prices reach
//     999,999,999,999); we refuse anything above 12 digits;
//   - quantities (an item's quantity, transform_quantity.divide_by):
//     Stripe documents no ceiling, but an invoice line is quantity × unit
//     amount and must itself fit the 12-digit amount limit, so no priced
//     item can exceed 12 digits of quantity either; we refuse above that;
//   - an invoice's attempt_count: Stripe retries a failed payment a handful
//     of times over weeks; we refuse above 1,000,000.
//
// Even at these limits an item's monthly amount can exceed int64 (12 + 12
// digits): MRR arithmetic saturates and reports clamp (billing/clamp.go),
// so what is accepted can never make a report fail either.
const (
	maxAmount   = 999_999_999_999
	maxQuantity = 999_999_999_999
)

// ErrOutOfRange marks a decode error for an amount or quantity beyond
// Stripe's limits. Such errors also wrap billing.ErrInvalid.
var ErrOutOfRange = errors.New("value out of range")

// outOfRange is the error for field what (its name, never its value).
func outOfRange(what string) error {
	return fmt.Errorf("%w: %w: %s beyond Stripe's limit", billing.ErrInvalid, ErrOutOfRange, what)
}

// decimalTooLarge reports whether a decimal amount string (digits with at
// most one dot) is above maxAmount in its integer part. Strings of another
// shape are not judged here (the decoder drops them).
func decimalTooLarge(s string) bool {
	whole, _, _ := strings.Cut(s, ".")
	if whole == "" || strings.Trim(s, "0123456789.") != "" {
		return false
	}
	whole = strings.TrimLeft(whole, "0")
	return len(whole) > 12
}

// numberTooLarge returns an ErrOutOfRange error when err is encoding/json
// refusing an integer that does not fit its field (a quantity of 10^20
// never reaches the checks above), and nil otherwise.
func numberTooLarge(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return nil
	}
	n, ok := strings.CutPrefix(te.Value, "number ")
	n = strings.TrimPrefix(n, "-")
	if !ok || n == "" || strings.Trim(n, "0123456789") != "" {
		return nil // not an integer: malformed, not out of range
	}
	field := te.Field
	if field == "" {
		field = "a number"
	}
	return outOfRange(field)
}
