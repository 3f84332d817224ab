package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// TestLinkErasedAccount: PUT .../billing on an erased account is
// 409 account_erased; with "reuse_erased_account": true it links (201,
// audited with the token's name), the account is entitled again, and
// later links need no flag.
func TestLinkErasedAccount(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	seedSub(t, b.st, "cus_Gone", "acct_gone", "sub_G", true, billing.StatusActive, "price_pro", now, now.Add(time.Hour))
	if _, err := b.st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_gone", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	seedSub(t, b.st, "cus_NewHolder", "", "sub_N", true, billing.StatusActive, "price_pro", now, now.Add(time.Hour))
	entitled := func(t *testing.T) bool {
		t.Helper()
		var got entitlementBody
		r := do(t, b.srv, http.MethodGet, "/v1/accounts/acct_gone/entitlement", b.appTok, "")
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		return got.Entitled
	}
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"ErrAccountErased", `{"stripe_customer_id":"cus_NewHolder"}`, 409, "account_erased"},
		{"ErrAccountErasedFlagFalse", `{"stripe_customer_id":"cus_NewHolder","reuse_erased_account":false}`, 409, "account_erased"},
		{"ErrReuseFlagNotBool", `{"stripe_customer_id":"cus_NewHolder","reuse_erased_account":"yes"}`, 400, "invalid_json"},
		{"ReuseExplicit", `{"stripe_customer_id":"cus_NewHolder","reuse_erased_account":true}`, 201, ""},
		{"LaterLinkNeedsNoFlag", `{"stripe_customer_id":"cus_Third"}`, 201, ""},
	}
	for _, tt := range tests { // in order
		t.Run(tt.name, func(t *testing.T) {
			if tt.status == 409 && entitled(t) {
				t.Fatal("the erased account is entitled")
			}
			r := do(t, b.srv, http.MethodPut, "/v1/accounts/acct_gone/billing", b.appTok, tt.body)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (body %s)", r.status, r.code, tt.status, tt.code, r.body)
			}
			if tt.name == "ReuseExplicit" {
				var body map[string]any
				if err := json.Unmarshal(r.body, &body); err != nil || body["reused_erased_account"] != true {
					t.Fatalf("answer does not confirm the reuse: %s", r.body)
				}
			}
		})
	}
	if !entitled(t) {
		t.Fatal("the reused account's new customer does not entitle it")
	}
	var audits []string
	if err := b.st.DB().Select(&audits, `SELECT actor FROM audit_log WHERE action = $1`, postgres.AuditActionReuse); err != nil {
		t.Fatal(err)
	}
	if len(audits) != 1 || audits[0] != "backend" {
		t.Fatalf("reuse audit entries by %v, want one by the token backend", audits)
	}
}

// TestLinkReferenceEndpoint: POST .../link-reference answers a reference
// the webhook path accepts and its expiry (48 h by default, ttl_seconds
// otherwise); 409 for an erased account; scope, account ID and body are
// checked like every app endpoint.
func TestLinkReferenceEndpoint(t *testing.T) {
	t.Parallel()
	b := setupApp(t)
	ctx := context.Background()
	if _, err := b.st.EraseAccount(ctx, billing.ErasureRequest{AccountID: "acct_gone", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	verifier, err := b.st.LinkVerifier(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		token  string
		body   string
		status int
		code   string
		ttl    time.Duration
	}{
		{"DefaultTTL", "/v1/accounts/acct_1/link-reference", b.appTok, "", 200, "", billing.DefaultLinkReferenceTTL},
		{"EmptyObject", "/v1/accounts/acct_1/link-reference", b.appTok, `{}`, 200, "", billing.DefaultLinkReferenceTTL},
		{"OwnTTL", "/v1/accounts/acct.with:dots_1/link-reference", b.appTok, `{"ttl_seconds":3600}`, 200, "", time.Hour},
		{"ErrTTLTooShort", "/v1/accounts/acct_1/link-reference", b.appTok, `{"ttl_seconds":59}`, 400, "invalid_ttl", 0},
		{"ErrTTLTooLong", "/v1/accounts/acct_1/link-reference", b.appTok, `{"ttl_seconds":604801}`, 400, "invalid_ttl", 0},
		{"ErrUnknownField", "/v1/accounts/acct_1/link-reference", b.appTok, `{"ttl":3600}`, 400, "invalid_json", 0},
		{"ErrTrailingData", "/v1/accounts/acct_1/link-reference", b.appTok, `{} {}`, 400, "invalid_json", 0},
		{"ErrAccountErased", "/v1/accounts/acct_gone/link-reference", b.appTok, "", 409, "account_erased", 0},
		{"ErrBadAccountID", "/v1/accounts/acct!/link-reference", b.appTok, "", 400, "invalid_account_id", 0},
		{"ErrNoToken", "/v1/accounts/acct_1/link-reference", "", "", 401, "unauthorized", 0},
		{"ErrFinanceScope", "/v1/accounts/acct_1/link-reference", b.finTok, "", 403, "forbidden", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			r := do(t, b.srv, http.MethodPost, tt.path, tt.token, tt.body)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q (body %s)", r.status, r.code, tt.status, tt.code, r.body)
			}
			if tt.status != 200 {
				return
			}
			var got struct {
				AccountID         string    `json:"account_id"`
				ClientReferenceID string    `json:"client_reference_id"`
				ExpiresAt         time.Time `json:"expires_at"`
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.ExpiresAt.Before(before.Add(tt.ttl-time.Second)) || got.ExpiresAt.After(time.Now().Add(tt.ttl)) {
				t.Errorf("expires_at %s, want about %s from now", got.ExpiresAt, tt.ttl)
			}
			if acct, why := verifier.Verify(got.ClientReferenceID, got.ExpiresAt); acct != got.AccountID || why != billing.LinkAccepted {
				t.Errorf("reference %q: %q %q", got.ClientReferenceID, acct, why)
			}
			if _, why := verifier.Verify(got.ClientReferenceID, got.ExpiresAt.Add(time.Second)); why != billing.LinkExpired {
				t.Errorf("reference after its expiry: %q", why)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
			}
		})
	}
}
