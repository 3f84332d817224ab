package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting billingd reads, parsed from the environment in one
// place. Secrets are held here and never logged (see Config.LogValue).
type Config struct {
	DatabaseURL     string        // DATABASE_URL; empty: start a local PostgreSQL under DataDir
	DataDir         string        // BILLINGD_DATA_DIR (default ./.billingd)
	ListenAddr      string        // LISTEN_ADDR (default 127.0.0.1:8080)
	LogLevel        slog.Level    // LOG_LEVEL: debug|info|warn|error
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT (default 30s)
	DBMaxConns      int           // DB_MAX_CONNS (default 32)
	EventBatchers   int           // EVENT_BATCHERS (default 2): webhook event transactions at once per process
	EventBatchMax   int           // EVENT_BATCH_MAX (default 64): events per transaction at most
	EventQueueMax   int           // EVENT_QUEUE_MAX (default 512): events waiting for a transaction at most; more get 503 at once

	WebhookSecrets      []string      // STRIPE_WEBHOOK_SECRETS (comma-separated) and/or STRIPE_WEBHOOK_SECRET
	WebhookTolerance    time.Duration // WEBHOOK_TOLERANCE (default 5m)
	WebhookMaxBodyBytes int64         // WEBHOOK_MAX_BODY_BYTES (default 1 MiB)
	WebhookApplyTimeout time.Duration // WEBHOOK_APPLY_TIMEOUT (default 5s): a delivery's deadline, body to commit
	WebhookBodyTimeout  time.Duration // WEBHOOK_BODY_TIMEOUT (default 2s): a body's time to arrive after its headers
	WebhookMaxBodyReads int           // WEBHOOK_MAX_BODY_READS (default 256): bodies read at once
	LinkSigningKey      string        // LINK_SIGNING_KEY: HMAC key for client_reference_id

	EntitlementGrace time.Duration // ENTITLEMENT_GRACE_PERIOD (default 72h): past_due still entitled this long

	ProfitWellToken       string // PROFITWELL_API_TOKEN
	ProfitWellAliasKey    string // PROFITWELL_ALIAS_KEY
	ProfitWellBase        string // PROFITWELL_API_BASE
	ProfitWellMaxAttempts int    // PROFITWELL_MAX_ATTEMPTS (default 10)

	StripeAPIKey      string        // STRIPE_API_KEY
	StripeAPIBase     string        // STRIPE_API_BASE
	ReconcileInterval time.Duration // RECONCILE_INTERVAL (0: off)

	ErasureKey                string // ERASURE_KEY; empty: generated and kept in the database
	WebhookEventRetentionDays int    // WEBHOOK_EVENT_RETENTION_DAYS (default 30, minimum 3)
	MetricsRetentionDays      int    // METRICS_RETENTION_DAYS (0: keep)

	MetricsAddr  string // METRICS_ADDR: serve /metrics on its own listener
	MetricsToken string // METRICS_TOKEN: bearer token required on /metrics
	PprofAddr    string // PPROF_ADDR: serve net/http/pprof on this (loopback) address; off when unset
}

// LogValue keeps secrets out of logs: only whether each is set.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("database_url_set", c.DatabaseURL != ""),
		slog.String("listen_addr", c.ListenAddr),
		slog.String("log_level", c.LogLevel.String()),
		slog.Int("webhook_secrets", len(c.WebhookSecrets)),
		slog.Bool("profitwell_token_set", c.ProfitWellToken != ""),
		slog.Bool("stripe_api_key_set", c.StripeAPIKey != ""),
	)
}

// loadConfig parses the environment. Every bad value is reported, one line
// each, so a misconfigured deploy is fixed in one round.
func loadConfig(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		DatabaseURL:     strings.TrimSpace(getenv("DATABASE_URL")),
		DataDir:         p.str("BILLINGD_DATA_DIR", ".billingd"),
		ListenAddr:      p.str("LISTEN_ADDR", "127.0.0.1:8080"),
		LogLevel:        p.level("LOG_LEVEL", slog.LevelInfo),
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		DBMaxConns:      p.intRange("DB_MAX_CONNS", 32, 1, 1000),
		EventBatchers:   p.intRange("EVENT_BATCHERS", 2, 1, 64),
		EventBatchMax:   p.intRange("EVENT_BATCH_MAX", 64, 1, 1000),
		EventQueueMax:   p.intRange("EVENT_QUEUE_MAX", 512, 1, 1_000_000),

		WebhookTolerance:    p.duration("WEBHOOK_TOLERANCE", 5*time.Minute),
		WebhookMaxBodyBytes: int64(p.intRange("WEBHOOK_MAX_BODY_BYTES", 1<<20, 1024, 64<<20)),
		WebhookApplyTimeout: p.durationRange("WEBHOOK_APPLY_TIMEOUT", 5*time.Second, 100*time.Millisecond, time.Minute),
		WebhookBodyTimeout:  p.durationRange("WEBHOOK_BODY_TIMEOUT", 2*time.Second, 10*time.Millisecond, time.Minute),
		WebhookMaxBodyReads: p.intRange("WEBHOOK_MAX_BODY_READS", 256, 1, 100_000),
		LinkSigningKey:      getenv("LINK_SIGNING_KEY"),

		EntitlementGrace: p.duration("ENTITLEMENT_GRACE_PERIOD", 72*time.Hour),

		ProfitWellToken:       getenv("PROFITWELL_API_TOKEN"),
		ProfitWellAliasKey:    getenv("PROFITWELL_ALIAS_KEY"),
		ProfitWellBase:        p.url("PROFITWELL_API_BASE", "https://api.profitwell.com"),
		ProfitWellMaxAttempts: p.intRange("PROFITWELL_MAX_ATTEMPTS", 10, 1, 100),

		StripeAPIKey:      getenv("STRIPE_API_KEY"),
		StripeAPIBase:     p.url("STRIPE_API_BASE", ""),
		ReconcileInterval: p.duration("RECONCILE_INTERVAL", 0),

		ErasureKey:                getenv("ERASURE_KEY"),
		WebhookEventRetentionDays: p.intRange("WEBHOOK_EVENT_RETENTION_DAYS", 30, 3, 36500),
		MetricsRetentionDays:      p.intRange("METRICS_RETENTION_DAYS", 0, 0, 36500),

		MetricsAddr:  getenv("METRICS_ADDR"),
		MetricsToken: getenv("METRICS_TOKEN"),
		PprofAddr:    getenv("PPROF_ADDR"),
	}
	for _, s := range strings.Split(getenv("STRIPE_WEBHOOK_SECRETS")+","+getenv("STRIPE_WEBHOOK_SECRET"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			if !strings.HasPrefix(s, "whsec_") {
				p.fail("STRIPE_WEBHOOK_SECRETS", "each secret starts with whsec_")
				continue
			}
			c.WebhookSecrets = append(c.WebhookSecrets, s)
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
	if c.ProfitWellToken != "" && c.ProfitWellAliasKey == "" {
		p.fail("PROFITWELL_ALIAS_KEY", "required when PROFITWELL_API_TOKEN is set (aliases must be keyed)")
	}
	if c.ProfitWellAliasKey != "" && len(c.ProfitWellAliasKey) < 16 {
		p.fail("PROFITWELL_ALIAS_KEY", "at least 16 characters")
	}
	if c.ErasureKey != "" && len(c.ErasureKey) < 16 {
		p.fail("ERASURE_KEY", "at least 16 characters")
	}
	if c.MetricsAddr != "" {
		p.checkAddr("METRICS_ADDR", c.MetricsAddr)
	}
	if c.PprofAddr != "" {
		p.checkAddr("PPROF_ADDR", c.PprofAddr)
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
	p.checkAddr("LISTEN_ADDR", c.ListenAddr)
	if c.ReconcileInterval > 0 && c.StripeAPIKey == "" {
		p.fail("RECONCILE_INTERVAL", "scheduled reconcile needs STRIPE_API_KEY")
	}
	if c.ReconcileInterval > 0 && c.ReconcileInterval < time.Minute {
		p.fail("RECONCILE_INTERVAL", "at least 1m (each run lists every subscription)")
	}
	return p.err()
}

type parser struct {
	getenv func(string) string
	errs   []string
}

func (p *parser) fail(name, why string) {
	p.errs = append(p.errs, fmt.Sprintf("%s: %s", name, why))
}

func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return errors.New("invalid configuration: " + strings.Join(p.errs, "; "))
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, fmt.Sprintf("%q is not a duration like 30s or 5m", v))
		return def
	}
	return d
}

func (p *parser) durationRange(name string, def, min, max time.Duration) time.Duration {
	d := p.duration(name, def)
	if d < min || d > max {
		p.fail(name, fmt.Sprintf("%v is not between %v and %v", d, min, max))
		return def
	}
	return d
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
