package api

import (
	"context"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/web"
)

// The finance dashboard signs in with a finance token once and then rides
// on a session cookie holding a random session ID — never the token. The
// session lives server-side (DashboardSessions, under the ID's hash), so
// signing out deletes it and a copied cookie stops working; its lifetime
// and idle limits are the server's, not the cookie's. Each request reads
// the session with its token's current record from the database: sign-out
// and revocation take effect at once on every replica.
const (
	sessionCookie = "billingd_session"
	maxLoginForm  = 4 << 10
)

// dashboardCSP allows only our own files: no inline script, no CDN.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var loginPage = template.Must(template.ParseFS(web.Static, "static/login.html"))

// DashboardSessions stores dashboard sessions (internal/postgres).
type DashboardSessions interface {
	DashboardSessionCreate(ctx context.Context, s billing.DashboardSession) error
	// DashboardSession returns the session and its token's record;
	// billing.ErrNotFound when there is none.
	DashboardSession(ctx context.Context, hash billing.TokenHash) (billing.DashboardSession, billing.Token, error)
	DashboardSessionTouch(ctx context.Context, hash billing.TokenHash, idleUntil time.Time) error
	DashboardSessionDelete(ctx context.Context, hash billing.TokenHash) error
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
// cookie, or billing.ErrUnauthorized when there is no active session. A
// use moves the session's idle expiry forward (written at most once a
// minute).
func (s *Server) sessionToken(r *http.Request) (billing.Token, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || s.Sessions == nil || !billing.ValidSessionID(c.Value) {
		return billing.Token{}, billing.ErrUnauthorized
	}
	h := billing.HashSessionID(c.Value)
	ds, t, err := s.Sessions.DashboardSession(r.Context(), h)
	if errors.Is(err, billing.ErrNotFound) {
		return t, billing.ErrUnauthorized
	}
	if err != nil {
		return t, err
	}
	now := s.now()
	if !ds.Active(now) || t.Revoked() {
		return t, billing.ErrUnauthorized
	}
	if t.Scope != billing.ScopeFinance {
		return t, billing.ErrForbidden
	}
	if next, write := s.SessionPolicy.Touch(ds, now); write {
		if err := s.Sessions.DashboardSessionTouch(r.Context(), h, next); err != nil {
			// The session stays valid until its stored idle expiry; a
			// failed extension only shortens it.
			s.Log.Warn("dashboard session not extended", "request_id", RequestID(r.Context()), "err", err)
		}
	}
	return t, nil
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
		if _, err := r.Cookie(sessionCookie); err == nil && !s.dashboardHost(r) {
			hostNotAllowed(w)
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
	if !s.dashboardHost(r) {
		hostNotAllowed(w)
		return
	}
	if _, err := s.sessionToken(r); err != nil {
		if !errors.Is(err, billing.ErrUnauthorized) && !errors.Is(err, billing.ErrForbidden) {
			s.Error(w, r, err)
			return
		}
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
	if !s.dashboardPost(w, r) {
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
	if s.Sessions == nil {
		s.renderLogin(w, http.StatusServiceUnavailable, "Dashboard sessions are not configured.")
		return
	}
	t, err := s.financeToken(r, billing.HashToken(tok))
	if err != nil {
		if errors.Is(err, billing.ErrUnauthorized) || errors.Is(err, billing.ErrForbidden) {
			s.finm.login("rejected")
			s.renderLogin(w, http.StatusUnauthorized, "That is not a valid finance token.")
			return
		}
		s.finm.login("error")
		s.Error(w, r, err)
		return
	}
	id, ds, err := billing.NewDashboardSession(t.ID, s.now(), s.SessionPolicy)
	if err == nil {
		err = s.Sessions.DashboardSessionCreate(r.Context(), ds)
	}
	if err != nil {
		s.finm.login("error")
		s.Error(w, r, err)
		return
	}
	// A session this browser already had ends: one browser, one session.
	// (Failing that, the old one only lives until it expires.)
	_ = s.endSession(r)
	s.finm.login("ok")
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", MaxAge: int(ds.ExpiresAt.Sub(ds.CreatedAt) / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r),
	})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// handleLogout serves POST /dashboard/logout: the session is deleted
// server-side, so the cookie, or any copy of it, no longer signs in.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	dashboardHeaders(w)
	if !s.dashboardPost(w, r) {
		return
	}
	if err := s.endSession(r); err != nil {
		// The session would outlive the sign-out: say so rather than
		// pretend (5xx: retrying can succeed).
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookie(r)})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// endSession deletes the session the request's cookie names, if any.
func (s *Server) endSession(r *http.Request) error {
	c, err := r.Cookie(sessionCookie)
	if err != nil || s.Sessions == nil || !billing.ValidSessionID(c.Value) {
		return nil
	}
	return s.Sessions.DashboardSessionDelete(r.Context(), billing.HashSessionID(c.Value))
}

// dashboardAssets are the files the page loads (login.html and
// dashboard.html are served by their handlers, not as files).
var dashboardAssets = map[string]bool{"app.css": true, "app.js": true, "charts.js": true, "format.js": true,
	"state.js": true, "views.js": true}

// handleDashboardStatic serves the embedded JS modules and CSS.
func (s *Server) handleDashboardStatic() http.Handler {
	sub, _ := fs.Sub(web.Static, "static")
	files := http.StripPrefix("/dashboard/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/dashboard/static/")
		if !dashboardAssets[name] {
			writeError(w, http.StatusNotFound, "not_found", "no such file")
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func isHTTPS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// secureCookie: the session cookie is Secure over HTTPS, and always when
// the dashboard's public address is HTTPS.
func (s *Server) secureCookie(r *http.Request) bool {
	return isHTTPS(r) || s.PublicURL != nil && s.PublicURL.Scheme == "https"
}
