package billing

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"
)

// FXRate is one day's reference rate: units of Currency per 1 EUR, as the
// European Central Bank publishes them.
type FXRate struct {
	Day      time.Time `json:"date"`
	Currency string    `json:"currency"`
	PerEUR   string    `json:"per_eur"` // a positive decimal, e.g. "1.0921"
}

// FXStore keeps the rates.
type FXStore interface {
	// PutFXRates inserts or replaces rates (source "import" or "api") and
	// returns how many it wrote.
	PutFXRates(ctx context.Context, rates []FXRate, source string) (int, error)
	// FXRates returns every rate from `from` to `to` (days, inclusive).
	FXRates(ctx context.Context, from, to time.Time) ([]FXRate, error)
}

// FXCarryDays is how many days back a day without its own rate looks for
// the latest published one: the ECB publishes none on weekends and TARGET
// holidays (Good Friday to Easter Monday is the longest gap, 4 days).
const FXCarryDays = 4

// MaxFXRates caps one import or PUT: 10 years of daily rates for 40
// currencies.
const MaxFXRates = 150_000

// ValidFXRate checks one rate: a three-letter currency other than EUR (the
// base), a positive decimal of at most 20 characters.
func ValidFXRate(r FXRate) error {
	if len(r.Currency) != 3 || strings.ToLower(r.Currency) != r.Currency || !isLetters(r.Currency) {
		return fmt.Errorf("%w: currency %q is not a three-letter lower-case ISO 4217 code", ErrInvalid, clipStr(r.Currency))
	}
	if r.Currency == "eur" {
		return fmt.Errorf("%w: eur is the base of the rates (1 EUR = 1 EUR)", ErrInvalid)
	}
	if len(r.PerEUR) > 20 || !validDecimal(r.PerEUR) {
		return fmt.Errorf("%w: rate %q for %s is not a decimal number", ErrInvalid, clipStr(r.PerEUR), r.Currency)
	}
	if v, _ := new(big.Rat).SetString(r.PerEUR); v == nil || v.Sign() <= 0 {
		return fmt.Errorf("%w: rate %q for %s must be above 0", ErrInvalid, clipStr(r.PerEUR), r.Currency)
	}
	if r.Day.IsZero() || r.Day.Year() < 1999 || r.Day.Year() > 9999 {
		return fmt.Errorf("%w: date of the %s rate out of range", ErrInvalid, r.Currency)
	}
	return nil
}

func isLetters(s string) bool {
	for _, c := range s {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func clipStr(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// ParseECBRates reads the ECB reference-rate CSV (eurofxref.csv and
// eurofxref-hist.csv): a header "Date,USD,JPY,…" (often with a trailing
// comma and spaces), then one row per day "2026-01-05,1.0921,158.56,…";
// "N/A" or an empty cell is a currency without a rate that day. Rows may
// come in any order. A malformed file is refused whole, naming the line.
func ParseECBRates(r io.Reader) ([]FXRate, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: ECB rates: no header line: %v", ErrInvalid, err)
	}
	if len(header) < 2 || !strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(header[0], "\ufeff")), "date") {
		return nil, fmt.Errorf("%w: ECB rates: the first column must be Date", ErrInvalid)
	}
	curs := make([]string, len(header))
	for i, h := range header[1:] {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			continue // the trailing comma
		}
		if len(h) != 3 || !isLetters(h) {
			return nil, fmt.Errorf("%w: ECB rates: column %d header %q is not a currency code", ErrInvalid, i+2, clipStr(h))
		}
		curs[i+1] = h
	}
	var out []FXRate
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: ECB rates: line %d: %v", ErrInvalid, line, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		day, err := time.Parse(time.DateOnly, strings.TrimSpace(rec[0]))
		if err != nil {
			return nil, fmt.Errorf("%w: ECB rates: line %d: date %q is not YYYY-MM-DD", ErrInvalid, line, clipStr(rec[0]))
		}
		for i := 1; i < len(rec) && i < len(curs); i++ {
			v := strings.TrimSpace(rec[i])
			if curs[i] == "" || v == "" || strings.EqualFold(v, "N/A") {
				continue
			}
			fr := FXRate{Day: day, Currency: curs[i], PerEUR: v}
			if curs[i] == "eur" {
				continue
			}
			if err := ValidFXRate(fr); err != nil {
				return nil, fmt.Errorf("ECB rates: line %d: %w", line, err)
			}
			out = append(out, fr)
			if len(out) > MaxFXRates {
				return nil, fmt.Errorf("%w: ECB rates: more than %d rates in one file", ErrInvalid, MaxFXRates)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: ECB rates: no rate found", ErrInvalid)
	}
	return out, nil
}

// MissingRatesError says which days lack a rate (within FXCarryDays) for
// a conversion to the reporting currency.
type MissingRatesError struct {
	Currencies []string
	Days       []time.Time
}

func (e *MissingRatesError) Error() string {
	var ds []string
	for i, d := range e.Days {
		if i == 10 {
			ds = append(ds, fmt.Sprintf("and %d more", len(e.Days)-10))
			break
		}
		ds = append(ds, d.Format(time.DateOnly))
	}
	return fmt.Sprintf("no exchange rate for %s on %s (nor in the %d days before); import them with billingd fx import or PUT /v1/fx/rates",
		strings.Join(e.Currencies, ", "), strings.Join(ds, ", "), FXCarryDays)
}

// RateTable looks rates up by currency and day, carrying the latest
// published rate forward over up to FXCarryDays days.
type RateTable struct {
	m map[string]map[int64]*big.Rat
}

// NewRateTable indexes rates (already validated).
func NewRateTable(rates []FXRate) RateTable {
	t := RateTable{m: map[string]map[int64]*big.Rat{}}
	for _, r := range rates {
		v, ok := new(big.Rat).SetString(r.PerEUR)
		if !ok || v.Sign() <= 0 {
			continue
		}
		if t.m[r.Currency] == nil {
			t.m[r.Currency] = map[int64]*big.Rat{}
		}
		t.m[r.Currency][BucketDay.Truncate(r.Day).Unix()] = v
	}
	return t
}

var ratOne = big.NewRat(1, 1)

// Rate is the currency's units per EUR that apply on day.
func (t RateTable) Rate(currency string, day time.Time) (*big.Rat, bool) {
	if currency == "eur" {
		return ratOne, true
	}
	byDay := t.m[currency]
	d := BucketDay.Truncate(day)
	for i := 0; i <= FXCarryDays; i++ {
		if v, ok := byDay[d.AddDate(0, 0, -i).Unix()]; ok {
			return v, true
		}
	}
	return nil, false
}

// converter turns amounts into the reporting currency, collecting the days
// it lacks rates for.
type converter struct {
	rates     RateTable
	reporting string
	missing   map[string]map[int64]bool
}

// convert is amount (minor units of cur) in minor units of the reporting
// currency at day's rates, rounded half-even; ok false when a rate lacks.
func (c *converter) convert(amount int64, cur string, day time.Time) int64 {
	if amount == 0 {
		return 0
	}
	if cur == c.reporting {
		return amount
	}
	from, ok1 := c.rates.Rate(cur, day)
	to, ok2 := c.rates.Rate(c.reporting, day)
	if !ok1 || !ok2 {
		for _, x := range []struct {
			cur string
			ok  bool
		}{{cur, ok1}, {c.reporting, ok2}} {
			if !x.ok {
				if c.missing[x.cur] == nil {
					c.missing[x.cur] = map[int64]bool{}
				}
				c.missing[x.cur][BucketDay.Truncate(day).Unix()] = true
			}
		}
		return 0
	}
	v := new(big.Rat).Mul(big.NewRat(amount, 1), to)
	v.Quo(v, from)
	if d := MinorUnitExponent(c.reporting) - MinorUnitExponent(cur); d != 0 {
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(d))), nil)
		if d > 0 {
			v.Mul(v, new(big.Rat).SetInt(p))
		} else {
			v.Quo(v, new(big.Rat).SetInt(p))
		}
	}
	r, _ := clampInt64(roundHalfEven(v))
	return r
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// ToReporting converts daily per-currency totals (PeriodTotals of
// BucketDay, one series per currency and segment, covering the day before
// from up to to) into buckets of the reporting currency, one series per
// segment. Each day's movements are converted at that day's rate; MRR at a
// bucket's boundary at the rate of the boundary's last day (at most asOf's
// day). FXEffect is what rate changes did to MRR within the bucket, so
// MRR(S) + net new + FX effect = MRR(E) holds in the reporting currency.
// Counts (customers, subscriptions, trials) add up across currencies. Days
// without a rate for a currency that had MRR or movements then fail the
// whole conversion with a *MissingRatesError naming them.
func ToReporting(daily []PeriodTotals, reporting string, rates RateTable, bucket Bucket, from, to, asOf time.Time) ([]PeriodTotals, error) {
	c := &converter{rates: rates, reporting: reporting, missing: map[string]map[int64]bool{}}
	type dayKey struct {
		seg string
		day int64
	}
	byDay := map[dayKey][]PeriodTotals{}
	segSet := map[string]bool{}
	for _, p := range daily {
		k := dayKey{p.Segment, p.Start.Unix()}
		byDay[k] = append(byDay[k], p)
		segSet[p.Segment] = true
	}
	segs := make([]string, 0, len(segSet))
	for s := range segSet {
		segs = append(segs, s)
	}
	slices.Sort(segs)
	today := BucketDay.Truncate(asOf)
	rateDay := func(d time.Time) time.Time {
		if !asOf.IsZero() && d.After(today) {
			return today
		}
		return d
	}
	// mrrAt converts the MRR at the end of day d (all currencies).
	mrrAt := func(seg string, d time.Time) (mrr int64) {
		for _, p := range byDay[dayKey{seg, d.Unix()}] {
			mrr += c.convert(p.MRREnd, p.Currency, rateDay(d))
		}
		return mrr
	}
	var out []PeriodTotals
	for _, seg := range segs {
		for s := from; s.Before(to); s = bucket.Next(s) {
			e := bucket.Next(s)
			p := PeriodTotals{Start: s, End: e, Currency: reporting, Segment: seg}
			prev := rateDay(s.AddDate(0, 0, -1)) // days after asOf's hold its figures
			p.MRRStart = mrrAt(seg, prev)
			for _, q := range byDay[dayKey{seg, prev.Unix()}] {
				p.PayingStart += q.PayingEnd
			}
			last := rateDay(e.AddDate(0, 0, -1))
			p.MRREnd = mrrAt(seg, last)
			for _, q := range byDay[dayKey{seg, last.Unix()}] {
				p.PayingEnd += q.PayingEnd
				p.ActiveSubscriptions += q.ActiveSubscriptions
			}
			for d := s; d.Before(e); d = d.AddDate(0, 0, 1) {
				for _, q := range byDay[dayKey{seg, d.Unix()}] {
					m := q.Movements
					rd := rateDay(d)
					p.Movements.New += c.convert(m.New, q.Currency, rd)
					p.Movements.Expansion += c.convert(m.Expansion, q.Currency, rd)
					p.Movements.Contraction += c.convert(m.Contraction, q.Currency, rd)
					p.Movements.Churn += c.convert(m.Churn, q.Currency, rd)
					p.Movements.Reactivation += c.convert(m.Reactivation, q.Currency, rd)
					p.ChurnedCustomers += q.ChurnedCustomers
					p.TrialStarts += q.TrialStarts
					p.TrialConversions += q.TrialConversions
					p.Clamped = p.Clamped || q.Clamped
				}
			}
			p.FXEffect = p.MRREnd - p.MRRStart - p.Movements.NetNew()
			out = append(out, p)
		}
	}
	if len(c.missing) > 0 {
		e := &MissingRatesError{}
		days := map[int64]bool{}
		for cur, ds := range c.missing {
			e.Currencies = append(e.Currencies, cur)
			for d := range ds {
				days[d] = true
			}
		}
		slices.Sort(e.Currencies)
		for d := range days {
			e.Days = append(e.Days, time.Unix(d, 0).UTC())
		}
		slices.SortFunc(e.Days, func(a, b time.Time) int { return a.Compare(b) })
		return nil, e
	}
	return out, nil
}
