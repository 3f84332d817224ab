package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/api"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// clock is a settable time source for the servers under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sessionFixture is the dashboard over a real database with a settable
// clock. Its requests reach the server at 127.0.0.1 whatever Host they
// carry, as a browser under DNS rebinding does.
type sessionFixture struct {
	store   *postgres.Store
	dbURL   string
	srv     *httptest.Server
	clock   *clock
	finance string // a finance token
	tokenID int64
}

func newSessionServer(t *testing.T, st *postgres.Store, c *clock, publicURL string) *httptest.Server {
	t.Helper()
	s := &api.Server{Log: slog.New(slog.DiscardHandler), Tokens: st, Revenue: st, Sessions: st, Now: c.Now,
		SessionPolicy: billing.SessionPolicy{Lifetime: 12 * time.Hour, Idle: time.Hour}}
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil {
			t.Fatal(err)
		}
		s.PublicURL = u
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func setupSessions(t *testing.T, publicURL string) sessionFixture {
	t.Helper()
	dbURL := pgtest.URL(t)
	st := openStore(t, dbURL)
	tok, h, err := billing.NewToken(billing.ScopeFinance)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.TokenCreate(context.Background(), "finance", billing.ScopeFinance, h)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	return sessionFixture{store: st, dbURL: dbURL, srv: newSessionServer(t, st, c, publicURL), clock: c, finance: tok, tokenID: id}
}

func openStore(t *testing.T, dbURL string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), dbURL, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// req is one request as a browser (or an attacker's page) sends it.
type req struct {
	method, path string
	host         string // Host header; "" for the server's own 127.0.0.1:port
	origin       string
	fetchSite    string // Sec-Fetch-Site
	token        string // form field of a sign-in
	cookie       string // session cookie value
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (f sessionFixture) do(t *testing.T, srv *httptest.Server, r req) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if r.method == http.MethodPost {
		body = strings.NewReader(url.Values{"token": {r.token}}.Encode())
	}
	hr, err := http.NewRequest(r.method, srv.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.method == http.MethodPost {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.host != "" {
		hr.Host = r.host
	}
	if r.origin != "" {
		hr.Header.Set("Origin", r.origin)
	}
	if r.fetchSite != "" {
		hr.Header.Set("Sec-Fetch-Site", r.fetchSite)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: "billingd_session", Value: r.cookie})
	}
	resp, err := noRedirect.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login signs in at the server's own address and returns the cookie value.
func (f sessionFixture) login(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	resp, body := f.do(t, srv, req{method: http.MethodPost, path: "/dashboard/login", origin: srv.URL, token: f.finance})
	for _, c := range resp.Cookies() {
		if c.Name == "billingd_session" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("login: status %d, cookies %v: %s", resp.StatusCode, resp.Cookies(), body)
	return ""
}

// summary is a session-authenticated API read: its status says whether
// the session works.
func (f sessionFixture) summary(t *testing.T, srv *httptest.Server, cookie string) int {
	t.Helper()
	resp, _ := f.do(t, srv, req{method: http.MethodGet, path: "/v1/metrics/summary", cookie: cookie})
	return resp.StatusCode
}

func (f sessionFixture) sessions(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.store.DB().Get(&n, `SELECT count(*) FROM dashboard_sessions`); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDashboardSessionExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		every time.Duration // the dashboard is used this often...
		until time.Duration // ...for this long after sign-in
		ok    bool          // and then still works
	}{
		{"FreshSession", 0, 0, true},
		{"UsedWithinIdleLimit", 40 * time.Minute, 3 * time.Hour, true},
		{"IdleLimitReached", 0, time.Hour, false},
		{"IdleAfterUse", 0, 0, false}, // special-cased below: used, then left idle
		{"LifetimeCapDespiteUse", 30 * time.Minute, 12 * time.Hour, false},
		{"JustBeforeLifetimeCap", 30 * time.Minute, 11*time.Hour + 59*time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setupSessions(t, "")
			cookie := f.login(t, f.srv)
			if tt.name == "IdleAfterUse" {
				f.clock.Advance(50 * time.Minute)
				if code := f.summary(t, f.srv, cookie); code != 200 {
					t.Fatalf("use at +50m: %d", code)
				}
				// The use moved the idle limit to +1h50m.
				f.clock.Advance(59 * time.Minute)
				if code := f.summary(t, f.srv, cookie); code != 200 {
					t.Fatalf("use at +1h49m: %d, the earlier use did not extend the session", code)
				}
				f.clock.Advance(61 * time.Minute)
				if code := f.summary(t, f.srv, cookie); code != 401 {
					t.Fatalf("after 61 idle minutes: %d, want 401", code)
				}
				return
			}
			for elapsed := time.Duration(0); tt.every > 0 && elapsed+tt.every < tt.until; elapsed += tt.every {
				f.clock.Advance(tt.every)
				if code := f.summary(t, f.srv, cookie); code != 200 {
					t.Fatalf("use at +%s: %d", elapsed+tt.every, code)
				}
			}
			f.clock.now = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC).Add(tt.until)
			want := map[bool]int{true: 200, false: 401}[tt.ok]
			if code := f.summary(t, f.srv, cookie); code != want {
				t.Fatalf("at +%s: %d, want %d", tt.until, code, want)
			}
			// The page shows the sign-in form, not the dashboard.
			_, page := f.do(t, f.srv, req{method: http.MethodGet, path: "/dashboard", cookie: cookie})
			if signIn := strings.Contains(page, `action="/dashboard/login"`); signIn == tt.ok {
				t.Errorf("dashboard page shows sign-in %v, want %v", signIn, !tt.ok)
			}
		})
	}
}

func TestDashboardLogout(t *testing.T) {
	t.Parallel()
	f := setupSessions(t, "")
	cookie := f.login(t, f.srv)
	copied := cookie // what someone who saw the cookie keeps
	t.Run("CrossSiteLogoutRefused", func(t *testing.T) {
		for _, r := range []req{
			{origin: "https://evil.example"},
			{fetchSite: "cross-site"},
			{host: "evil.example", origin: "http://evil.example"},
		} {
			r.method, r.path, r.cookie = http.MethodPost, "/dashboard/logout", cookie
			if resp, _ := f.do(t, f.srv, r); resp.StatusCode != http.StatusForbidden {
				t.Errorf("logout %+v: %d, want 403", r, resp.StatusCode)
			}
		}
		if code := f.summary(t, f.srv, cookie); code != 200 {
			t.Fatalf("a refused logout ended the session: %d", code)
		}
	})
	resp, _ := f.do(t, f.srv, req{method: http.MethodPost, path: "/dashboard/logout", origin: f.srv.URL, cookie: cookie})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("logout cookies %v, want the session cookie dropped", cs)
	}
	t.Run("CopiedCookieStopsWorking", func(t *testing.T) {
		if code := f.summary(t, f.srv, copied); code != 401 {
			t.Fatalf("copied cookie after logout: %d, want 401", code)
		}
		_, page := f.do(t, f.srv, req{method: http.MethodGet, path: "/dashboard", cookie: copied})
		if !strings.Contains(page, `action="/dashboard/login"`) {
			t.Error("copied cookie after logout still opens the dashboard")
		}
	})
	t.Run("SessionRowDeleted", func(t *testing.T) {
		if n := f.sessions(t); n != 0 {
			t.Fatalf("%d sessions stored after logout", n)
		}
	})
	t.Run("LogoutWithoutSession", func(t *testing.T) {
		if resp, _ := f.do(t, f.srv, req{method: http.MethodPost, path: "/dashboard/logout"}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout without a session: %d", resp.StatusCode)
		}
	})
}

// TestDashboardForeignHost: with PUBLIC_URL unset only loopback names may
// sign in; an attacker's name resolving to the server (DNS rebinding),
// with a matching Origin, is refused. With PUBLIC_URL set, only its host
// and origin are accepted.
func TestDashboardForeignHost(t *testing.T) {
	t.Parallel()
	f := setupSessions(t, "")
	port := f.srv.URL[strings.LastIndexByte(f.srv.URL, ':'):]
	login := func(host, origin string) req {
		return req{method: http.MethodPost, path: "/dashboard/login", host: host, origin: origin, token: f.finance}
	}
	refused := []struct {
		name string
		r    req
	}{
		{"RebindingHostWithMatchingOrigin", login("evil.example"+port, "http://evil.example"+port)},
		{"RebindingHostNoOrigin", login("evil.example"+port, "")},
		{"LANAddress", login("192.168.1.20"+port, "http://192.168.1.20"+port)},
		{"LoopbackLookalike", login("localhost.evil.example"+port, "http://localhost.evil.example"+port)},
		{"LoopbackHostForeignOrigin", login("127.0.0.1"+port, "http://evil.example"+port)},
		{"CrossSiteFetch", req{method: http.MethodPost, path: "/dashboard/login", fetchSite: "cross-site", token: f.finance}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, f.srv, tc.r)
			if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
				t.Fatalf("status %d, cookies %v: %s", resp.StatusCode, resp.Cookies(), body)
			}
		})
	}
	if n := f.sessions(t); n != 0 {
		t.Fatalf("%d sessions created by refused sign-ins", n)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "[::1]", "127.0.0.2"} {
		t.Run("Loopback/"+host, func(t *testing.T) {
			resp, body := f.do(t, f.srv, login(host+port, "http://"+host+port))
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("SessionNotUsableUnderForeignHost", func(t *testing.T) {
		cookie := f.login(t, f.srv)
		resp, _ := f.do(t, f.srv, req{method: http.MethodGet, path: "/v1/metrics/summary", host: "evil.example" + port, cookie: cookie})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("session API under a foreign Host: %d, want 403", resp.StatusCode)
		}
		resp, _ = f.do(t, f.srv, req{method: http.MethodGet, path: "/dashboard", host: "evil.example" + port, cookie: cookie})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("dashboard under a foreign Host: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("BearerAPIUnaffected", func(t *testing.T) {
		// API clients reach billingd by whatever name (a service name);
		// only the cookie is bound to the dashboard's host.
		hr, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/metrics/summary", nil)
		hr.Host = "billingd.internal" + port
		hr.Header.Set("Authorization", "Bearer "+f.finance)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("bearer token under another Host: %d, want 200", resp.StatusCode)
		}
		if resp, _ := f.do(t, f.srv, req{method: http.MethodGet, path: "/v1/metrics/summary", host: "billingd.internal" + port}); resp.StatusCode != 401 {
			t.Errorf("no credentials under another Host: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("PublicURL", func(t *testing.T) {
		t.Parallel()
		const public = "https://billing.example.com"
		f := setupSessions(t, public)
		login := func(host, origin string) req {
			return req{method: http.MethodPost, path: "/dashboard/login", host: host, origin: origin, token: f.finance}
		}
		tests := []struct {
			name string
			r    req
			want int
		}{
			{"OwnHostAndOrigin", login("billing.example.com", public), http.StatusSeeOther},
			{"OwnHostExplicitPort", login("billing.example.com:443", "https://billing.example.com:443"), http.StatusSeeOther},
			{"NoOrigin", login("billing.example.com", ""), http.StatusForbidden},
			{"OtherOrigin", login("billing.example.com", "https://evil.example"), http.StatusForbidden},
			{"PlainHTTPOrigin", login("billing.example.com", "http://billing.example.com"), http.StatusForbidden},
			{"RebindingHostWithMatchingOrigin", login("evil.example", "https://evil.example"), http.StatusForbidden},
			{"LoopbackHost", login("127.0.0.1", "http://127.0.0.1"), http.StatusForbidden},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := f.do(t, f.srv, tt.r)
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, body)
				}
				if tt.want == http.StatusSeeOther {
					cs := resp.Cookies()
					if len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
						t.Errorf("cookie %+v: want Secure (https PUBLIC_URL), HttpOnly, SameSite=Strict", cs)
					}
				}
			})
		}
		t.Run("LogoutNeedsOrigin", func(t *testing.T) {
			resp, _ := f.do(t, f.srv, login("billing.example.com", public))
			cookie := resp.Cookies()[0].Value
			r := req{method: http.MethodPost, path: "/dashboard/logout", host: "billing.example.com", cookie: cookie}
			if resp, _ := f.do(t, f.srv, r); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("logout without Origin: %d, want 403", resp.StatusCode)
			}
			r.origin = public
			if resp, _ := f.do(t, f.srv, r); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: %d", resp.StatusCode)
			}
			r = req{method: http.MethodGet, path: "/v1/metrics/summary", host: "billing.example.com", cookie: cookie}
			if resp, _ := f.do(t, f.srv, r); resp.StatusCode != 401 {
				t.Fatalf("session after logout: %d", resp.StatusCode)
			}
		})
	})
}

// TestDashboardForgedCookies: nothing but a stored session signs in; the
// old signed-cookie format, whatever expiry it claims, means nothing.
func TestDashboardForgedCookies(t *testing.T) {
	t.Parallel()
	f := setupSessions(t, "")
	unstored, _, err := billing.NewDashboardSession(f.tokenID, time.Now(), billing.SessionPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{
		"UnstoredID":      unstored,
		"OldSignedFormat": "djEuQUFBQS40MTAyNDQ0ODAw.c2lnbmF0dXJl",
		"Garbage":         "../../etc/passwd",
		"Empty":           "",
	} {
		t.Run(name, func(t *testing.T) {
			if code := f.summary(t, f.srv, v); code != 401 {
				t.Fatalf("status %d, want 401", code)
			}
		})
	}
}

// TestDashboardSessionReplicas: a session started on one replica works on
// another; a logout on the second ends it on the first at once, and so
// does revoking the token.
func TestDashboardSessionReplicas(t *testing.T) {
	t.Parallel()
	f := setupSessions(t, "")
	other := openStore(t, f.dbURL) // a second replica: its own pool
	b := newSessionServer(t, other, f.clock, "")

	cookie := f.login(t, f.srv)
	if code := f.summary(t, b, cookie); code != 200 {
		t.Fatalf("session on the other replica: %d", code)
	}
	resp, _ := f.do(t, b, req{method: http.MethodPost, path: "/dashboard/logout", cookie: cookie})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on the other replica: %d", resp.StatusCode)
	}
	if code := f.summary(t, f.srv, cookie); code != 401 {
		t.Fatalf("first replica after logout on the second: %d, want 401", code)
	}

	cookie = f.login(t, f.srv)
	if _, err := other.TokenRevoke(context.Background(), f.tokenID); err != nil {
		t.Fatal(err)
	}
	for name, srv := range map[string]*httptest.Server{"A": f.srv, "B": b} {
		if code := f.summary(t, srv, cookie); code != 401 {
			t.Errorf("replica %s after revocation: %d, want 401", name, code)
		}
	}
	if n := f.sessions(t); n != 0 {
		t.Errorf("%d sessions left after the token's revocation", n)
	}
}

// TestDashboardSessionsPurged: retention deletes sessions past their
// expiry and keeps live ones.
func TestDashboardSessionsPurged(t *testing.T) {
	t.Parallel()
	f := setupSessions(t, "")
	ctx := context.Background()
	now := time.Now()
	for _, started := range []time.Duration{-13 * time.Hour, -2 * time.Hour, -10 * time.Minute} {
		_, ds, err := billing.NewDashboardSession(f.tokenID, now.Add(started), billing.SessionPolicy{Lifetime: 12 * time.Hour, Idle: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.DashboardSessionCreate(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.store.Purge(ctx, postgres.RetentionPolicy{EventRetention: postgres.MinEventRetention})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions != 2 || f.sessions(t) != 1 {
		t.Fatalf("purged %d, %d left; want the 2 expired ones purged and the live one kept", res.Sessions, f.sessions(t))
	}
}
