package profitwelltest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that keeps Errorf calls instead of failing, so
// these tests can show the fake fails a test when it should.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

func TestFakeChecksContractAndPrivacy(t *testing.T) {
	t.Parallel()
	alias := strings.Repeat("a", 36)
	good := `{"user_alias":"` + alias + `","subscription_alias":"` + alias + `","email":"` + alias +
		`","plan_id":"price_1","plan_interval":"month","plan_currency":"usd","status":"active","value":1000,"effective_date":1700000000}`
	tests := []struct {
		name, method, path, token, body string
		wantStatus                      int
		wantViolation                   bool
	}{
		{"OKCreate", "POST", "/v2/subscriptions/", Token, good, 201, false},
		{"OKStatus", "GET", "/v2/api-status/", Token, "", 200, false},
		{"BearerTokenRefused", "GET", "/v2/api-status/", "Bearer " + Token, "", 401, false},
		{"EmailAddress", "POST", "/v2/subscriptions/", Token, strings.Replace(good, `"email":"`+alias, `"email":"jane@example.com`, 1), 400, true},
		{"StripeCustomerID", "POST", "/v2/subscriptions/", Token, strings.Replace(good, "price_1", "cus_Abc123", 1), 400, true},
		{"ForbiddenFixtureString", "POST", "/v2/subscriptions/", Token, strings.Replace(good, "price_1", "price_Piiperson", 1), 400, true},
		{"AccountIDInPath", "DELETE", "/v2/users/acct_life_1/", Token, "", 400, true},
		{"NoTrailingSlash", "GET", "/v2/api-status", Token, "", 404, true},
		{"WeeklyInterval", "POST", "/v2/subscriptions/", Token, strings.Replace(good, `"month"`, `"week"`, 1), 400, true},
		{"ValueAsString", "POST", "/v2/subscriptions/", Token, strings.Replace(good, `1000`, `"1000"`, 1), 400, true},
		{"AliasTooLong", "POST", "/v2/subscriptions/", Token, strings.Replace(good, `"subscription_alias":"`+alias, `"subscription_alias":"`+alias+"b", 1), 400, true},
		{"EmailNotTheAlias", "POST", "/v2/subscriptions/", Token, strings.Replace(good, `"email":"`+alias, `"email":"someone"`, 1), 400, true},
		{"UnknownField", "POST", "/v2/subscriptions/", Token, strings.Replace(good, `"value"`, `"name":"x","value"`, 1), 400, true},
		{"CustomersEndpoint", "GET", "/v2/customers/", Token, "", 400, true},
		{"ChurnBadType", "DELETE", "/v2/subscriptions/" + alias + "/?effective_date=1700000000&churn_type=angry", Token, "", 400, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t}
			f := New(rec)
			f.Forbid("Piiperson", "acct_life_1")
			req, _ := http.NewRequest(tt.method, f.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", tt.token)
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := rec.count() > 0; got != tt.wantViolation {
				t.Errorf("test failed by the fake = %v, want %v (%v)", got, tt.wantViolation, rec.errs)
			}
		})
	}
}

func TestFakeIdempotencyAnswers(t *testing.T) {
	t.Parallel()
	f := New(t)
	alias := strings.Repeat("b", 36)
	body := `{"user_alias":"` + alias + `","subscription_alias":"` + alias + `","email":"` + alias +
		`","plan_id":"price_1","plan_interval":"year","value":12000,"effective_date":1700000000}`
	do := func(method, path, body string) int {
		req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", Token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	churn := "/v2/subscriptions/" + alias + "/?effective_date=1700000001&churn_type=voluntary"
	steps := []struct {
		name, method, path, body string
		want                     int
	}{
		{"Create", "POST", "/v2/subscriptions/", body, 201},
		{"CreateAgainExists", "POST", "/v2/subscriptions/", body, 400},
		{"Churn", "DELETE", churn, "", 204},
		{"ChurnAgainAlready", "DELETE", churn, "", 400},
		{"Unchurn", "PUT", "/v2/unchurn/" + alias + "/", "", 204},
		{"UnchurnAgainNotChurned", "PUT", "/v2/unchurn/" + alias + "/", "", 400},
		{"EraseUser", "DELETE", "/v2/users/" + alias + "/", "", 204},
		{"EraseAgainNotFound", "DELETE", "/v2/users/" + alias + "/", "", 404},
	}
	for _, s := range steps {
		if got := do(s.method, s.path, s.body); got != s.want {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.want)
		}
	}
}
