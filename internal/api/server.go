// Package api is billingd's HTTP surface: routing, middleware and thin
// handlers over the billing interfaces. Handlers decode, call one method,
// and encode; the rules live in billing/.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// Readiness reports whether the service can take traffic. Its error's text
// is the /readyz answer (operators read why a replica is out), so an
// implementation returns fixed, curated messages and never a driver's
// error (serve's readiness maps those to "database unreachable").
type Readiness interface {
	Ready(ctx context.Context) error
}

// Server holds what the handlers need. Optional parts left nil are off, and
// their routes answer with a JSON error that says so.
type Server struct {
	Log   *slog.Logger
	Ready Readiness
	// Webhooks handles POST /webhooks/stripe; nil when no secret is configured.
	Webhooks http.Handler
	// MaxBodyBytes caps JSON request bodies of the API endpoints.
	MaxBodyBytes int64
	// Metrics serves GET /metrics (Prometheus); nil when it has its own listener.
	Metrics http.Handler
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// Registerer receives the HTTP request metrics; nil: not collected.
	Registerer prometheus.Registerer
	// Tokens checks API bearer tokens (auth.go); nil: every scoped endpoint answers 401.
	Tokens Tokens
	// Accounts links accounts to customers and reads their billing (accounts.go); nil: 503.
	Accounts Accounts
	// Entitlements answers GET /v1/accounts/{account_id}/entitlement (accounts.go); nil: 503.
	Entitlements Entitlements
	// LinkReferences signs checkout references (POST
	// /v1/accounts/{account_id}/link-reference, link_reference.go); nil: 503.
	LinkReferences LinkReferences
	// Eraser erases accounts (DELETE /v1/accounts/{account_id}); nil: 503.
	Eraser AccountEraser
	// Catalogs stores the features catalog (GET/PUT /v1/catalog, features.go); nil: 503.
	Catalogs Catalogs
	// Overrides stores per-account feature overrides (features.go); nil: 503.
	Overrides Overrides
	// Exporter answers subject access requests (GET /v1/accounts/{account_id}/export, export.go); nil: 503.
	Exporter AccountExporter
	// Changes serves the change feed (GET /v1/changes, changes.go); nil: 503.
	Changes ChangeFeed
	// Checkout creates Checkout and Billing Portal sessions (POST
	// .../checkout-sessions, .../portal-sessions, checkout.go); nil, or
	// AppURLs empty: 503 checkout_not_configured.
	Checkout CheckoutSessions
	// AppURLs is APP_URL_ALLOWLIST: where Checkout and the portal may send
	// the user back to.
	AppURLs billing.URLAllowlist

	// Revenue serves the finance metrics (/v1/metrics/*, /dashboard); nil: 503.
	Revenue billing.RevenueReader
	// Sessions holds dashboard sessions (dashboard.go); nil: dashboard sign-in is off.
	Sessions DashboardSessions
	// SessionPolicy limits a dashboard session's lifetime and idle time;
	// zero values take billing's defaults (12 h, 1 h).
	SessionPolicy billing.SessionPolicy
	// PublicURL is the dashboard's public origin (PUBLIC_URL): its Host and
	// Origin are then required on dashboard requests. nil: only loopback
	// hosts may use the dashboard (origin.go).
	PublicURL *url.URL
	// Now is the clock of the metrics endpoints and dashboard sessions
	// (tests set it); nil: time.Now.
	Now func() time.Time

	httpm *httpMetrics
	finm  *financeMetrics
	sessm *sessionMetrics
}

// Handler builds the router with every route and the shared middleware.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 64 << 10
	}
	if s.Registerer != nil && s.httpm == nil {
		s.httpm = newHTTPMetrics(s.Registerer)
	}
	if s.finm == nil {
		s.finm = newFinanceMetrics(s.Registerer)
	}
	if s.sessm == nil {
		s.sessm = newSessionMetrics(s.Registerer)
	}
	return s.middleware(s.hotRoutes(s.router()))
}

// router is every route behind gorilla/mux (hotRoutes answers two of them
// first).
func (s *Server) router() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this endpoint")
	})
	r.Use(routeTemplate)
	s.routes(r)
	return r
}

// routes is the one place every endpoint is registered: health, the
// Stripe webhook, Prometheus, the app API (scope app), the finance API
// (scope finance or a dashboard session) and the dashboard.
func (s *Server) routes(r *mux.Router) {
	r.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/webhooks/stripe", s.webhooks())
	r.Handle("/metrics", s.metricsHandler()).Methods(http.MethodGet)
	r.HandleFunc("/openapi.json", s.handleOpenAPI).Methods(http.MethodGet, http.MethodHead)

	app := func(h http.HandlerFunc) http.HandlerFunc { return s.requireScope(billing.ScopeApp, h) }
	r.HandleFunc("/v1/accounts/{account_id}", app(s.handleAccountErase)).Methods(http.MethodDelete)
	r.HandleFunc("/v1/accounts/{account_id}/billing", app(s.handleLink)).Methods(http.MethodPut)
	r.HandleFunc("/v1/accounts/{account_id}/billing", app(s.handleBilling)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/entitlement", app(s.handleEntitlement)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/link-reference", app(s.handleLinkReference)).Methods(http.MethodPost)
	r.HandleFunc("/v1/accounts/{account_id}/export", app(s.handleAccountExport)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/entitlement/features/{key}", app(s.handleFeature)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/overrides", app(s.handleOverrideGet)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/overrides", app(s.handleOverridePut)).Methods(http.MethodPut)
	r.HandleFunc("/v1/accounts/{account_id}/overrides", app(s.handleOverrideDelete)).Methods(http.MethodDelete)
	r.HandleFunc("/v1/catalog", app(s.handleCatalogGet)).Methods(http.MethodGet)
	r.HandleFunc("/v1/catalog", app(s.handleCatalogPut)).Methods(http.MethodPut)
	r.HandleFunc("/v1/changes", app(s.handleChanges)).Methods(http.MethodGet)
	r.HandleFunc("/v1/accounts/{account_id}/checkout-sessions", app(s.handleCheckoutSession)).Methods(http.MethodPost)
	r.HandleFunc("/v1/accounts/{account_id}/portal-sessions", app(s.handlePortalSession)).Methods(http.MethodPost)

	r.HandleFunc("/v1/metrics/revenue", s.requireFinance(s.handleRevenue)).Methods(http.MethodGet)
	r.HandleFunc("/v1/metrics/summary", s.requireFinance(s.handleSummary)).Methods(http.MethodGet)
	r.HandleFunc("/v1/catalog/plans", s.requireFinance(s.handlePlanNames)).Methods(http.MethodGet)
	r.HandleFunc("/dashboard", s.handleDashboard).Methods(http.MethodGet)
	r.HandleFunc("/dashboard/login", s.handleLogin).Methods(http.MethodPost)
	r.HandleFunc("/dashboard/logout", s.handleLogout).Methods(http.MethodPost)
	r.PathPrefix("/dashboard/static/").Handler(s.handleDashboardStatic()).Methods(http.MethodGet, http.MethodHead)
}

func (s *Server) webhooks() http.Handler {
	if s.Webhooks != nil {
		return s.Webhooks
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusServiceUnavailable, "webhook_secret_not_configured",
			"webhooks are off: set STRIPE_WEBHOOK_SECRETS (or STRIPE_WEBHOOK_SECRET)")
	})
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	if err := s.Ready.Ready(r.Context()); err != nil {
		s.Log.Warn("not ready", "err", err)
		writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
