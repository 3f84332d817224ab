package stripeapi_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/lib/pq"
)

// bundle is what most tests need: a fake Stripe seeded with customers and
// subscriptions, a store on a fresh database, and a syncer over both.
type bundle struct {
	fake   *stripefake.Server
	store  *postgres.Store
	syncer *stripeapi.Syncer
	subs   []stripefake.Subscription
	custs  []stripefake.Customer
}

// seedCustomers and the statuses cycled through by seed: every status
// Stripe documents, canceled ones included.
var statuses = []string{"active", "trialing", "canceled", "past_due", "active", "canceled", "unpaid", "incomplete_expired", "paused", "active", "incomplete"}

func setup(t *testing.T) *bundle {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	b := &bundle{fake: fake, store: pgtest.Open(t)}
	base := time.Now().UTC().Add(-90 * 24 * time.Hour).Truncate(time.Second)
	for i := range 7 {
		c := stripefake.Customer{ID: fmt.Sprintf("cus_T%02d", i), Created: base.Add(time.Duration(i) * time.Hour)}
		if i%2 == 0 {
			c.AccountID = fmt.Sprintf("acct_%02d", i)
		}
		b.custs = append(b.custs, c)
		fake.PutCustomer(c)
	}
	for i, st := range statuses {
		created := base.Add(time.Duration(i) * 24 * time.Hour)
		if i == 4 {
			created = b.subs[3].Created // two in the same second: cursors must cope
		}
		s := stripefake.Subscription{
			ID: fmt.Sprintf("sub_T%02d", i), CustomerID: b.custs[i%len(b.custs)].ID, Status: st, Created: created,
			Currency: "eur", PeriodStart: created, PeriodEnd: created.AddDate(0, 1, 0),
			Items: []stripefake.Item{{PriceID: "price_basic", ProductID: "prod_app", UnitAmount: 1000 + int64(i)*100, Interval: "month", Quantity: int64(1 + i%3)}},
		}
		if i%2 == 1 {
			s.APIVersion = stripefake.Version20250331
		}
		if i%3 == 0 {
			s.ExpandCustomer = true
		}
		if st == "canceled" {
			ended := created.Add(48 * time.Hour)
			s.CanceledAt, s.EndedAt = &ended, &ended
		}
		if st == "trialing" {
			end := created.Add(14 * 24 * time.Hour)
			s.TrialStart, s.TrialEnd = &created, &end
		}
		b.subs = append(b.subs, s)
		fake.PutSubscription(s)
	}
	var err error
	client, err := stripeapi.New(stripeapi.Config{Key: stripefake.Key, Base: fake.URL, PageSize: 3, RateLimitBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.syncer = &stripeapi.Syncer{Client: client, Store: b.store}
	return b
}

// dump renders every row of every table as text, sorted, so two dumps can
// be compared and searched.
func (b *bundle) dump(t *testing.T) string {
	t.Helper()
	var tables []string
	if err := b.store.DB().Select(&tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, tb := range tables {
		var rows []string
		if err := b.store.DB().Select(&rows, fmt.Sprintf(`SELECT t::text FROM %s t`, pq.QuoteIdentifier(tb))); err != nil {
			t.Fatal(err)
		}
		sort.Strings(rows)
		fmt.Fprintf(&out, "== %s\n%s\n", tb, strings.Join(rows, "\n"))
	}
	return out.String()
}

func (b *bundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.store.DB().Get(&n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func (b *bundle) backfill(t *testing.T) stripeapi.BackfillSummary {
	t.Helper()
	sum, err := b.syncer.Backfill(context.Background())
	if err != nil {
		t.Fatalf("backfill: %v (summary %+v)", err, sum)
	}
	return sum
}
