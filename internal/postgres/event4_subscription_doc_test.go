package postgres_test

import (
	"context"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestSubscriptionDocColumns pins the store's JSON shape of a subscription
// to the SQL that reads and writes it: the input rows of the event path's
// subscription statement are declared column by column (jsonb_to_recordset),
// and the previous state comes back as to_jsonb of a subscriptions row, so
// a JSON name that is not a column of that type would silently read NULL.
func TestSubscriptionDocColumns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	var cols []struct {
		Name string `db:"attname"`
		Type string `db:"type"`
	}
	if err := st.DB().SelectContext(ctx, &cols, `
SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
WHERE attrelid = 'subscriptions'::regclass AND attnum > 0 AND NOT attisdropped`); err != nil {
		t.Fatal(err)
	}
	table := map[string]string{}
	for _, c := range cols {
		table[c.Name] = c.Type
	}
	m := regexp.MustCompile(`jsonb_to_recordset\(\$1::jsonb\) AS r\(([^)]*)\)`).FindStringSubmatch(postgres.QWriteSubscriptionsForTest)
	if m == nil {
		t.Fatal("no jsonb_to_recordset column list in the subscription statement")
	}
	declared := map[string]string{}
	var names []string
	for _, def := range strings.Split(m[1], ",") {
		name, typ, _ := strings.Cut(strings.TrimSpace(def), " ")
		var canonical string
		if err := st.DB().GetContext(ctx, &canonical, `SELECT format_type($1::regtype, NULL)`, typ); err != nil {
			t.Fatalf("column %s: type %q: %v", name, typ, err)
		}
		declared[name] = canonical
		names = append(names, name)
	}
	doc, input := postgres.SubscriptionDocNamesForTest()
	slices.Sort(names)
	slices.Sort(input)
	if !slices.Equal(names, input) {
		t.Errorf("the statement's input columns %q are not the input row's JSON names %q", names, input)
	}
	for _, n := range doc {
		typ, ok := table[n]
		switch {
		case !ok:
			t.Errorf("%s: a JSON name of the subscription shape that is no column of subscriptions (to_jsonb would not give it)", n)
		case declared[n] != typ:
			t.Errorf("%s: declared %s in the statement, %s in the table", n, declared[n], typ)
		}
	}
}

// TestSubscriptionDocRoundTrip writes a subscription with every stored
// field set through the event path's statement, then a newer version, and
// reads the first back both as the previous state the statement returns
// and as a stored row: nothing is lost between the domain and the columns.
func TestSubscriptionDocRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	at := func(day int) *time.Time {
		v := time.Date(2026, time.January, day, 10, 30, 15, 123456000, time.UTC)
		return &v
	}
	s := billing.Subscription{
		ID: "sub_Doc1", CustomerID: "cus_Doc1", Livemode: true, Status: billing.StatusPastDue, Currency: "eur",
		Items: []billing.Item{
			{PriceID: "price_a", ProductID: "prod_a", Quantity: 3, UnitAmount: 1250, UnitAmountDec: "1250.5",
				Interval: billing.IntervalMonth, IntervalCount: 1, UsageType: "licensed", BillingScheme: "per_unit",
				TransformDivideBy: 10, TransformRound: "up"},
			{PriceID: "price_b", Quantity: 1, Interval: billing.IntervalYear, IntervalCount: 2, UsageType: "metered", BillingScheme: "tiered"},
		},
		ItemsIncomplete: true,
		Discounts: []billing.Discount{
			{PercentOffBP: 2550, Duration: "repeating", Start: at(1), End: at(28)},
			{AmountOff: 500, Currency: "eur", Duration: "forever"},
		},
		Created: at(1), StartDate: at(2), CurrentPeriodStart: at(3), CurrentPeriodEnd: at(4), TrialStart: at(5),
		TrialEnd: at(6), CancelAt: at(7), CancelAtPeriodEnd: true, CanceledAt: at(8), EndedAt: at(9),
		CollectionPaused: true,
	}
	var customerRef string
	if err := st.DB().GetContext(ctx, &customerRef, `INSERT INTO customers (stripe_customer_id, livemode) VALUES ('cus_Doc1', true) RETURNING customer_ref::text`); err != nil {
		t.Fatal(err)
	}
	k1 := postgres.VersionKeyForTest(s, *at(10), "evt_Doc1")
	next := s
	next.Status = billing.StatusActive
	k2 := postgres.VersionKeyForTest(next, *at(11), "evt_Doc2")

	tx, err := st.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if changed, _, _, err := postgres.WriteVersionForTest(ctx, tx, s, k1, customerRef); err != nil || !changed {
		t.Fatalf("first version: changed %v, %v", changed, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	stored, err := st.SubscriptionStates(ctx, []string{s.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := stored[s.ID]; !reflect.DeepEqual(got, s) {
		t.Errorf("stored row:\n got %+v\nwant %+v", got, s)
	}
	tx, err = st.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	changed, prev, prevKey, err := postgres.WriteVersionForTest(ctx, tx, next, k2, customerRef)
	if err != nil || !changed {
		t.Fatalf("second version: changed %v, %v", changed, err)
	}
	if prev == nil || !reflect.DeepEqual(inUTC(*prev), s) {
		t.Errorf("previous state:\n got %+v\nwant %+v", prev, s)
	}
	if prevKey == nil || prevKey.Compare(k1) != 0 {
		t.Errorf("previous key %+v, want %+v", prevKey, k1)
	}
}

// inUTC returns s with every time in UTC: to_jsonb writes an offset
// (+00:00), which encoding/json reads into a zone of its own.
func inUTC(s billing.Subscription) billing.Subscription {
	utc := func(p *time.Time) *time.Time {
		if p == nil {
			return nil
		}
		v := p.UTC()
		return &v
	}
	for _, p := range []**time.Time{&s.Created, &s.StartDate, &s.CurrentPeriodStart, &s.CurrentPeriodEnd, &s.TrialStart,
		&s.TrialEnd, &s.CancelAt, &s.CanceledAt, &s.EndedAt} {
		*p = utc(*p)
	}
	s.Discounts = slices.Clone(s.Discounts)
	for i := range s.Discounts {
		s.Discounts[i].Start, s.Discounts[i].End = utc(s.Discounts[i].Start), utc(s.Discounts[i].End)
	}
	return s
}
