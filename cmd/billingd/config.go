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

	WebhookSecrets      []string      // STRIPE_WEBHOOK_SECRETS (comma-separated) and/or STRIPE_WEBHOOK_SECRET
	WebhookTolerance    time.Duration // WEBHOOK_TOLERANCE (default 5m)
	WebhookMaxBodyBytes int64         // WEBHOOK_MAX_BODY_BYTES (default 1 MiB)

	// Key rings (issue 16): the first key writes or signs, every key checks
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

	StripeAPIKey      string        // STRIPE_API_KEY
	StripeAPIBase     string        // STRIPE_API_BASE
	ReconcileInterval time.Duration // RECONCILE_INTERVAL (0: off)

	WebhookEventRetentionDays int // WEBHOOK_EVENT_RETENTION_DAYS (default 30, minimum 3)
	MetricsRetentionDays      int // METRICS_RETENTION_DAYS (0: keep)

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
		slog.Int("erasure_keys", len(c.ErasureKeys)),
		slog.Int("link_signing_keys", len(c.LinkSigningKeys)),
		slog.Bool("link_require_signature", c.LinkRequireSignature),
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

		WebhookTolerance:    p.duration("WEBHOOK_TOLERANCE", 5*time.Minute),
		WebhookMaxBodyBytes: int64(p.intRange("WEBHOOK_MAX_BODY_BYTES", 1<<20, 1024, 64<<20)),

		ErasureKeys:          p.keyRing("ERASURE_KEYS", "ERASURE_KEY"),
		LinkSigningKeys:      p.keyRing("LINK_SIGNING_KEYS", "LINK_SIGNING_KEY"),
		LinkRequireSignature: p.boolean("LINK_REQUIRE_SIGNATURE", true),

		EntitlementGrace: p.duration("ENTITLEMENT_GRACE_PERIOD", 72*time.Hour),

		ProfitWellToken:       getenv("PROFITWELL_API_TOKEN"),
		ProfitWellAliasKey:    getenv("PROFITWELL_ALIAS_KEY"),
		ProfitWellBase:        p.url("PROFITWELL_API_BASE", "https://api.profitwell.com"),
		ProfitWellMaxAttempts: p.intRange("PROFITWELL_MAX_ATTEMPTS", 10, 1, 100),

		StripeAPIKey:      getenv("STRIPE_API_KEY"),
		StripeAPIBase:     p.url("STRIPE_API_BASE", ""),
		ReconcileInterval: p.duration("RECONCILE_INTERVAL", 0),

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

// generatedKey in a key ring names the key billingd generated and keeps in
// the database (shorter than any key, so it cannot be one).
const generatedKey = "generated"

// keyRing reads a comma-separated ring of HMAC keys (list) or its
// one-key alias (single, read verbatim, as before rings existed). Each key
// is at least 16 characters, or "generated"; nil when neither is set.
func (p *parser) keyRing(list, single string) []string {
	l, one := strings.TrimSpace(p.getenv(list)), p.getenv(single)
	if l != "" && one != "" {
		p.fail(list, "set "+list+" or "+single+", not both")
		return nil
	}
	name, keys := list, []string(nil)
	if one != "" {
		name, keys = single, []string{one}
	} else if l != "" {
		for _, k := range strings.Split(l, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
	}
	seen := map[string]bool{}
	for _, k := range keys {
		switch {
		case seen[k]:
			p.fail(name, "a key is listed twice")
			return nil
		case k != generatedKey && len(k) < 16:
			p.fail(name, `each key at least 16 characters (or "generated")`)
			return nil
		}
		seen[k] = true
	}
	if l != "" && len(keys) == 0 {
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
