package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/entcache"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/internal/privacy"
	"github.com/billingd/billingd/internal/stripeapi"
	"github.com/billingd/billingd/internal/stripefake"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
	"github.com/prometheus/client_golang/prometheus"
)

const testAllowlist = "https://app.example.com/billing,http://localhost:3000"

// checkoutBundle is one API with checkout and portal sessions on, a
// recording fake Stripe behind it, and every log line it wrote.
type checkoutBundle struct {
	st     *postgres.Store
	srv    *httptest.Server
	fake   *stripefake.Server
	appTok string
	logs   *lockedBuffer
	clock  *atomic.Pointer[time.Time] // Sessions' clock; nil value: time.Now
	reg    *prometheus.Registry
}

// lockedBuffer collects log lines written by concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// setupCheckout seeds the fake with prices: price_pro (product prod_x,
// the product seedSub's subscriptions have), price_team (prod_y),
// price_once (one-time) and price_old (archived). key is the Stripe key
// billingd uses ("" for the fake's).
func setupCheckout(t *testing.T, key string) checkoutBundle {
	t.Helper()
	fake := stripefake.New()
	t.Cleanup(fake.Close)
	for _, p := range []stripefake.Price{{ID: "price_pro", ProductID: "prod_x", Recurring: true},
		{ID: "price_team", ProductID: "prod_y", Recurring: true}, {ID: "price_once", ProductID: "prod_x"},
		{ID: "price_old", ProductID: "prod_x", Recurring: true, Inactive: true}} {
		fake.PutPrice(p)
	}
	if key == "" {
		key = stripefake.Key
	}
	client, err := stripeapi.New(stripeapi.Config{Key: key, Base: fake.URL, NetworkRetries: stripeapi.NoNetworkRetries})
	if err != nil {
		t.Fatal(err)
	}
	st := pgtest.Open(t)
	b := checkoutBundle{st: st, fake: fake, logs: &lockedBuffer{}, clock: &atomic.Pointer[time.Time]{}, reg: prometheus.NewRegistry()}
	allow, err := billing.ParseURLAllowlist(testAllowlist)
	if err != nil {
		t.Fatal(err)
	}
	sessions := &stripeapi.Sessions{Client: client, Store: st, Grace: 72 * time.Hour, Now: func() time.Time {
		if p := b.clock.Load(); p != nil {
			return *p
		}
		return time.Now()
	}}
	log := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cache := entcache.New(st, api.RenderEntitlement, entcache.Options{Grace: 72 * time.Hour, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cache.Run(ctx); close(done) }()
	b.srv = httptest.NewServer((&api.Server{Log: log, Tokens: cache, Entitlements: cache, Accounts: st,
		LinkReferences: st, Checkout: sessions, AppURLs: allow, MaxBodyBytes: 4096, Registerer: b.reg}).Handler())
	t.Cleanup(func() { b.srv.Close(); cancel(); <-done })
	b.appTok = mintToken(t, st, "backend", billing.ScopeApp)
	return b
}

// sessionCount is billingd_app_sessions_total{kind,outcome}.
func (b checkoutBundle) sessionCount(t *testing.T, kind, outcome string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "billingd_app_sessions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// sessionPosts returns the form of every POST the fake got on path.
func (b checkoutBundle) sessionPosts(path string) []stripefake.Request {
	var out []stripefake.Request
	for _, r := range b.fake.Requests() {
		if r.Method == http.MethodPost && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

const (
	checkoutPath = "/v1/checkout/sessions"
	portalPath   = "/v1/billing_portal/sessions"
)

type checkoutAnswer struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	Livemode  bool      `json:"livemode"`
}

func decodeAnswer[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	return v
}

// seedCustomer links a customer to acct as PUT .../billing does; live nil
// is a customer Stripe has sent no event about yet.
func seedCustomer(t *testing.T, st *postgres.Store, cus, acct string, live *bool, deleted bool, linkedAt time.Time) {
	t.Helper()
	const q = `
INSERT INTO customers (stripe_customer_id, account_id, livemode, deleted, linked_via, linked_at)
VALUES ($1, $2, $3, $4, 'api', $5)`
	if _, err := st.DB().Exec(q, cus, acct, live, deleted, linkedAt); err != nil {
		t.Fatal(err)
	}
}

func boolPtr(v bool) *bool { return &v }

// TestCheckoutSessionSendsExactParameters: the fake records exactly what
// Stripe is asked: subscription mode, the price and quantity, the app's
// URLs, trial and promotion codes, a client_reference_id the webhook
// path's verifier accepts for this account, account_id in the session's
// and the subscription's metadata, the e-mail only when no customer is
// reused, and the app's Idempotency-Key.
func TestCheckoutSessionSendsExactParameters(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	verifier, err := b.st.LinkVerifier(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	b.fake.PutCustomer(stripefake.Customer{ID: "cus_Known", Created: time.Now()})
	seedCustomer(t, b.st, "cus_Known", "acct_known", boolPtr(false), false, time.Now())
	tests := []struct {
		name, acct, body, key string
		want                  map[string]string // every form field sent
	}{
		{"NewCustomerWithEmail", "acct_new",
			`{"price":"price_pro","quantity":3,"success_url":"https://app.example.com/billing/ok?s={CHECKOUT_SESSION_ID}","cancel_url":"https://app.example.com/billing","trial_period_days":14,"allow_promotion_codes":true,"customer_email":"` + stripefake.PersonalEmail + `"}`,
			"app-key-1", map[string]string{
				"mode": "subscription", "line_items[0][price]": "price_pro", "line_items[0][quantity]": "3",
				"success_url": "https://app.example.com/billing/ok?s={CHECKOUT_SESSION_ID}", "cancel_url": "https://app.example.com/billing",
				"subscription_data[trial_period_days]": "14", "allow_promotion_codes": "true",
				"customer_email": stripefake.PersonalEmail, "metadata[account_id]": "acct_new",
				"subscription_data[metadata][account_id]": "acct_new", "client_reference_id": "*"}},
		{"ReusedCustomerDropsEmail", "acct_known",
			`{"price":"price_team","success_url":"http://localhost:3000/done","cancel_url":"http://localhost:3000/","customer_email":"someone@example.org"}`,
			"app-key-2", map[string]string{
				"mode": "subscription", "line_items[0][price]": "price_team", "line_items[0][quantity]": "1",
				"success_url": "http://localhost:3000/done", "cancel_url": "http://localhost:3000/",
				"customer": "cus_Known", "metadata[account_id]": "acct_known",
				"subscription_data[metadata][account_id]": "acct_known", "client_reference_id": "*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.fake.ResetRequests()
			r := do(t, b.srv, http.MethodPost, "/v1/accounts/"+tt.acct+"/checkout-sessions", b.appTok, tt.body, "Idempotency-Key", tt.key)
			if r.status != 200 {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			got := decodeAnswer[checkoutAnswer](t, r)
			if !strings.HasPrefix(got.ID, "cs_test_") || got.URL != "https://checkout.stripe.com/c/pay/"+got.ID || got.Livemode ||
				got.ExpiresAt.Before(time.Now().Add(23*time.Hour)) {
				t.Errorf("answer %s", r.body)
			}
			posts := b.sessionPosts(checkoutPath)
			if len(posts) != 1 {
				t.Fatalf("%d checkout requests, want 1", len(posts))
			}
			p := posts[0]
			if p.IdempotencyKey != tt.key {
				t.Errorf("Idempotency-Key %q, want the app's %q", p.IdempotencyKey, tt.key)
			}
			for k, want := range tt.want {
				if v := p.Form[k]; len(v) != 1 || (want != "*" && v[0] != want) {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
			for k := range p.Form {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("unexpected parameter %s = %q", k, p.Form[k])
				}
			}
			assertInventoried(t, p.Form)
			ref := p.Form.Get("client_reference_id")
			acct, why := verifier.Verify(ref, time.Now().Add(24*time.Hour))
			if acct != tt.acct || why != billing.LinkAccepted {
				t.Errorf("client_reference_id %q verifies as %q %q, want %s", ref, acct, why, tt.acct)
			}
			if _, why := verifier.Verify(ref, time.Now().Add(73*time.Hour)); why != billing.LinkExpired {
				t.Errorf("reference still valid after 73 h: %q", why)
			}
		})
	}
}

// TestCheckoutSessionCustomerReuse: the account's customer in the key's
// mode is reused (the latest linked when several); a customer of the
// other mode or deleted is not; one of no known mode yet is asked of
// Stripe and reused when the key sees it.
func TestCheckoutSessionCustomerReuse(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	now := time.Now()
	for _, c := range []string{"cus_Old", "cus_New", "cus_Unknown"} {
		b.fake.PutCustomer(stripefake.Customer{ID: c, Created: now})
	}
	seedCustomer(t, b.st, "cus_Old", "acct_two", boolPtr(false), false, now.Add(-time.Hour))
	seedCustomer(t, b.st, "cus_New", "acct_two", boolPtr(false), false, now)
	seedCustomer(t, b.st, "cus_Live", "acct_live", boolPtr(true), false, now)
	seedCustomer(t, b.st, "cus_Deleted", "acct_deleted", boolPtr(false), true, now)
	seedCustomer(t, b.st, "cus_Unknown", "acct_unknown", nil, false, now)
	seedCustomer(t, b.st, "cus_Nowhere", "acct_nowhere", nil, false, now)
	tests := []struct {
		acct, customer string // "" : none sent, Checkout creates one
		asked          string // the customer Stripe was asked about first
	}{
		{"acct_two", "cus_New", ""},
		{"acct_live", "", ""},
		{"acct_deleted", "", ""},
		{"acct_unknown", "cus_Unknown", "cus_Unknown"},
		{"acct_nowhere", "", "cus_Nowhere"},
		{"acct_none", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.acct, func(t *testing.T) {
			b.fake.ResetRequests()
			r := do(t, b.srv, http.MethodPost, "/v1/accounts/"+tt.acct+"/checkout-sessions", b.appTok,
				`{"price":"price_pro","success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing/no"}`)
			if r.status != 200 {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			posts := b.sessionPosts(checkoutPath)
			if len(posts) != 1 || posts[0].Form.Get("customer") != tt.customer {
				t.Fatalf("customer sent %v, want %q", posts, tt.customer)
			}
			if n := b.fake.Count(http.MethodGet, "/v1/customers/"+tt.asked); tt.asked != "" && n != 1 {
				t.Errorf("Stripe asked %d times about %s, want once", n, tt.asked)
			}
		})
	}
}

// TestCheckoutSessionIdempotency: a retry with the same Idempotency-Key
// gets the same session and Stripe creates one (also when the retry comes
// after midnight UTC, when the reference billingd signs has changed); the
// same key for another request is 409; duplicates sent at once make one
// session; without a key each request gets its own generated one.
func TestCheckoutSessionIdempotency(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	body := `{"price":"price_pro","success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing/no"}`
	post := func(acct, body string, hdr ...string) result {
		return do(t, b.srv, http.MethodPost, "/v1/accounts/"+acct+"/checkout-sessions", b.appTok, body, hdr...)
	}
	first := post("acct_i", body, "Idempotency-Key", "order-42")
	again := post("acct_i", body, "Idempotency-Key", "order-42")
	if first.status != 200 || again.status != 200 || decodeAnswer[checkoutAnswer](t, first).ID != decodeAnswer[checkoutAnswer](t, again).ID {
		t.Fatalf("retry: %d %s then %d %s, want the same session", first.status, first.body, again.status, again.body)
	}
	if c, _ := b.fake.SessionsCreated(); c != 1 {
		t.Fatalf("Stripe created %d sessions, want 1", c)
	}

	// Tomorrow (UTC), within Stripe's 24 hours of idempotency.
	tomorrow := time.Now().Add(24 * time.Hour)
	b.clock.Store(&tomorrow)
	late := post("acct_i", body, "Idempotency-Key", "order-42")
	b.clock.Store(nil)
	if late.status != 200 || decodeAnswer[checkoutAnswer](t, late).ID != decodeAnswer[checkoutAnswer](t, first).ID {
		t.Fatalf("retry the next day: %d %s, want the first session", late.status, late.body)
	}
	if c, _ := b.fake.SessionsCreated(); c != 1 {
		t.Fatalf("Stripe created %d sessions, want 1", c)
	}
	// The next day's first attempt signs that day's expiry, which Stripe
	// refuses under the key; the repeat with the first day's is replayed.
	var statuses []int
	for _, p := range b.sessionPosts(checkoutPath) {
		if p.IdempotencyKey == "order-42" {
			statuses = append(statuses, p.Status)
		}
	}
	if fmt.Sprint(statuses) != "[200 200 400 200]" {
		t.Fatalf("Stripe answered %v under the key, want [200 200 400 200]", statuses)
	}

	other := post("acct_i", strings.Replace(body, "price_pro", "price_team", 1), "Idempotency-Key", "order-42")
	if other.status != 409 || other.code != "idempotency_key_reused" {
		t.Fatalf("same key, other request: %d %s", other.status, other.body)
	}

	// Duplicates at once (a double click, a retrying client): one session.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post("acct_burst", body, "Idempotency-Key", "burst-1")
			var a checkoutAnswer
			if r.status == 200 && json.Unmarshal(r.body, &a) == nil {
				ids[i] = a.ID
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("concurrent duplicates got sessions %v, want one", ids)
		}
	}
	if c, _ := b.fake.SessionsCreated(); c != 2 {
		t.Fatalf("Stripe created %d sessions, want 2", c)
	}

	b.fake.ResetRequests()
	for range 2 {
		if r := post("acct_j", body); r.status != 200 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	}
	posts := b.sessionPosts(checkoutPath)
	if len(posts) != 2 || posts[0].IdempotencyKey == "" || posts[0].IdempotencyKey == posts[1].IdempotencyKey {
		t.Fatalf("generated keys %q, want two distinct", []string{posts[0].IdempotencyKey, posts[1].IdempotencyKey})
	}
	if c, _ := b.fake.SessionsCreated(); c != 4 {
		t.Fatalf("Stripe created %d sessions, want 4", c)
	}
}

// TestCheckoutSessionRefusals: every malformed request and every URL
// outside APP_URL_ALLOWLIST is refused with its code before Stripe is
// asked anything.
func TestCheckoutSessionRefusals(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	ok := map[string]any{"price": "price_pro", "success_url": "https://app.example.com/billing/ok", "cancel_url": "https://app.example.com/billing"}
	with := func(k string, v any) string {
		m := map[string]any{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		j, _ := json.Marshal(m)
		return string(j)
	}
	valid := with("price", "price_pro")
	tests := []struct {
		name   string
		path   string
		body   string
		hdr    []string
		status int
		code   string
	}{
		{"ErrURLOtherHost", "", with("success_url", "https://evil.example.net/billing"), nil, 400, "url_not_allowed"},
		{"ErrURLHostSuffix", "", with("success_url", "https://app.example.com.evil.net/billing"), nil, 400, "url_not_allowed"},
		{"ErrURLPathPrefixOnly", "", with("success_url", "https://app.example.com/billing-evil"), nil, 400, "url_not_allowed"},
		{"ErrURLOutsidePath", "", with("cancel_url", "https://app.example.com/"), nil, 400, "url_not_allowed"},
		{"ErrURLUserinfo", "", with("success_url", "https://app.example.com@evil.net/billing"), nil, 400, "url_not_allowed"},
		{"ErrURLScheme", "", with("success_url", "http://app.example.com/billing"), nil, 400, "url_not_allowed"},
		{"ErrURLOtherPort", "", with("success_url", "http://localhost:3001/"), nil, 400, "url_not_allowed"},
		{"ErrURLJavascript", "", with("cancel_url", "javascript:alert(1)"), nil, 400, "invalid_url"},
		{"ErrURLRelative", "", with("success_url", "/billing"), nil, 400, "invalid_url"},
		{"ErrURLBackslash", "", with("success_url", `https://app.example.com\@evil.net/billing`), nil, 400, "invalid_url"},
		{"ErrURLMissing", "", with("cancel_url", nil), nil, 400, "invalid_url"},
		{"ErrURLTooLong", "", with("success_url", "https://app.example.com/billing/"+strings.Repeat("a", 2048)), nil, 400, "invalid_url"},
		{"ErrPriceMissing", "", with("price", nil), nil, 400, "invalid_price"},
		{"ErrPriceShape", "", with("price", "prod_x"), nil, 400, "invalid_price"},
		{"ErrPriceType", "", with("price", 7), nil, 400, "invalid_price"},
		{"ErrQuantityZero", "", with("quantity", 0), nil, 400, "invalid_quantity"},
		{"ErrQuantityHuge", "", with("quantity", 1_000_000), nil, 400, "invalid_quantity"},
		{"ErrQuantityFraction", "", with("quantity", 1.5), nil, 400, "invalid_quantity"},
		{"ErrTrialZero", "", with("trial_period_days", 0), nil, 400, "invalid_trial_period_days"},
		{"ErrTrialTooLong", "", with("trial_period_days", 731), nil, 400, "invalid_trial_period_days"},
		{"ErrPromotionNotBool", "", with("allow_promotion_codes", "yes"), nil, 400, "invalid_allow_promotion_codes"},
		{"ErrEmail", "", with("customer_email", "not an address"), nil, 400, "invalid_customer_email"},
		{"ErrUnknownField", "", with("customer", "cus_Steal"), nil, 400, "invalid_json"},
		{"ErrNotJSON", "", `price=price_pro`, nil, 400, "invalid_json"},
		{"ErrEmptyBody", "", ``, nil, 400, "invalid_json"},
		{"ErrTwoObjects", "", valid + valid, nil, 400, "invalid_json"},
		{"ErrBodyTooLarge", "", with("customer_email", strings.Repeat("a", 5000)+"@example.org"), nil, 413, "body_too_large"},
		{"ErrIdempotencyKeyTooLong", "", valid, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_idempotency_key"},
		{"ErrIdempotencyKeySpace", "", valid, []string{"Idempotency-Key", "a b"}, 400, "invalid_idempotency_key"},
		{"ErrLivemodeValue", "?livemode=yes", valid, nil, 400, "invalid_livemode"},
		{"ErrLivemodeMismatch", "?livemode=true", valid, nil, 409, "livemode_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.fake.ResetRequests()
			r := do(t, b.srv, http.MethodPost, "/v1/accounts/acct_r/checkout-sessions"+tt.path, b.appTok, tt.body, tt.hdr...)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (%s)", r.status, r.code, tt.status, tt.code, r.body)
			}
			if n := len(b.sessionPosts(checkoutPath)); n != 0 {
				t.Errorf("Stripe was asked to create %d sessions", n)
			}
		})
	}
	if r := do(t, b.srv, http.MethodPost, "/v1/accounts/acct_r/checkout-sessions?livemode=false", b.appTok, valid); r.status != 200 {
		t.Fatalf("the valid request with the key's mode: %d %s", r.status, r.body)
	}
}

// TestCheckoutSessionAlreadySubscribed: 409 when an entitled subscription
// of the account (in the key's mode) has the price's product, unless
// allow_multiple; a canceled one, another product or the other mode do
// not count.
func TestCheckoutSessionAlreadySubscribed(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	now := time.Now().UTC().Truncate(time.Second)
	for _, c := range []string{"cus_Sub", "cus_Gone"} {
		b.fake.PutCustomer(stripefake.Customer{ID: c, Created: now})
	}
	seedSub(t, b.st, "cus_Sub", "acct_sub", "sub_Active", false, billing.StatusActive, "price_pro_yearly", now.Add(-time.Hour), now.Add(720*time.Hour))
	seedSub(t, b.st, "cus_Gone", "acct_gone", "sub_Canceled", false, billing.StatusCanceled, "price_pro", now.Add(-time.Hour), now.Add(720*time.Hour))
	seedSub(t, b.st, "cus_LiveSub", "acct_livesub", "sub_Live", true, billing.StatusActive, "price_pro", now.Add(-time.Hour), now.Add(720*time.Hour))
	tests := []struct {
		name, acct, price string
		multiple          bool
		status            int
		code              string
	}{
		{"ErrSameProduct", "acct_sub", "price_pro", false, 409, "already_subscribed"},
		{"AllowMultiple", "acct_sub", "price_pro", true, 200, ""},
		{"OtherProduct", "acct_sub", "price_team", false, 200, ""},
		{"CanceledDoesNotCount", "acct_gone", "price_pro", false, 200, ""},
		{"OtherModeDoesNotCount", "acct_livesub", "price_pro", false, 200, ""},
		{"ErrPriceNotFound", "acct_new", "price_nope", false, 400, "price_not_found"},
		{"ErrOneTimePrice", "acct_new", "price_once", false, 400, "price_not_recurring"},
		{"ErrArchivedPrice", "acct_new", "price_old", false, 400, "price_inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.fake.ResetRequests()
			body := fmt.Sprintf(`{"price":%q,"allow_multiple":%v,"success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing"}`, tt.price, tt.multiple)
			r := do(t, b.srv, http.MethodPost, "/v1/accounts/"+tt.acct+"/checkout-sessions", b.appTok, body)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (%s)", r.status, r.code, tt.status, tt.code, r.body)
			}
			if n := len(b.sessionPosts(checkoutPath)); (n == 1) != (tt.status == 200) {
				t.Errorf("%d sessions requested with answer %d", n, r.status)
			}
		})
	}
	if c, r := b.sessionCount(t, "checkout", "created"), b.sessionCount(t, "checkout", "already_subscribed"); c != 4 || r != 1 {
		t.Errorf("billingd_app_sessions_total: created %v, already_subscribed %v; want 4, 1", c, r)
	}
}

// TestCheckoutSessionStripeFailures: 503 with Retry-After when a retry
// can succeed (Stripe down, rate limited), 502 when it cannot (the key is
// refused); Stripe's messages reach neither the app nor the log.
func TestCheckoutSessionStripeFailures(t *testing.T) {
	t.Parallel()
	body := `{"price":"price_pro","success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing","customer_email":"` + stripefake.PersonalEmail + `"}`
	tests := []struct {
		name   string
		key    string
		break_ func(*stripefake.Server)
		status int
		code   string
		retry  bool
	}{
		{"Down", "", func(f *stripefake.Server) { f.Down(true) }, 503, "stripe_unavailable", true},
		{"RateLimited", "", func(f *stripefake.Server) { f.RateLimit(5) }, 503, "stripe_unavailable", true},
		{"KeyRefused", "sk_test_revoked", func(*stripefake.Server) {}, 502, "stripe_error", false},
		{"RefusedForGood", "", func(f *stripefake.Server) { f.FailAfter(1) }, 502, "stripe_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupCheckout(t, tt.key)
			tt.break_(b.fake)
			r := do(t, b.srv, http.MethodPost, "/v1/accounts/acct_f/checkout-sessions", b.appTok, body)
			if r.status != tt.status || r.code != tt.code || (r.header.Get("Retry-After") != "") != tt.retry {
				t.Fatalf("got %d %q Retry-After %q, want %d %q retry=%v", r.status, r.code, r.header.Get("Retry-After"), tt.status, tt.code, tt.retry)
			}
			for _, s := range []string{string(r.body), b.logs.String()} {
				if strings.Contains(s, "the fake was told") || strings.Contains(s, "Invalid API Key") || strings.Contains(s, stripefake.PersonalEmail) {
					t.Errorf("Stripe's message or the e-mail leaked: %s", s)
				}
			}
		})
	}
}

// TestCheckoutSessionKeepsNoPersonalData: customer_email goes to Stripe
// and nowhere else: not the database, not a log line (debug included),
// not an error message.
func TestCheckoutSessionKeepsNoPersonalData(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	body := `{"price":"price_pro","success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing","customer_email":"` + stripefake.PersonalEmail + `"}`
	if r := do(t, b.srv, http.MethodPost, "/v1/accounts/acct_p/checkout-sessions", b.appTok, body); r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	bad := strings.Replace(body, "@analytical", " at analytical", 1)
	r := do(t, b.srv, http.MethodPost, "/v1/accounts/acct_p/checkout-sessions", b.appTok, bad)
	if r.code != "invalid_customer_email" || strings.Contains(string(r.body), "lovelace") {
		t.Fatalf("refusal %d %s", r.status, r.body)
	}
	if posts := b.sessionPosts(checkoutPath); len(posts) != 1 || posts[0].Form.Get("customer_email") != stripefake.PersonalEmail {
		t.Fatalf("Stripe did not get the e-mail: %v", posts)
	}
	if strings.Contains(b.logs.String(), "lovelace") {
		t.Errorf("the e-mail is in the log:\n%s", b.logs)
	}
	if b.logs.String() == "" {
		t.Error("no log at all: the check above proves nothing")
	}
	if dump := dumpTables(t, b.st); strings.Contains(dump, "lovelace") {
		t.Error("the e-mail is in the database")
	}
}

// dumpTables returns every row of every table as text.
func dumpTables(t *testing.T, st *postgres.Store) string {
	t.Helper()
	cols, err := st.SchemaColumns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for table := range cols {
		var rows []string
		// Table names come from the catalog, not from input.
		if err := st.DB().Select(&rows, fmt.Sprintf(`SELECT t::text FROM %q t`, table)); err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(rows, "\n"))
	}
	return b.String()
}

// TestCheckoutSessionLinksThroughWebhook: the checkout.session.completed
// event of a session billingd created links the new customer to the
// account through the ordinary webhook path (signed reference verified).
// An erased account gets no session at all.
func TestCheckoutSessionLinksThroughWebhook(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	ctx := context.Background()
	r := do(t, b.srv, http.MethodPost, "/v1/accounts/acct_paid/checkout-sessions", b.appTok,
		`{"price":"price_pro","success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing"}`)
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	ref := b.sessionPosts(checkoutPath)[0].Form.Get("client_reference_id")
	links, err := b.st.LinkVerifier(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	h, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{webhookstest.Secret}, Store: b.st, Log: slog.New(slog.DiscardHandler), Links: links})
	if err != nil {
		t.Fatal(err)
	}
	fx := webhookstest.FixtureNamed(t, "v2023_20_checkout.session.completed")
	var ev map[string]any
	if err := json.Unmarshal(fx.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	obj := ev["data"].(map[string]any)["object"].(map[string]any)
	obj["client_reference_id"] = ref
	ev["created"] = time.Now().Unix()
	payload, _ := json.Marshal(ev)
	if resp := webhookstest.Post(t, h, webhookstest.Secret, payload); resp.Status != 200 {
		t.Fatalf("webhook answered %d %s", resp.Status, resp.Body)
	}
	var acct *string
	if err := b.st.DB().Get(&acct, `SELECT account_id FROM customers WHERE stripe_customer_id = $1`, obj["customer"]); err != nil || acct == nil || *acct != "acct_paid" {
		t.Fatalf("customer linked to %v (%v), want acct_paid", acct, err)
	}

	if _, err := b.st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_paid", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	b.fake.ResetRequests()
	r = do(t, b.srv, http.MethodPost, "/v1/accounts/acct_paid/checkout-sessions", b.appTok,
		`{"price":"price_pro","success_url":"https://app.example.com/billing/ok","cancel_url":"https://app.example.com/billing"}`)
	if r.status != 409 || r.code != "account_erased" || len(b.fake.Requests()) != 0 {
		t.Fatalf("erased account: %d %s, %d Stripe requests", r.status, r.body, len(b.fake.Requests()))
	}
}

// TestPortalSession: the portal opens for the account's customer in the
// key's mode (404 no_customer without one), with the app's return URL and
// configuration; the subscription flows name the account's entitled
// subscription and its customer, or the one the app names if the
// account's; refusals are precise.
func TestPortalSession(t *testing.T) {
	t.Parallel()
	b := setupCheckout(t, "")
	now := time.Now().UTC().Truncate(time.Second)
	b.fake.PutPortalConfiguration("bpc_Custom")
	for _, c := range []string{"cus_P", "cus_Other"} {
		b.fake.PutCustomer(stripefake.Customer{ID: c, Created: now})
	}
	seedSub(t, b.st, "cus_P", "acct_p", "sub_P", false, billing.StatusActive, "price_pro", now.Add(-time.Hour), now.Add(720*time.Hour))
	seedSub(t, b.st, "cus_P", "acct_p", "sub_POld", false, billing.StatusCanceled, "price_pro", now.Add(-time.Hour), now.Add(720*time.Hour))
	seedSub(t, b.st, "cus_Other", "acct_other", "sub_Other", false, billing.StatusActive, "price_pro", now.Add(-time.Hour), now.Add(720*time.Hour))
	for _, st := range []*stripefake.Subscription{{ID: "sub_P", CustomerID: "cus_P", Status: "active"}, {ID: "sub_Other", CustomerID: "cus_Other", Status: "active"}} {
		b.fake.PutSubscription(*st)
	}
	seedCustomer(t, b.st, "cus_Free", "acct_free", boolPtr(false), false, now)
	b.fake.PutCustomer(stripefake.Customer{ID: "cus_Free", Created: now})
	seedCustomer(t, b.st, "cus_LiveOnly", "acct_live", boolPtr(true), false, now)
	const ret = `"return_url":"https://app.example.com/billing/account"`
	tests := []struct {
		name, acct, body string
		status           int
		code             string
		want             map[string]string
	}{
		{"Plain", "acct_p", `{` + ret + `}`, 200, "", map[string]string{"customer": "cus_P", "return_url": "https://app.example.com/billing/account"}},
		{"Configuration", "acct_p", `{` + ret + `,"configuration":"bpc_Custom"}`, 200, "",
			map[string]string{"customer": "cus_P", "return_url": "https://app.example.com/billing/account", "configuration": "bpc_Custom"}},
		{"PaymentMethodFlow", "acct_free", `{` + ret + `,"flow":"payment_method_update"}`, 200, "",
			map[string]string{"customer": "cus_Free", "return_url": "https://app.example.com/billing/account", "flow_data[type]": "payment_method_update",
				"flow_data[after_completion][type]": "redirect", "flow_data[after_completion][redirect][return_url]": "https://app.example.com/billing/account"}},
		{"CancelFlowPicksEntitled", "acct_p", `{` + ret + `,"flow":"subscription_cancel"}`, 200, "",
			map[string]string{"customer": "cus_P", "return_url": "https://app.example.com/billing/account", "flow_data[type]": "subscription_cancel",
				"flow_data[subscription_cancel][subscription]": "sub_P", "flow_data[after_completion][type]": "redirect",
				"flow_data[after_completion][redirect][return_url]": "https://app.example.com/billing/account"}},
		{"UpdateFlowNamed", "acct_p", `{` + ret + `,"flow":"subscription_update","subscription":"sub_P"}`, 200, "",
			map[string]string{"customer": "cus_P", "return_url": "https://app.example.com/billing/account", "flow_data[type]": "subscription_update",
				"flow_data[subscription_update][subscription]": "sub_P", "flow_data[after_completion][type]": "redirect",
				"flow_data[after_completion][redirect][return_url]": "https://app.example.com/billing/account"}},
		{"ErrNoCustomer", "acct_none", `{` + ret + `}`, 404, "no_customer", nil},
		{"ErrNoCustomerInMode", "acct_live", `{` + ret + `}`, 404, "no_customer", nil},
		{"ErrOtherAccountsSubscription", "acct_p", `{` + ret + `,"flow":"subscription_cancel","subscription":"sub_Other"}`, 409, "no_subscription", nil},
		{"ErrCanceledSubscription", "acct_p", `{` + ret + `,"flow":"subscription_cancel","subscription":"sub_POld"}`, 409, "no_subscription", nil},
		{"ErrNoSubscriptionToCancel", "acct_free", `{` + ret + `,"flow":"subscription_cancel"}`, 409, "no_subscription", nil},
		{"ErrSubscriptionWithoutFlow", "acct_p", `{` + ret + `,"subscription":"sub_P"}`, 400, "invalid_subscription", nil},
		{"ErrUnknownConfiguration", "acct_p", `{` + ret + `,"configuration":"bpc_Nope"}`, 400, "configuration_not_found", nil},
		{"ErrConfigurationShape", "acct_p", `{` + ret + `,"configuration":"cfg_1"}`, 400, "invalid_configuration", nil},
		{"ErrFlow", "acct_p", `{` + ret + `,"flow":"subscription_pause"}`, 400, "invalid_flow", nil},
		{"ErrEmptyFlow", "acct_p", `{` + ret + `,"flow":""}`, 400, "invalid_flow", nil},
		{"ErrReturnURL", "acct_p", `{"return_url":"https://evil.example.net/"}`, 400, "url_not_allowed", nil},
		{"ErrReturnURLMissing", "acct_p", `{}`, 400, "invalid_url", nil},
		{"ErrUnknownField", "acct_p", `{` + ret + `,"customer":"cus_Other"}`, 400, "invalid_json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.fake.ResetRequests()
			r := do(t, b.srv, http.MethodPost, "/v1/accounts/"+tt.acct+"/portal-sessions", b.appTok, tt.body, "Idempotency-Key", "portal-"+tt.name)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (%s)", r.status, r.code, tt.status, tt.code, r.body)
			}
			posts := b.sessionPosts(portalPath)
			if tt.want == nil {
				if len(posts) != 0 && tt.code != "configuration_not_found" {
					t.Errorf("Stripe was asked %d times", len(posts))
				}
				return
			}
			got := decodeAnswer[struct {
				URL      string `json:"url"`
				Livemode bool   `json:"livemode"`
			}](t, r)
			if !strings.HasPrefix(got.URL, "https://billing.stripe.com/p/session/test_") || got.Livemode {
				t.Errorf("answer %s", r.body)
			}
			if len(posts) != 1 || posts[0].IdempotencyKey != "portal-"+tt.name {
				t.Fatalf("requests %+v", posts)
			}
			assertInventoried(t, posts[0].Form)
			if !sameForm(posts[0].Form, tt.want) {
				t.Errorf("sent %v, want exactly %v", posts[0].Form, tt.want)
			}
		})
	}
}

// assertInventoried fails for a parameter sent to Stripe that the privacy
// inventory does not list (internal/privacy/processors.go).
func assertInventoried(t *testing.T, f url.Values) {
	t.Helper()
	declared := map[string]bool{}
	for _, p := range privacy.Processors() {
		if p.Name == "Stripe" {
			for _, fd := range p.Receives {
				declared[fd.Name] = true
			}
		}
	}
	for k := range f {
		if !declared[k] {
			t.Errorf("Stripe receives %q, which the privacy inventory does not list", k)
		}
	}
}

func sameForm(f url.Values, want map[string]string) bool {
	if len(f) != len(want) {
		return false
	}
	for k, v := range want {
		if len(f[k]) != 1 || f[k][0] != v {
			return false
		}
	}
	return true
}

// TestSessionsNotConfigured: without a Stripe client or an allowlist the
// endpoints say so (503, no Retry-After: only configuration fixes it);
// scope and account ID are checked as on every app endpoint.
func TestSessionsNotConfigured(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	for _, path := range []string{"/v1/accounts/acct_1/checkout-sessions", "/v1/accounts/acct_1/portal-sessions"} {
		r := do(t, b.srv, http.MethodPost, path, b.appTok, `{}`)
		if r.status != 503 || r.code != "checkout_not_configured" || r.header.Get("Retry-After") != "" {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
		if r := do(t, b.srv, http.MethodPost, path, b.finTok, `{}`); r.status != 403 {
			t.Errorf("%s with a finance token: %d", path, r.status)
		}
		if r := do(t, b.srv, http.MethodPost, strings.Replace(path, "acct_1", "acct!", 1), b.appTok, `{}`); r.code != "invalid_account_id" {
			t.Errorf("%s with a bad account ID: %d %s", path, r.status, r.body)
		}
	}
}
