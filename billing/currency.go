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
