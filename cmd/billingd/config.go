package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/billingd/billingd/appwebhook"
	"github.com/billingd/billingd/billing"
)

// Config is every setting billingd reads, parsed from the environment in one
// place. Secrets are held here and never logged (see Config.LogValue).
type Config struct {
	DatabaseURL     string        // DATABASE_URL; empty: start a local PostgreSQL under DataDir
	DataDir         string        // BILLINGD_DATA_DIR (default ./.billingd)
	ListenAddr      string        // LISTEN_ADDR (default 127.0.0.1:8080)
	HTTPMaxConns    int           // HTTP_MAX_CONNS (default 4096): open connections on LISTEN_ADDR at most; more get 503 and are closed
	LogLevel        slog.Level    // LOG_LEVEL: debug|info|warn|error
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT (default 30s)
	DBMaxConns      int           // DB_MAX_CONNS (default 32)
	// DatabaseSessionURL (DATABASE_SESSION_URL, default DATABASE_URL) is
	// where session advisory locks go (migrations, purge, Stripe sync):
	// past a transaction-mode pooler.
	DatabaseSessionURL string
	// DBPreparedStatements (DB_PREPARED_STATEMENTS) prepares the event
	// path's statements by name. Default: on, unless DATABASE_SESSION_URL
	// names another address than DATABASE_URL, which says DATABASE_URL is
	// a transaction-mode pooler, where named statements outlive their
	// transaction.
	DBPreparedStatements bool
	EventBatchers        int    // EVENT_BATCHERS (default 2): webhook event transactions at once per process
	EventBatchMax        int    // EVENT_BATCH_MAX (default 64): events per transaction at most
	EventQueueMax        int    // EVENT_QUEUE_MAX (default 512): events waiting for a transaction at most; more get 503 at once
	GOGC                 string // GOGC as set (the runtime reads it; validated here): "" when unset

	WebhookSecrets      []string      // STRIPE_WEBHOOK_SECRETS (comma-separated) and/or STRIPE_WEBHOOK_SECRET
	WebhookTolerance    time.Duration // WEBHOOK_TOLERANCE (default 5m, at most 1h)
	WebhookMaxBodyBytes int64         // WEBHOOK_MAX_BODY_BYTES (default 1 MiB)
	WebhookApplyTimeout time.Duration // WEBHOOK_APPLY_TIMEOUT (default 5s): a delivery's deadline, body to commit
	WebhookBodyTimeout  time.Duration // WEBHOOK_BODY_TIMEOUT (default 2s): a body's time to arrive after its headers
	WebhookMaxBodyReads int           // WEBHOOK_MAX_BODY_READS (default 128): bodies read at once

	// Key rings: the first key writes or signs, every key checks
	// or verifies; "generated" names the key billingd keeps in the
	// database; nil: that key alone.
	ErasureKeys          []string // ERASURE_KEYS, or ERASURE_KEY for one key
	LinkSigningKeys      []string // LINK_SIGNING_KEYS, or LINK_SIGNING_KEY for one key
	LinkRequireSignature bool     // LINK_REQUIRE_SIGNATURE (default true)

	EntitlementGrace time.Duration // ENTITLEMENT_GRACE_PERIOD (default 72h): past_due still entitled this long

	ProfitWellToken       string // PROFITWELL_API_TOKEN
	ProfitWellAliasKey    string // PROFITWELL_ALIAS_KEY
	ProfitWellBase        string // PROFITWELL_API_BASE
	ProfitWellMaxAttempts int    // PROFITWELL_MAX_ATTEMPTS (default 10)

	StripeAPIKey      string        // STRIPE_API_KEY: sk_ or rk_, live or test
	StripeAPIBase     string        // STRIPE_API_BASE
	StripeReadRate    int           // STRIPE_READ_RATE: requests/s to Stripe at most (0: 50 live, 20 test)
	ReconcileInterval time.Duration // RECONCILE_INTERVAL (0: off)
	SweepInterval     time.Duration // SWEEP_INTERVAL (0: off)
	// AppURLAllowlist is APP_URL_ALLOWLIST: where Checkout and the portal
	// may send users back to; empty: checkout and portal sessions are off.
	AppURLAllowlist billing.URLAllowlist

	WebhookEventRetentionDays int // WEBHOOK_EVENT_RETENTION_DAYS (default 30, minimum 3)
	MetricsRetentionDays      int // METRICS_RETENTION_DAYS (0: keep)

	MetricsAddr  string // METRICS_ADDR: serve /metrics on its own listener
	MetricsToken string // METRICS_TOKEN: bearer token required on /metrics
	PprofAddr    string // PPROF_ADDR: serve net/http/pprof on this (loopback) address; off when unset

	ChangesRetention time.Duration // CHANGES_RETENTION (default 168h): change feed entries are kept this long
	AppWebhookURL    string        // APP_WEBHOOK_URL: outbound entitlement.changed webhooks go here; off when unset
	// ChangeFeed is CHANGE_FEED: run the change feed (GET /v1/changes);
	// off unless set or APP_WEBHOOK_URL is (the webhooks are its entries).
	// Off by default because its producer recomputes the answer of every
	// account an event touches: about a fifth of c32 ingest capacity.
	ChangeFeed       bool
	AppWebhookSecret string // APP_WEBHOOK_SECRET: signs them; at least 32 characters, required with the URL

	PublicURL            *url.URL      // PUBLIC_URL: the dashboard's public origin; nil: loopback only
	DashboardSessionTTL  time.Duration // DASHBOARD_SESSION_TTL (default 12h): a session's lifetime cap
	DashboardSessionIdle time.Duration // DASHBOARD_SESSION_IDLE (default 1h): a session unused this long ends

	ReportingCurrency string // REPORTING_CURRENCY: what currency=reporting converts into; empty: off
}

// LogValue keeps secrets out of logs: only whether each is set.
func (c Config) LogValue() slog.Value {
	publicURL := ""
	if c.PublicURL != nil {
		publicURL = c.PublicURL.String()
	}
	return slog.GroupValue(
		slog.Bool("database_url_set", c.DatabaseURL != ""),
		slog.Bool("database_session_url_separate", c.DatabaseSessionURL != c.DatabaseURL),
		slog.Bool("db_prepared_statements", c.DBPreparedStatements),
		slog.String("listen_addr", c.ListenAddr),
		slog.String("log_level", c.LogLevel.String()),
		slog.Int("webhook_secrets", len(c.WebhookSecrets)),
		slog.Bool("profitwell_token_set", c.ProfitWellToken != ""),
		slog.Bool("stripe_api_key_set", c.StripeAPIKey != ""),
		slog.Bool("app_webhook_url_set", c.AppWebhookURL != ""),
		slog.String("public_url", publicURL),
		slog.String("app_url_allowlist", c.AppURLAllowlist.String()),
		slog.Int("erasure_keys", len(c.ErasureKeys)),
		slog.Int("link_signing_keys", len(c.LinkSigningKeys)),
		slog.Bool("link_require_signature", c.LinkRequireSignature),
	)
}

// Limits of the duration settings: a value outside is a mistake (a unit
// left out, a typo), not a preference.
const (
	maxShutdownTimeout  = time.Hour
	maxWebhookTolerance = time.Hour // Stripe signs at delivery; older signatures are replays
	maxGracePeriod      = 90 * 24 * time.Hour
	maxReconcile        = 30 * 24 * time.Hour
	// A sweep less often than weekly leaves too little of Stripe's 30-day
	// event window to notice a failing sweeper and fix it.
	maxSweep            = 7 * 24 * time.Hour
	minSessionTTL       = 5 * time.Minute
	maxSessionTTL       = 7 * 24 * time.Hour
	minKeyLength        = 16 // every HMAC key and bearer secret
	maxChangesRetention = 365 * 24 * time.Hour
)

// loadConfig parses the environment and validates every variable. Every
// bad value is reported, one line each (configError), so a misconfigured
// deploy is fixed in one round; a secret's value is never echoed.
func loadConfig(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		DatabaseURL:        strings.TrimSpace(getenv("DATABASE_URL")),
		DataDir:            p.str("BILLINGD_DATA_DIR", ".billingd"),
		ListenAddr:         p.str("LISTEN_ADDR", "127.0.0.1:8080"),
		HTTPMaxConns:       p.intRange("HTTP_MAX_CONNS", 4096, 16, 1_000_000),
		LogLevel:           p.level("LOG_LEVEL", slog.LevelInfo),
		ShutdownTimeout:    p.duration("SHUTDOWN_TIMEOUT", 30*time.Second, time.Second, maxShutdownTimeout),
		DBMaxConns:         p.intRange("DB_MAX_CONNS", 32, 1, 1000),
		DatabaseSessionURL: strings.TrimSpace(getenv("DATABASE_SESSION_URL")),
		EventBatchers:      p.intRange("EVENT_BATCHERS", 2, 1, 64),
		EventBatchMax:      p.intRange("EVENT_BATCH_MAX", 64, 1, 1000),
		EventQueueMax:      p.intRange("EVENT_QUEUE_MAX", 512, 1, 1_000_000),
		GOGC:               p.gogc("GOGC"),

		WebhookTolerance:    p.duration("WEBHOOK_TOLERANCE", 5*time.Minute, time.Second, maxWebhookTolerance),
		WebhookMaxBodyBytes: int64(p.intRange("WEBHOOK_MAX_BODY_BYTES", 1<<20, 1024, 64<<20)),
		WebhookApplyTimeout: p.duration("WEBHOOK_APPLY_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
		WebhookBodyTimeout:  p.duration("WEBHOOK_BODY_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute),
		WebhookMaxBodyReads: p.intRange("WEBHOOK_MAX_BODY_READS", 128, 1, 100_000),

		ErasureKeys:          p.keyRing("ERASURE_KEYS", "ERASURE_KEY"),
		LinkSigningKeys:      p.keyRing("LINK_SIGNING_KEYS", "LINK_SIGNING_KEY"),
		LinkRequireSignature: p.boolean("LINK_REQUIRE_SIGNATURE", true),

		EntitlementGrace: p.duration("ENTITLEMENT_GRACE_PERIOD", 72*time.Hour, 0, maxGracePeriod),

		ProfitWellToken:       p.token("PROFITWELL_API_TOKEN", 1),
		ProfitWellAliasKey:    p.key("PROFITWELL_ALIAS_KEY"),
		ProfitWellBase:        p.url("PROFITWELL_API_BASE", "https://api.profitwell.com"),
		ProfitWellMaxAttempts: p.intRange("PROFITWELL_MAX_ATTEMPTS", 10, 1, 100),

		StripeAPIKey:      p.stripeKey("STRIPE_API_KEY"),
		StripeAPIBase:     p.url("STRIPE_API_BASE", ""),
		StripeReadRate:    p.intRange("STRIPE_READ_RATE", 0, 1, 1000),
		ReconcileInterval: p.durationOrOff("RECONCILE_INTERVAL", time.Minute, maxReconcile),
		SweepInterval:     p.durationOrOff("SWEEP_INTERVAL", time.Minute, maxSweep),
		AppURLAllowlist:   p.urlAllowlist("APP_URL_ALLOWLIST"),

		WebhookEventRetentionDays: p.intRange("WEBHOOK_EVENT_RETENTION_DAYS", 30, 3, 36500),
		MetricsRetentionDays:      p.intRange("METRICS_RETENTION_DAYS", 0, 0, 36500),

		MetricsAddr:  p.addr("METRICS_ADDR"),
		MetricsToken: p.token("METRICS_TOKEN", minKeyLength),
		PprofAddr:    p.addr("PPROF_ADDR"),

		ChangesRetention: p.duration("CHANGES_RETENTION", 7*24*time.Hour, time.Hour, maxChangesRetention),
		AppWebhookURL:    p.webhookURL("APP_WEBHOOK_URL"),
		AppWebhookSecret: p.token("APP_WEBHOOK_SECRET", appwebhook.MinSecretLength),

		PublicURL:           p.publicURL("PUBLIC_URL"),
		ReportingCurrency:   p.currency("REPORTING_CURRENCY"),
		DashboardSessionTTL: p.duration("DASHBOARD_SESSION_TTL", billing.DefaultSessionLifetime, minSessionTTL, maxSessionTTL),
	}
	c.DashboardSessionIdle = p.duration("DASHBOARD_SESSION_IDLE", min(billing.DefaultSessionIdle, c.DashboardSessionTTL), time.Minute, c.DashboardSessionTTL)
	for _, name := range []string{"STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRET"} {
		for _, s := range strings.Split(getenv(name), ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			switch {
			case !strings.HasPrefix(s, "whsec_"):
				p.fail(name, "each secret starts with whsec_ (Stripe's endpoint signing secret)")
			case len(s) < minKeyLength || strings.ContainsFunc(s, unicode.IsSpace):
				p.fail(name, fmt.Sprintf("each secret is at least %d characters without spaces", minKeyLength))
			default:
				c.WebhookSecrets = append(c.WebhookSecrets, s)
			}
		}
	}
	if c.WebhookBodyTimeout > c.WebhookApplyTimeout {
		p.fail("WEBHOOK_BODY_TIMEOUT", "at most WEBHOOK_APPLY_TIMEOUT (the body is read within the delivery's deadline)")
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.fail("DATABASE_URL", "want postgres://user:password@host:port/dbname")
		}
	}
	pooled := c.DatabaseSessionURL != "" && c.DatabaseSessionURL != c.DatabaseURL
	c.DBPreparedStatements = p.boolean("DB_PREPARED_STATEMENTS", !pooled)
	switch {
	case c.DatabaseSessionURL == "":
		c.DatabaseSessionURL = c.DatabaseURL
	case c.DatabaseURL == "":
		p.fail("DATABASE_SESSION_URL", "needs DATABASE_URL (the embedded PostgreSQL has no pooler to bypass)")
	default:
		if u, err := url.Parse(c.DatabaseSessionURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			p.fail("DATABASE_SESSION_URL", "want postgres://user:password@host:port/dbname, the same database as DATABASE_URL reached without a transaction-mode pooler")
		}
	}
	p.checkAddr("LISTEN_ADDR", c.ListenAddr)
	if c.ProfitWellToken != "" && c.ProfitWellAliasKey == "" {
		p.fail("PROFITWELL_ALIAS_KEY", "required when PROFITWELL_API_TOKEN is set (aliases must be keyed)")
	}
	if c.AppWebhookURL != "" && c.AppWebhookSecret == "" {
		p.fail("APP_WEBHOOK_SECRET", "required when APP_WEBHOOK_URL is set (the app must be able to verify what it receives)")
	}
	c.ChangeFeed = p.boolean("CHANGE_FEED", c.AppWebhookURL != "")
	if c.AppWebhookURL != "" && !c.ChangeFeed {
		p.fail("CHANGE_FEED", "must be true when APP_WEBHOOK_URL is set (the webhooks are the feed's entries)")
	}
	if c.AppWebhookSecret != "" && c.AppWebhookURL == "" {
		p.fail("APP_WEBHOOK_URL", "required when APP_WEBHOOK_SECRET is set (where to send the webhooks)")
	}
	if c.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.PprofAddr); err == nil {
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				p.fail("PPROF_ADDR", "must be a loopback address (profiles expose internals)")
			}
		}
	}
	return c, p.err()
}

// validateServe checks what only serve needs.
func (c Config) validateServe() error {
	p := parser{getenv: func(string) string { return "" }}
	if c.ReconcileInterval > 0 && c.StripeAPIKey == "" {
		p.fail("RECONCILE_INTERVAL", "scheduled reconcile needs STRIPE_API_KEY")
	}
	if c.SweepInterval > 0 && c.StripeAPIKey == "" {
		p.fail("SWEEP_INTERVAL", "the missed-event sweeper needs STRIPE_API_KEY")
	}
	if !c.AppURLAllowlist.Empty() && c.StripeAPIKey == "" {
		p.fail("APP_URL_ALLOWLIST", "checkout and portal sessions need STRIPE_API_KEY")
	}
	return p.err()
}

// configError is every bad value of the configuration, one line each.
type configError []string

func (e configError) Error() string {
	lines := make([]string, len(e))
	for i, l := range e {
		lines[i] = "invalid configuration: " + l
	}
	return strings.Join(lines, "\n")
}

type parser struct {
	getenv func(string) string
	errs   configError
	failed map[string]bool
}

// fail records what is wrong with variable name: one line per variable,
// the first problem found.
func (p *parser) fail(name, why string) {
	if p.failed[name] {
		return
	}
	if p.failed == nil {
		p.failed = map[string]bool{}
	}
	p.failed[name] = true
	p.errs = append(p.errs, fmt.Sprintf("%s: %s", name, why))
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return p.errs
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

// currency reads an ISO 4217 code (any case, kept lower-case); empty: unset.
func (p *parser) currency(name string) string {
	v := strings.ToLower(p.str(name, ""))
	if v == "" {
		return ""
	}
	if len(v) != 3 || strings.IndexFunc(v, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
		p.fail(name, "a three-letter ISO 4217 currency code such as usd or eur")
		return ""
	}
	return v
}

// duration reads a duration from min to max (inclusive).
func (p *parser) duration(name string, def, min, max time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		p.fail(name, fmt.Sprintf("%q is not a duration from %s to %s (e.g. 30s, 5m, 12h)", v, fmtDuration(min), fmtDuration(max)))
		return def
	}
	return d
}

// durationOrOff reads 0 (off, the default) or a duration from min to max.
func (p *parser) durationOrOff(name string, min, max time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d != 0 && (d < min || d > max) {
		p.fail(name, fmt.Sprintf("%q is not 0 (off) or a duration from %s to %s", v, fmtDuration(min), fmtDuration(max)))
		return 0
	}
	return d
}

// fmtDuration prints 168h0m0s as 168h and 5m0s as 5m.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (p *parser) intRange(name string, def, min, max int) int {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		p.fail(name, fmt.Sprintf("%q is not a whole number from %d to %d", v, min, max))
		return def
	}
	return n
}

func (p *parser) level(name string, def slog.Level) slog.Level {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, fmt.Sprintf("%q is not one of debug, info, warn, error", v))
		return def
	}
	return l
}

func (p *parser) url(name, def string) string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.fail(name, fmt.Sprintf("%q is not an http(s) URL", v))
		return def
	}
	return strings.TrimRight(v, "/")
}

// webhookURL reads an optional http(s) URL kept exactly as given (a
// receiver's path may end in a slash).
func (p *parser) webhookURL(name string) string {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		p.fail(name, "not an http(s) URL without credentials or fragment")
		return ""
	}
	return v
}

// addr reads an optional host:port.
func (p *parser) addr(name string) string {
	v := strings.TrimSpace(p.getenv(name))
	if v != "" {
		p.checkAddr(name, v)
	}
	return v
}

func (p *parser) checkAddr(name, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("%q is not host:port (e.g. 127.0.0.1:8080)", v))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(name, fmt.Sprintf("%q has no valid port", v))
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		p.fail(name, fmt.Sprintf("%q has no valid host", v))
	}
}

// gogc checks GOGC, which the Go runtime reads itself and silently treats
// as 100 when it cannot parse it.
func (p *parser) gogc(name string) string {
	v := p.getenv(name)
	if v == "" || v == "off" {
		return v
	}
	if n, err := strconv.Atoi(v); err != nil || n < 0 {
		p.fail(name, fmt.Sprintf("%q is not a whole number from 0 up, or off", v))
	}
	return v
}

// key reads an optional HMAC key: at least minKeyLength characters and no
// surrounding whitespace (a newline from a secret file would silently
// become part of the key). The value is never echoed.
func (p *parser) key(name string) string {
	v := p.getenv(name)
	switch {
	case v == "":
	case strings.TrimSpace(v) != v:
		p.fail(name, "has leading or trailing whitespace (a newline from a secret file?)")
	case len(v) < minKeyLength:
		p.fail(name, fmt.Sprintf("at least %d characters (it is an HMAC key)", minKeyLength))
	}
	return v
}

// generatedKey in a key ring names the key billingd generated and keeps in
// the database (shorter than any key, so it cannot be one).
const generatedKey = "generated"

// keyRing reads a comma-separated ring of HMAC keys (list), each at least
// minKeyLength characters or "generated", or its one-key alias (single,
// read as key does). nil when neither is set.
func (p *parser) keyRing(list, single string) []string {
	l := strings.TrimSpace(p.getenv(list))
	if l != "" && p.getenv(single) != "" {
		p.fail(list, "set "+list+" or "+single+", not both")
		return nil
	}
	if l == "" {
		if k := p.key(single); k != "" {
			return []string{k}
		}
		return nil
	}
	var keys []string
	seen := map[string]bool{}
	for _, k := range strings.Split(l, ",") {
		switch k = strings.TrimSpace(k); {
		case k == "":
		case seen[k]:
			p.fail(list, "a key is listed twice")
			return nil
		case k != generatedKey && len(k) < minKeyLength:
			p.fail(list, fmt.Sprintf(`each key at least %d characters (or "generated")`, minKeyLength))
			return nil
		default:
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		p.fail(list, "no key in the list")
	}
	return keys
}

func (p *parser) boolean(name string, def bool) bool {
	switch v := strings.TrimSpace(p.getenv(name)); v {
	case "":
		return def
	case "true":
		return true
	case "false":
		return false
	default:
		p.fail(name, fmt.Sprintf("%q is not true or false", v))
		return def
	}
}

// token reads an optional bearer secret of at least minLen characters
// with no whitespace at all (it travels in an HTTP header). The value is
// never echoed.
func (p *parser) token(name string, minLen int) string {
	v := p.getenv(name)
	switch {
	case v == "":
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r > '~' }):
		p.fail(name, "contains whitespace or characters outside printable ASCII")
	case len(v) < minLen:
		p.fail(name, fmt.Sprintf("at least %d characters", minLen))
	}
	return v
}

// stripeKeyShape is a secret or restricted API key, live or test mode:
// sk_live_, sk_test_, rk_live_ or rk_test_ and a body of letters and
// digits (test fakes use short bodies; Stripe's own are 24 or more).
var stripeKeyShape = regexp.MustCompile(`^[sr]k_(live|test)_[A-Za-z0-9]{1,247}$`)

// stripeKey reads STRIPE_API_KEY and checks its shape. The value is never
// echoed.
func (p *parser) stripeKey(name string) string {
	v := p.getenv(name)
	switch {
	case v == "" || stripeKeyShape.MatchString(v):
	case strings.HasPrefix(v, "pk_"):
		p.fail(name, "a publishable key (pk_) cannot call the API: want a secret (sk_live_, sk_test_) or restricted (rk_live_, rk_test_) key")
	case strings.HasPrefix(v, "whsec_"):
		p.fail(name, "a webhook signing secret (whsec_) belongs in STRIPE_WEBHOOK_SECRETS: want sk_live_, sk_test_, rk_live_ or rk_test_ and the key")
	default:
		p.fail(name, "want sk_live_, sk_test_, rk_live_ or rk_test_ followed by letters and digits (no spaces or newline)")
	}
	return v
}

// stripeKeyLive reports whether a Stripe API key is a live-mode key.
func stripeKeyLive(key string) bool { return strings.Contains(key[:min(len(key), 8)], "_live_") }

// publicURL reads PUBLIC_URL: scheme and host (and port) only, since the
// dashboard's routes are fixed.
func (p *parser) publicURL(name string) *url.URL {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		p.fail(name, fmt.Sprintf("%q is not an origin like https://billing.example.com (scheme, host and port only)", v))
		return nil
	}
	return &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}
}

// urlAllowlist reads APP_URL_ALLOWLIST: comma-separated https URL
// prefixes (http for loopback hosts).
func (p *parser) urlAllowlist(name string) billing.URLAllowlist {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return billing.URLAllowlist{}
	}
	a, err := billing.ParseURLAllowlist(v)
	if err != nil {
		p.fail(name, "comma-separated URL prefixes like https://app.example.com/billing (https; http only for localhost; no user, query or fragment)")
		return billing.URLAllowlist{}
	}
	return a
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
