package webhooks_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
)

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bundle is what most tests need: a store on a fresh database, the handler
// over it, captured debug logs and the metrics registry.
type bundle struct {
	store   *postgres.Store
	handler http.Handler
	logs    *syncBuffer
	reg     *prometheus.Registry
}

func setup(t testing.TB) *bundle {
	t.Helper()
	return setupWith(t, pgtest.Open(t), webhooks.Config{})
}

// setupWith builds the handler over st; cfg's zero fields get test values.
func setupWith(t testing.TB, st *postgres.Store, cfg webhooks.Config) *bundle {
	t.Helper()
	b := &bundle{store: st, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	if cfg.Secrets == nil {
		cfg.Secrets = []string{webhookstest.Secret}
	}
	if cfg.Links == nil {
		cfg.Links = webhookstest.Links() // the fixtures' checkout reference is signed with its key
	}
	cfg.Store = st
	cfg.Log = slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Registerer = b.reg
	h, err := webhooks.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.handler = h
	return b
}

func (b *bundle) post(t testing.TB, payload []byte) webhookstest.Response {
	t.Helper()
	return webhookstest.Post(t, b.handler, webhookstest.Secret, payload)
}

// count returns the number of rows of a table.
func (b *bundle) count(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := b.store.DB().Get(&n, fmt.Sprintf(`SELECT count(*) FROM %s`, pq.QuoteIdentifier(table))); err != nil {
		t.Fatal(err)
	}
	return n
}

// dump returns every row of every table in the schema as text.
func (b *bundle) dump(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	cols, err := b.store.SchemaColumns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for table := range cols {
		var rows []string
		q := fmt.Sprintf(`SELECT t::text FROM %s t`, pq.QuoteIdentifier(table))
		if err := b.store.DB().Select(&rows, q); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for _, r := range rows {
			fmt.Fprintf(&out, "%s: %s\n", table, r)
		}
	}
	return out.String()
}

// subState is the current state of a subscription as tests compare it.
type subState struct {
	Status          string     `db:"status"`
	Currency        string     `db:"currency"`
	Items           string     `db:"items"`
	ItemsIncomplete bool       `db:"items_incomplete"`
	Discounts       string     `db:"discounts"`
	MRR             int64      `db:"mrr_minor"`
	MRRFixed        bool       `db:"mrr_fixed"`
	Livemode        bool       `db:"livemode"`
	PeriodStart     *time.Time `db:"current_period_start"`
	PeriodEnd       *time.Time `db:"current_period_end"`
	CancelAtEnd     bool       `db:"cancel_at_period_end"`
	CollPaused      bool       `db:"collection_paused"`
	InvoiceStatus   *string    `db:"latest_invoice_status"`
	InvoiceAttempts int        `db:"invoice_attempt_count"`
	NextAttempt     *time.Time `db:"next_payment_attempt"`
	VersionAt       time.Time  `db:"version_at"`
	VersionEvent    string     `db:"version_event"`
}

func (b *bundle) sub(t testing.TB, id string) subState {
	t.Helper()
	const q = `
SELECT status, currency, items::text AS items, items_incomplete, discounts::text AS discounts, mrr_minor,
       mrr_fixed, livemode, current_period_start, current_period_end, cancel_at_period_end,
       collection_paused, latest_invoice_status, invoice_attempt_count, next_payment_attempt,
       version_at, version_event
FROM subscriptions WHERE stripe_subscription_id = $1`
	var s subState
	if err := b.store.DB().Get(&s, q, id); err != nil {
		t.Fatalf("subscription %s: %v", id, err)
	}
	return s
}

// custState is a customers row as tests compare it.
type custState struct {
	AccountID *string `db:"account_id"`
	LinkedVia *string `db:"linked_via"`
	Livemode  *bool   `db:"livemode"`
	Deleted   bool    `db:"deleted"`
}

func (b *bundle) customer(t testing.TB, id string) custState {
	t.Helper()
	var c custState
	if err := b.store.DB().Get(&c, `SELECT account_id, linked_via, livemode, deleted FROM customers WHERE stripe_customer_id = $1`, id); err != nil {
		t.Fatalf("customer %s: %v", id, err)
	}
	return c
}

// counter returns the value of the counter series name{label=value}, 0 if
// absent.
func (b *bundle) counter(t testing.TB, name string, labelsKV ...string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labelsKV); i += 2 {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labelsKV[i] && lp.GetValue() == labelsKV[i+1] {
						ok = true
					}
				}
				if !ok {
					continue metric
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
