package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The ledger's inputs besides subscription versions (migration 0610): the
// customer's own discounts (customer_discount_versions), the tax share of
// automatic-tax inclusive prices from paid invoice lines
// (invoice_line_amounts), and the amounts of discounts that arrived as bare
// IDs (discount_resolutions). The event path, the ledger rebuild and the
// discount resolution job all read them here, so every derivation of a
// ledger sees the same inputs (billing.DeriveCustomerLedger).

// qLedgerInputs reads the customer discount versions and tax facts of
// several customers' ledgers ($1, $2: customer references and modes).
const qLedgerInputs = `
WITH f AS (
    SELECT * FROM unnest($1::uuid[], $2::boolean[]) AS f(cref, livemode)
), fix AS (
    -- Lines paid before their subscription was known wait as 'unknown':
    -- the subscription's items now say what kind of price each bills.
    UPDATE invoice_line_amounts l SET usage_kind = k.kind
    FROM (SELECT DISTINCT ON (f.cref, f.livemode, i->>'price_id') f.cref, f.livemode, i->>'price_id' AS price_id,
                 CASE WHEN i->>'usage_type' = 'metered' THEN 'metered'
                      WHEN i->>'billing_scheme' = 'tiered' THEN 'tiered' ELSE 'fixed' END AS kind
          FROM f CROSS JOIN LATERAL (
              SELECT items FROM subscription_versions v
              WHERE v.customer_ref = f.cref AND v.livemode = f.livemode OFFSET 0) AS v,
               jsonb_array_elements(v.items) AS i
          WHERE EXISTS (SELECT 1 FROM invoice_line_amounts u
                        WHERE u.customer_ref = f.cref AND u.livemode = f.livemode AND u.usage_kind = 'unknown')
         ) AS k
    WHERE l.customer_ref = k.cref AND l.livemode = k.livemode AND l.price_id = k.price_id AND l.usage_kind = 'unknown'
    RETURNING 1
)
SELECT f.cref::text AS cref, f.livemode,
    (SELECT json_agg(json_build_object('at', d.version_at, 'event', d.version_event, 'discounts', d.discounts))
     FROM customer_discount_versions d WHERE d.customer_ref = f.cref AND d.livemode = f.livemode) AS discounts,
    (SELECT json_agg(json_build_object('price_id', l.price_id, 'at', l.period_start, 'gross', l.amount_minor, 'net', l.net_minor))
     FROM invoice_line_amounts l
     WHERE l.customer_ref = f.cref AND l.livemode = f.livemode AND l.net_minor < l.amount_minor) AS tax
FROM f`

// qDiscountResolutions reads the resolved amounts of bare discount IDs.
const qDiscountResolutions = `
SELECT discount_id, percent_off_bp, amount_off, coalesce(currency, '') AS currency, coalesce(duration, '') AS duration,
       start_at, end_at
FROM discount_resolutions WHERE discount_id = ANY($1::text[])`

// loadLedgerInputs completes each ledger's history with its customer's
// discounts and tax facts, and fills in the discounts that were resolved
// since they arrived as bare IDs. It returns the discount IDs still
// unresolved.
func loadLedgerInputs(ctx context.Context, q sqlx.QueryerContext, ledgers map[ledgerKey]*ledgerWork) (map[string]bool, error) {
	if err := readLedgerInputs(ctx, q, ledgers); err != nil {
		return nil, err
	}
	return resolveLedgerDiscounts(ctx, q, ledgers)
}

// readLedgerInputs reads each ledger's customer discounts and tax facts,
// and classifies the customer's lines paid before their subscription was
// known.
func readLedgerInputs(ctx context.Context, q sqlx.QueryerContext, ledgers map[ledgerKey]*ledgerWork) error {
	if len(ledgers) == 0 {
		return nil
	}
	refs, modes := make([]string, 0, len(ledgers)), make([]bool, 0, len(ledgers))
	for k := range ledgers {
		refs, modes = append(refs, k.ref), append(modes, k.livemode)
	}
	rows, err := q.QueryxContext(ctx, qLedgerInputs, pq.Array(refs), pq.Array(modes))
	if err != nil {
		return fmt.Errorf("read ledger inputs: %w", translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var r struct {
			Ref       string `db:"cref"`
			Livemode  bool   `db:"livemode"`
			Discounts []byte `db:"discounts"`
			Tax       []byte `db:"tax"`
		}
		if err := rows.StructScan(&r); err != nil {
			return fmt.Errorf("read ledger inputs: %w", translate(err))
		}
		l := ledgers[ledgerKey{ref: r.Ref, livemode: r.Livemode}]
		if l == nil {
			continue
		}
		if len(r.Discounts) > 0 {
			var ds []struct {
				At        time.Time     `json:"at"`
				Event     string        `json:"event"`
				Discounts []discountDoc `json:"discounts"`
			}
			if err := json.Unmarshal(r.Discounts, &ds); err != nil {
				return fmt.Errorf("read customer discounts: %w", err)
			}
			for _, d := range ds {
				l.discounts = append(l.discounts, billing.CustomerDiscountVersion{At: d.At, Event: d.Event,
					Discounts: fromDiscountDocs(d.Discounts)})
			}
		}
		if len(r.Tax) > 0 {
			var fs []struct {
				PriceID string    `json:"price_id"`
				At      time.Time `json:"at"`
				Gross   int64     `json:"gross"`
				Net     int64     `json:"net"`
			}
			if err := json.Unmarshal(r.Tax, &fs); err != nil {
				return fmt.Errorf("read tax facts: %w", err)
			}
			for _, f := range fs {
				l.tax = append(l.tax, billing.TaxFact{PriceID: f.PriceID, At: f.At, Gross: f.Gross, Net: f.Net})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read ledger inputs: %w", translate(err))
	}
	return nil
}

// resolveLedgerDiscounts fills in resolved bare discount IDs and returns
// the IDs still unresolved.
func resolveLedgerDiscounts(ctx context.Context, q sqlx.QueryerContext, ledgers map[ledgerKey]*ledgerWork) (map[string]bool, error) {
	pending := map[string]bool{}
	for _, l := range ledgers {
		for _, v := range l.versions {
			for _, id := range billing.UnresolvedIDs(v.State.Discounts) {
				pending[id] = true
			}
		}
		for _, v := range l.discounts {
			for _, id := range billing.UnresolvedIDs(v.Discounts) {
				pending[id] = true
			}
		}
	}
	if len(pending) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	res, err := discountResolutions(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for id := range res {
		delete(pending, id)
	}
	if len(res) > 0 {
		for _, l := range ledgers {
			for i := range l.versions {
				l.versions[i].State.Discounts = billing.Resolve(l.versions[i].State.Discounts, res)
			}
			for i := range l.discounts {
				l.discounts[i].Discounts = billing.Resolve(l.discounts[i].Discounts, res)
			}
		}
	}
	return pending, nil
}

func discountResolutions(ctx context.Context, q sqlx.QueryerContext, ids []string) (map[string]billing.DiscountResolution, error) {
	var rows []struct {
		ID       string     `db:"discount_id"`
		Percent  int64      `db:"percent_off_bp"`
		Amount   int64      `db:"amount_off"`
		Currency string     `db:"currency"`
		Duration string     `db:"duration"`
		Start    *time.Time `db:"start_at"`
		End      *time.Time `db:"end_at"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, qDiscountResolutions, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("read discount resolutions: %w", translate(err))
	}
	out := make(map[string]billing.DiscountResolution, len(rows))
	for _, r := range rows {
		out[r.ID] = billing.DiscountResolution{DiscountID: r.ID, PercentOffBP: r.Percent, AmountOff: r.Amount,
			Currency: r.Currency, Duration: r.Duration, Start: r.Start, End: r.End}
	}
	return out, nil
}

// history is the ledger's whole input.
func (l *ledgerWork) history() billing.CustomerHistory {
	return billing.CustomerHistory{Versions: l.versions, CustomerDiscounts: l.discounts, TaxFacts: l.tax}
}

// finWork is what the batch's customer and invoice events ask of the
// ledgers: customers whose ledger must be re-derived from a time on
// (their discount or tax facts changed), customers whose paid lines the
// batch recorded, and coupons to fetch.
type finWork struct {
	rederive map[ledgerKey]time.Time
	lines    map[ledgerKey]bool
	coupons  []couponJob
}

// couponJob is a customer discount whose coupon arrived as a bare ID.
type couponJob struct {
	customerID, discountID, couponID string
	livemode                         bool
}

// recordedLines notes that the batch stored paid lines of k's customer.
func (f *finWork) recordedLines(k ledgerKey) {
	if f.lines == nil {
		f.lines = map[ledgerKey]bool{}
	}
	f.lines[k] = true
}

// needsInputs reports whether the ledger l (key k) can have inputs besides
// its subscription versions. A customer first seen in this batch has only
// those the batch wrote (a discount version, paid lines), so the common
// case, a new customer's first subscription, costs no statement.
func (f *finWork) needsInputs(k ledgerKey, l *ledgerWork) bool {
	_, touched := f.rederive[k]
	return !l.fresh || touched || f.lines[k]
}

// touch asks for k's ledger to be re-derived from `from` on.
func (f *finWork) touch(k ledgerKey, from time.Time) {
	if t, ok := f.rederive[k]; !ok || from.Before(t) {
		f.rederive[k] = from
	}
}

// addFinanceWork adds to the batch's ledgers the ones its customer and
// invoice events changed, loads every ledger's other inputs and queues the
// Stripe jobs that resolve discounts still known by ID only.
func (b *batch) addFinanceWork(ctx context.Context, ledgers map[ledgerKey]*ledgerWork) (map[ledgerKey]*ledgerWork, error) {
	if ledgers == nil {
		ledgers = map[ledgerKey]*ledgerWork{}
	}
	keys := make([]ledgerKey, 0, len(b.tx.fin.rederive))
	for k := range b.tx.fin.rederive {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareLedgerKeys)
	for _, k := range keys {
		from := b.tx.fin.rederive[k]
		if l := ledgers[k]; l != nil {
			l.since = minTime(l.since, from)
			continue
		}
		versions, err := customerHistory(ctx, b.tx.Tx, k.ref, k.livemode)
		if err != nil {
			return nil, err
		}
		if len(versions) == 0 {
			// No subscription yet: the ledger is empty and stays so (a
			// customer has movements only from versions, and purging
			// deletes both). Its subscription's first version will read
			// the customer's inputs.
			continue
		}
		ledgers[k] = &ledgerWork{since: from, versions: versions}
	}
	read := make(map[ledgerKey]*ledgerWork, len(ledgers))
	for k, l := range ledgers {
		if b.tx.fin.needsInputs(k, l) {
			read[k] = l
		}
	}
	if err := readLedgerInputs(ctx, b.tx, read); err != nil {
		return nil, err
	}
	pending, err := resolveLedgerDiscounts(ctx, b.tx, ledgers)
	if err != nil {
		return nil, err
	}
	var jobKeys, payloads []string
	queued := map[string]bool{}
	add := func(id string, p billing.StripeJobPayload) error {
		if queued[id] {
			return nil
		}
		queued[id] = true
		raw, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("queue discount resolution: %w", err)
		}
		jobKeys, payloads = append(jobKeys, ResolveJobOrderingKey(id)), append(payloads, string(raw))
		return nil
	}
	for _, it := range b.order {
		s := it.ev.Subscription
		if s == nil || !it.fresh || it.copyOf >= 0 {
			continue
		}
		for _, id := range billing.UnresolvedIDs(s.Discounts) {
			if pending[id] {
				if err := add(id, billing.StripeJobPayload{SubscriptionID: s.ID, CustomerID: s.CustomerID, Livemode: s.Livemode}); err != nil {
					return nil, err
				}
				break // one fetch of the subscription resolves all its discounts
			}
		}
	}
	for _, c := range b.tx.fin.coupons {
		if pending[c.discountID] {
			if err := add(c.discountID, billing.StripeJobPayload{CustomerID: c.customerID, CouponID: c.couponID,
				DiscountID: c.discountID, Livemode: c.livemode}); err != nil {
				return nil, err
			}
		}
	}
	if len(jobKeys) > 0 {
		// Once per discount: not while a job for it waits or is dead.
		const q = `
INSERT INTO outbox (kind, ordering_key, action, payload)
SELECT 'stripe', u.key, $3, u.payload::jsonb FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(key, payload, n)
WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ordering_key = u.key AND o.state <> 'sent')
ORDER BY u.n`
		if _, err := b.tx.ExecContext(ctx, q, pq.Array(jobKeys), pq.Array(payloads), billing.StripeResolveDiscounts); err != nil {
			return nil, fmt.Errorf("queue discount resolution: %w", translate(err))
		}
	}
	return ledgers, nil
}

// ResolveJobOrderingKey is the outbox ordering key of the job that
// resolves a discount ID.
func ResolveJobOrderingKey(discountID string) string {
	k := "resolve:" + discountID
	if len(k) > 80 {
		k = k[:80]
	}
	return k
}

func compareLedgerKeys(x, y ledgerKey) int {
	if x.ref != y.ref {
		if x.ref < y.ref {
			return -1
		}
		return 1
	}
	switch {
	case x.livemode == y.livemode:
		return 0
	case x.livemode:
		return 1
	}
	return -1
}
