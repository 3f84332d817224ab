package stripefake

import (
	"fmt"
	"math"
	"time"
)

// seedStatuses cycles through every status Stripe documents.
var seedStatuses = []string{"active", "trialing", "active", "past_due", "canceled", "active", "unpaid", "incomplete_expired", "paused", "active", "incomplete"}

// Seed adds customers and subscriptions (subs of them, spread over
// customers) created over the span before now, denser towards now as a
// growing account's are: object i of n was created span·(i/n)² ago, so the
// newest few share a second. Every other customer carries an account ID,
// every other subscription the 2025 API shape, canceled ones their end.
// IDs are prefix + a number.
func (s *Server) Seed(prefix string, customers, subs int, now time.Time, span time.Duration) {
	at := func(i, n int) time.Time {
		x := (float64(i) + 0.5) / float64(n)
		return now.Add(-time.Duration(math.Pow(x, 2) * float64(span))).UTC().Truncate(time.Second)
	}
	for i := range customers {
		c := Customer{ID: fmt.Sprintf("cus_%s%06d", prefix, i), Created: at(i, customers)}
		if i%2 == 0 {
			c.AccountID = fmt.Sprintf("acct_%s%06d", prefix, i)
		}
		s.PutCustomer(c)
	}
	for i := range subs {
		created := at(i, subs)
		// A subscription is never older than its customer: pick one of
		// the customers created before it.
		kmin := int(math.Ceil(float64(customers)*(float64(i)+0.5)/float64(subs) - 0.5))
		k := min(max(i%customers, kmin), customers-1)
		st := seedStatuses[i%len(seedStatuses)]
		sub := Subscription{ID: fmt.Sprintf("sub_%s%06d", prefix, i), CustomerID: fmt.Sprintf("cus_%s%06d", prefix, k), Status: st,
			Created: created, Currency: "usd", PeriodStart: created, PeriodEnd: created.AddDate(0, 1, 0),
			Items: []Item{{PriceID: "price_seed", ProductID: "prod_seed", UnitAmount: 500 + int64(i%7)*100, Interval: "month", Quantity: int64(1 + i%3)}}}
		if i%2 == 1 {
			sub.APIVersion = Version20250331
		}
		switch st {
		case "canceled":
			ended := created.Add(time.Hour)
			sub.CanceledAt, sub.EndedAt = &ended, &ended
		case "trialing":
			end := created.Add(14 * 24 * time.Hour)
			sub.TrialStart, sub.TrialEnd = &created, &end
		}
		s.PutSubscription(sub)
	}
}
