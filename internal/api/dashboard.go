package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/web"
)

// The finance dashboard signs in with a finance token once and then rides
// on a session cookie. The cookie is HMAC-signed (no server-side session
// table) and carries the token's SHA-256 hash and an expiry — never the
// token. Each request re-checks that hash against the token store, so
// revoking the token ends its sessions at once; the hash alone
// authenticates nothing without the server's signing key, and a cookie
// cannot be forged or extended without it either.
const (
	sessionCookie = "billingd_session"
	sessionTTL    = 8 * time.Hour
	maxLoginForm  = 4 << 10
)

// dashboardCSP allows only our own files: no inline script, no CDN.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var loginPage = template.Must(template.ParseFS(web.Static, "static/login.html"))

// signSession returns the cookie value for a session of the token with
// hash h, valid until exp: base64(payload) "." base64(HMAC(key, payload)).
func signSession(key []byte, h billing.TokenHash, exp time.Time) string {
	payload := "v1." + base64.RawURLEncoding.EncodeToString(h[:]) + "." + strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errBadSession = errors.New("bad session")

// openSession checks a cookie value's signature and expiry and returns the
// token hash it names.
func openSession(key []byte, v string, now time.Time) (billing.TokenHash, error) {
	var h billing.TokenHash
	p64, mac64, ok := strings.Cut(v, ".")
	if !ok || len(key) == 0 || len(v) > 512 {
		return h, errBadSession
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	mac, err2 := base64.RawURLEncoding.DecodeString(mac64)
	if err1 != nil || err2 != nil {
		return h, errBadSession
	}
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return h, errBadSession
	}
	parts := strings.Split(string(payload), ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return h, errBadSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || err2 != nil || len(raw) != len(h) || now.Unix() >= exp {
		return h, errBadSession
	}
	copy(h[:], raw)
	return h, nil
}

// financeToken resolves a token hash to an unrevoked finance token.
func (s *Server) financeToken(r *http.Request, h billing.TokenHash) (billing.Token, error) {
	if s.Tokens == nil {
		return billing.Token{}, billing.ErrUnauthorized
	}
	t, err := s.Tokens.TokenByHash(r.Context(), h)
	if errors.Is(err, billing.ErrNotFound) {
		return t, billing.ErrUnauthorized
	}
	if err != nil {
		return t, err
	}
	if !t.Hash.Equal(h) || t.Revoked() {
		return t, billing.ErrUnauthorized
	}
	if t.Scope != billing.ScopeFinance {
		return t, billing.ErrForbidden
	}
	return t, nil
}

// sessionToken returns the finance token behind the request's session
// cookie, or an error when there is no valid session.
func (s *Server) sessionToken(r *http.Request) (billing.Token, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return billing.Token{}, billing.ErrUnauthorized
	}
	h, err := openSession(s.SessionKey, c.Value, s.now())
	if err != nil {
		return billing.Token{}, billing.ErrUnauthorized
	}
	return s.financeToken(r, h)
}

// requireFinance admits a finance bearer token (API clients) or a valid
// dashboard session cookie (the dashboard's own fetches and CSV link).
// The cookie is SameSite=Strict, so another site cannot ride on it.
func (s *Server) requireFinance(next http.HandlerFunc) http.HandlerFunc {
	bearer := s.requireScope(billing.ScopeFinance, next)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			bearer(w, r)
			return
		}
		t, err := s.sessionToken(r)
		switch {
		case errors.Is(err, billing.ErrUnauthorized), errors.Is(err, billing.ErrForbidden):
			unauthorized(w)
			return
		case err != nil:
			s.Error(w, r, err)
			return
		}
		if ri, ok := r.Context().Value(reqInfoKey).(*reqInfo); ok {
			ri.actor = t.Name
		}
		next(w, r)
	}
}

func dashboardHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" on the sign-in POST and the origin check cannot work.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// handleDashboard serves GET /dashboard: the dashboard with a valid
// session, the sign-in form without one.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	dashboardHeaders(w)
	if _, err := s.sessionToken(r); err != nil {
		s.renderLogin(w, http.StatusOK, "")
		return
	}
	b, err := fs.ReadFile(web.Static, "static/dashboard.html")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, struct{ Error string }{msg})
}

// handleLogin serves POST /dashboard/login: a finance token in, a session
// cookie out. A wrong or non-finance token re-renders the form with 401
// and one message for every case, so the form reveals nothing about
// which tokens exist.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	dashboardHeaders(w)
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross_origin", "sign-in must come from the dashboard's own page")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, http.StatusBadRequest, "The sign-in form could not be read.")
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if tok == "" || len(tok) > 256 {
		s.finm.login("rejected")
		s.renderLogin(w, http.StatusUnauthorized, "That is not a valid finance token.")
		return
	}
	if len(s.SessionKey) == 0 {
		s.renderLogin(w, http.StatusServiceUnavailable, "Dashboard sessions are not configured.")
		return
	}
	h := billing.HashToken(tok)
	if _, err := s.financeToken(r, h); err != nil {
		if errors.Is(err, billing.ErrUnauthorized) || errors.Is(err, billing.ErrForbidden) {
			s.finm.login("rejected")
			s.renderLogin(w, http.StatusUnauthorized, "That is not a valid finance token.")
			return
		}
		s.finm.login("error")
		s.Error(w, r, err)
		return
	}
	s.finm.login("ok")
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: signSession(s.SessionKey, h, s.now().Add(sessionTTL)), Path: "/",
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isHTTPS(r),
	})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// handleLogout serves POST /dashboard/logout: the cookie is dropped. (A
// copied cookie stays valid until it expires or the token is revoked.)
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	dashboardHeaders(w)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isHTTPS(r)})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// handleDashboardStatic serves the embedded JS and CSS.
func (s *Server) handleDashboardStatic() http.Handler {
	sub, _ := fs.Sub(web.Static, "static")
	files := http.StripPrefix("/dashboard/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/dashboard/static/")
		if name != "app.js" && name != "app.css" {
			writeError(w, http.StatusNotFound, "not_found", "no such file")
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// sameOrigin rejects a cross-site form post (login CSRF): browsers send
// Sec-Fetch-Site and Origin on POST; a request without them (curl) is
// allowed.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
