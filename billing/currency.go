package billing

import "strings"

// Stripe sends amounts as integers in a currency's minor unit, whose size is
// not always ISO 4217's: these tables follow Stripe's currency guide.
var (
	// zeroDecimal currencies: the API amount is whole units (¥500 is 500).
	zeroDecimal = map[string]bool{
		"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true,
		"krw": true, "mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true,
		"vuv": true, "xaf": true, "xof": true, "xpf": true,
	}
	// threeDecimal currencies: the API amount is thousandths (5.124 KWD is 5124).
	threeDecimal = map[string]bool{"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true}
	// wholeDisplay currencies are sent with two decimals for backwards
	// compatibility but charged and shown in whole units (Stripe's special
	// cases): ISK amounts are multiples of 100; HUF and TWD pay out whole.
	wholeDisplay = map[string]bool{"isk": true, "huf": true, "twd": true}
)

// MinorUnitExponent is the number of decimal places in Stripe's API amounts
// for currency (a lowercase or uppercase ISO code): 0 for zero-decimal
// currencies such as JPY and KRW, 3 for KWD, BHD, JOD, OMR and TND, and 2
// for everything else, ISK, HUF and TWD included.
func MinorUnitExponent(currency string) int {
	c := strings.ToLower(currency)
	switch {
	case zeroDecimal[c]:
		return 0
	case threeDecimal[c]:
		return 3
	}
	return 2
}

// DisplayDecimals is how many decimals a figure in currency is shown with:
// the API exponent, except for Stripe's special cases (ISK, HUF, TWD) that
// are shown in whole units although the API counts hundredths.
func DisplayDecimals(currency string) int {
	if wholeDisplay[strings.ToLower(currency)] {
		return 0
	}
	return MinorUnitExponent(currency)
}

// FormatMinor renders an amount in minor units as a decimal string in the
// currency's major unit, exactly (no floating point): 123456 usd is
// "1234.56", 500 jpy is "500", 5124 kwd is "5.124", 150000 isk is "1500".
func FormatMinor(amount int64, currency string) string {
	exp := MinorUnitExponent(currency)
	show := DisplayDecimals(currency)
	neg := amount < 0
	u := uint64(amount)
	if neg {
		u = uint64(-amount) // two's complement: correct for MinInt64 too
	}
	if show < exp {
		// Whole-unit display of a hundredths amount (ISK, HUF, TWD): round
		// half-even to the shown unit rather than truncate.
		var step uint64 = 1
		for i := show; i < exp; i++ {
			step *= 10
		}
		q, r := u/step, u%step
		if r*2 > step || (r*2 == step && q%2 == 1) {
			q++
		}
		u = q * step
	}
	var div uint64 = 1
	for i := 0; i < exp; i++ {
		div *= 10
	}
	whole, frac := u/div, u%div
	s := uitoa(whole)
	if show > 0 {
		f := uitoa(frac)
		f = strings.Repeat("0", exp-len(f)) + f
		s += "." + f[:show]
	}
	if neg && (whole != 0 || frac != 0) {
		s = "-" + s
	}
	return s
}

func uitoa(u uint64) string {
	if u == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	return string(b[i:])
}
