package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// exportBundle is an API over a fresh database with the webhook endpoint
// and the export, and a token of each scope.
type exportBundle struct {
	st     *postgres.Store
	srv    *httptest.Server
	appTok string
	finTok string
}

func setupExport(t *testing.T) exportBundle {
	t.Helper()
	st := pgtest.Open(t)
	wh, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{webhookstest.Secret}, Store: st, Log: slog.New(slog.DiscardHandler), Links: webhookstest.Links()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&api.Server{Log: slog.New(slog.DiscardHandler), Tokens: st, Exporter: st, Eraser: st, Webhooks: wh}).Handler())
	t.Cleanup(srv.Close)
	return exportBundle{st: st, srv: srv,
		appTok: mintToken(t, st, "backend", billing.ScopeApp),
		finTok: mintToken(t, st, "finance-team", billing.ScopeFinance)}
}

// get returns the status and body of GET path with token (none if "").
func (b exportBundle) get(t *testing.T, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// exportOf decodes an export answer, failing unless it is a 200.
func (b exportBundle) exportOf(t *testing.T, accountID string) (billing.AccountExport, string) {
	t.Helper()
	code, body := b.get(t, http.MethodGet, "/v1/accounts/"+accountID+"/export", b.appTok)
	if code != http.StatusOK {
		t.Fatalf("export %s: %d %s", accountID, code, body)
	}
	var exp billing.AccountExport
	if err := json.Unmarshal([]byte(body), &exp); err != nil {
		t.Fatalf("export %s: %v", accountID, err)
	}
	return exp, body
}

// fixtureAccounts are the accounts the webhook fixtures link, with the
// Stripe IDs each owns. acct_life_1's customer is deleted in Stripe by the
// last of its fixtures, which removes its link; what billingd still holds
// about it stays in the account's export (found by the keyed hash of its
// former account), with account_id null and deleted true.
var fixtureAccounts = []struct {
	account  string
	customer string
	sub      string
	currency string
	linked   bool
	pending  string // a subscription with invoice facts but no state yet
}{
	{"acct_life_1", "cus_PiiLife1", "sub_PiiLife1", "usd", false, ""},
	{"acct_kenji_2", "cus_PiiKenji2", "sub_PiiKenjiJpy2", "jpy", true, ""},
	{"acct_meter_3", "cus_PiiMeter3", "sub_PiiMetered3", "", true, ""},
	{"acct_basil_4", "cus_PiiBasil4", "sub_PiiBasil4", "", true, "sub_PiiNeverSeen"},
}

// After every webhook fixture (full of fake personal data) is applied, each
// account's export holds its own IDs and billing facts, none of the
// fixtures' personal strings, and nothing of any other account.
func TestAccountExportAfterFixtures(t *testing.T) {
	t.Parallel()
	b := setupExport(t)
	webhookstest.ReplayFixtures(t, b.srv.URL, webhookstest.Secret)
	exports := map[string]billing.AccountExport{}
	bodies := map[string]string{}
	for _, fa := range fixtureAccounts {
		exports[fa.account], bodies[fa.account] = b.exportOf(t, fa.account)
	}
	for _, fa := range fixtureAccounts {
		t.Run(fa.account, func(t *testing.T) {
			exp, body := exports[fa.account], bodies[fa.account]
			if exp.AccountID != fa.account {
				t.Errorf("account_id = %q", exp.AccountID)
			}
			if pii := webhookstest.FindPII(t, body); len(pii) > 0 {
				t.Errorf("export holds fixture personal data: %q", pii)
			}
			if !fa.linked {
				if len(exp.Customers) != 1 || exp.Customers[0].StripeCustomerID != fa.customer ||
					exp.Customers[0].AccountID != nil || !exp.Customers[0].Deleted || len(exp.Subscriptions) != 1 {
					t.Errorf("Stripe-deleted customer's export = %s, want its customer (unlinked, deleted) and subscription", body)
				}
				return
			}
			if len(exp.Customers) != 1 || exp.Customers[0].StripeCustomerID != fa.customer || exp.Customers[0].AccountID == nil || *exp.Customers[0].AccountID != fa.account {
				t.Fatalf("customers = %+v, want the one link to %s", exp.Customers, fa.customer)
			}
			ref := exp.Customers[0].CustomerRef
			var found bool
			for _, s := range exp.Subscriptions {
				found = found || s.StripeSubscriptionID == fa.sub
				if s.StripeCustomerID != fa.customer || s.CustomerRef != ref || s.Status == "" || len(s.Items) == 0 {
					t.Errorf("subscription %+v is not a fact of %s", s, fa.customer)
				}
				if fa.currency != "" && s.Currency != fa.currency {
					t.Errorf("subscription %s currency %q, want %q", s.StripeSubscriptionID, s.Currency, fa.currency)
				}
			}
			if !found {
				t.Errorf("subscriptions lack %s", fa.sub)
			}
			var pending []string
			for _, p := range exp.PendingInvoices {
				pending = append(pending, p.StripeSubscriptionID)
				if p.StripeCustomerID != fa.customer {
					t.Errorf("pending invoice fact %+v is not %s's", p, fa.customer)
				}
			}
			if fa.pending != "" && (len(pending) != 1 || pending[0] != fa.pending) {
				t.Errorf("pending invoice facts for %v, want %s", pending, fa.pending)
			}
			if len(exp.SubscriptionHistory) == 0 || len(exp.Movements) == 0 {
				t.Errorf("history %d rows, movements %d; want both", len(exp.SubscriptionHistory), len(exp.Movements))
			}
			for _, v := range exp.SubscriptionHistory {
				if v.CustomerRef != ref {
					t.Errorf("history row %d is another customer's", v.ID)
				}
			}
			for _, m := range exp.Movements {
				if m.CustomerRef != ref {
					t.Errorf("movement %d is another customer's", m.ID)
				}
			}
			for _, a := range exp.Activity {
				if a.CustomerRef != ref {
					t.Errorf("activity %d is another customer's", a.ID)
				}
			}
			// Nothing of another account: its IDs, nor its refs.
			for _, other := range fixtureAccounts {
				if other.account == fa.account {
					continue
				}
				others := []string{other.account, other.customer, other.sub}
				if other.pending != "" {
					others = append(others, other.pending)
				}
				for _, c := range exports[other.account].Customers {
					others = append(others, c.CustomerRef)
				}
				for _, s := range exports[other.account].Subscriptions {
					others = append(others, s.SubscriptionRef)
				}
				for _, x := range others {
					if strings.Contains(body, x) {
						t.Errorf("export of %s mentions %s of %s", fa.account, x, other.account)
					}
				}
			}
			for _, x := range []string{"cus_PiiConnected", "sub_PiiConnected"} {
				if strings.Contains(body, x) {
					t.Errorf("export mentions %s", x)
				}
			}
		})
	}
}

// After erasure the export holds no link, subscription, history, movement
// or activity: nothing ties the account to Stripe or its revenue any more.
// What remains is the audit record of the erasure itself (counts, actor,
// time; no IDs), which billingd keeps and so must report.
func TestAccountExportAfterErasure(t *testing.T) {
	t.Parallel()
	b := setupExport(t)
	webhookstest.ReplayFixtures(t, b.srv.URL, webhookstest.Secret)
	before, _ := b.exportOf(t, "acct_basil_4")
	if len(before.Customers) == 0 {
		t.Fatal("fixtures did not link acct_basil_4")
	}
	if code, body := b.get(t, http.MethodDelete, "/v1/accounts/acct_basil_4", b.appTok); code != http.StatusNoContent {
		t.Fatalf("erase: %d %s", code, body)
	}
	exp, body := b.exportOf(t, "acct_basil_4")
	if len(exp.Customers)+len(exp.Subscriptions)+len(exp.PendingInvoices)+len(exp.SubscriptionHistory)+len(exp.Movements)+len(exp.Activity) != 0 {
		t.Errorf("export after erasure holds billing data: %s", body)
	}
	if len(exp.Audit) != 1 || exp.Audit[0].Actor != "backend" {
		t.Errorf("audit = %+v, want exactly the erasure record", exp.Audit)
	}
	for _, x := range []string{"cus_PiiBasil4", "sub_PiiBasil4", "sub_PiiNeverSeen", before.Customers[0].CustomerRef} {
		if strings.Contains(body, x) {
			t.Errorf("export after erasure mentions %s", x)
		}
	}
	t.Run("OtherAccountsUntouched", func(t *testing.T) {
		if exp, _ := b.exportOf(t, "acct_kenji_2"); len(exp.Customers) != 1 {
			t.Errorf("acct_kenji_2 customers = %+v", exp.Customers)
		}
	})
}

func TestAccountExportStatus(t *testing.T) {
	t.Parallel()
	b := setupExport(t)
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		status int
		code   string
	}{
		{"NoToken", http.MethodGet, "/v1/accounts/acct_1/export", "", http.StatusUnauthorized, "unauthorized"},
		{"BadToken", http.MethodGet, "/v1/accounts/acct_1/export", "app_not-a-real-token", http.StatusUnauthorized, "unauthorized"},
		{"FinanceScope", http.MethodGet, "/v1/accounts/acct_1/export", b.finTok, http.StatusForbidden, "forbidden"},
		{"InvalidAccountID", http.MethodGet, "/v1/accounts/bad%20id/export", b.appTok, http.StatusBadRequest, "invalid_account_id"},
		{"AccountIDTooLong", http.MethodGet, "/v1/accounts/" + strings.Repeat("a", 129) + "/export", b.appTok, http.StatusBadRequest, "invalid_account_id"},
		{"WrongMethod", http.MethodPost, "/v1/accounts/acct_1/export", b.appTok, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"UnknownAccount", http.MethodGet, "/v1/accounts/acct_nobody/export", b.appTok, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := b.get(t, tt.method, tt.path, tt.token)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, body)
			}
			if tt.code != "" {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
					t.Errorf("body %s, want error code %q with a message", body, tt.code)
				}
				return
			}
			var exp billing.AccountExport
			if err := json.Unmarshal([]byte(body), &exp); err != nil || exp.AccountID != "acct_nobody" || !exp.Empty() {
				t.Errorf("unknown account: %s, want an empty export", body)
			}
			for _, section := range []string{`"customers":[]`, `"subscriptions":[]`, `"movements":[]`, `"audit":[]`} {
				if !strings.Contains(body, section) {
					t.Errorf("unknown account's export lacks %s", section)
				}
			}
		})
	}
}

// The export names Stripe IDs: no cache may keep it.
func TestAccountExportNotCached(t *testing.T) {
	t.Parallel()
	b := setupExport(t)
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/v1/accounts/acct_1/export", nil)
	req.Header.Set("Authorization", "Bearer "+b.appTok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}
