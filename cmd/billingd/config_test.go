package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
)

// TestConfigBadValues: each bad value of each variable is refused at
// start by the real binary: exit 1 and one stderr line naming the
// variable, never echoing a secret.
func TestConfigBadValues(t *testing.T) {
	t.Parallel()
	bin := billingdBinary(t)
	const aliasKey = "PROFITWELL_ALIAS_KEY=alias-key-0123456789"
	tests := []struct {
		name   string
		env    []string // the bad value first; the rest makes it the only problem
		secret bool     // the value must not appear on stderr
	}{
		{"DatabaseURLScheme", []string{"DATABASE_URL=mysql://u@h/db"}, false},
		{"DatabaseSessionURLScheme", []string{"DATABASE_SESSION_URL=mysql://u@h/db", "DATABASE_URL=postgres://u@h/db"}, false},
		{"DBPreparedStatements", []string{"DB_PREPARED_STATEMENTS=maybe"}, false},
		{"StripeReadRateZero", []string{"STRIPE_READ_RATE=0"}, false},
		{"StripeReadRateHuge", []string{"STRIPE_READ_RATE=5000"}, false},
		{"ListenAddr", []string{"LISTEN_ADDR=nonsense"}, false},
		{"ListenAddrPort", []string{"LISTEN_ADDR=127.0.0.1:99999"}, false},
		{"HTTPMaxConnsFew", []string{"HTTP_MAX_CONNS=8"}, false},
		{"LogLevel", []string{"LOG_LEVEL=loud"}, false},
		{"ShutdownTimeoutZero", []string{"SHUTDOWN_TIMEOUT=0"}, false},
		{"ShutdownTimeoutHuge", []string{"SHUTDOWN_TIMEOUT=5h"}, false},
		{"DBMaxConnsZero", []string{"DB_MAX_CONNS=0"}, false},
		{"DBMaxConnsWord", []string{"DB_MAX_CONNS=many"}, false},
		{"EventBatchers", []string{"EVENT_BATCHERS=65"}, false},
		{"EventBatchMax", []string{"EVENT_BATCH_MAX=0"}, false},
		{"EventQueueMaxZero", []string{"EVENT_QUEUE_MAX=0"}, false},
		{"EventQueueMaxWord", []string{"EVENT_QUEUE_MAX=lots"}, false},
		{"GOGCWord", []string{"GOGC=abc"}, false},
		{"GOGCNegative", []string{"GOGC=-5"}, false},
		{"GOGCFraction", []string{"GOGC=1.5"}, false},
		{"WebhookSecretPrefix", []string{"STRIPE_WEBHOOK_SECRETS=notasecret0123456789"}, true},
		{"WebhookSecretShort", []string{"STRIPE_WEBHOOK_SECRETS=whsec_abc"}, true},
		{"WebhookSecretSingular", []string{"STRIPE_WEBHOOK_SECRET=whsec_0123456789 abc"}, true},
		{"WebhookToleranceZero", []string{"WEBHOOK_TOLERANCE=0"}, false},
		{"WebhookToleranceOverAnHour", []string{"WEBHOOK_TOLERANCE=61m"}, false},
		{"WebhookToleranceNegative", []string{"WEBHOOK_TOLERANCE=-1m"}, false},
		{"WebhookToleranceWord", []string{"WEBHOOK_TOLERANCE=five"}, false},
		{"WebhookMaxBody", []string{"WEBHOOK_MAX_BODY_BYTES=10"}, false},
		{"ApplyTimeoutTooLong", []string{"WEBHOOK_APPLY_TIMEOUT=10m"}, false},
		{"ApplyTimeoutTooShort", []string{"WEBHOOK_APPLY_TIMEOUT=10ms"}, false},
		{"BodyTimeoutPastDeadline", []string{"WEBHOOK_BODY_TIMEOUT=2s", "WEBHOOK_APPLY_TIMEOUT=1s"}, false},
		{"BodyTimeoutZero", []string{"WEBHOOK_BODY_TIMEOUT=0"}, false},
		{"MaxBodyReadsZero", []string{"WEBHOOK_MAX_BODY_READS=0"}, false},
		{"LinkSigningKeyOneCharacter", []string{"LINK_SIGNING_KEY=x"}, true},
		{"LinkSigningKeyNewline", []string{"LINK_SIGNING_KEY=link-key-0123456789\n"}, true},
		{"GracePeriodNegative", []string{"ENTITLEMENT_GRACE_PERIOD=-1h"}, false},
		{"GracePeriodYear", []string{"ENTITLEMENT_GRACE_PERIOD=8760h"}, false},
		{"MetricsAddr", []string{"METRICS_ADDR=nonsense"}, false},
		{"MetricsTokenShort", []string{"METRICS_TOKEN=short"}, true},
		{"MetricsTokenSpace", []string{"METRICS_TOKEN=metrics token 0123456789"}, true},
		{"PprofNotLoopback", []string{"PPROF_ADDR=0.0.0.0:6060"}, false},
		{"PprofNonsense", []string{"PPROF_ADDR=nonsense"}, false},
		{"ProfitWellTokenSpace", []string{"PROFITWELL_API_TOKEN=pw token", aliasKey}, true},
		{"ProfitWellAliasKeyShort", []string{"PROFITWELL_ALIAS_KEY=short"}, true},
		{"ProfitWellAliasKeyMissing", []string{"PROFITWELL_ALIAS_KEY=", "PROFITWELL_API_TOKEN=pwtoken"}, false},
		{"ProfitWellBase", []string{"PROFITWELL_API_BASE=ftp://api.profitwell.com"}, false},
		{"AppWebhookSecretShort", []string{"APP_WEBHOOK_SECRET=short-app-secret-0123456789", "APP_WEBHOOK_URL=https://app.example.com/hooks"}, true},
		{"AppWebhookSecretMissing", []string{"APP_WEBHOOK_SECRET=", "APP_WEBHOOK_URL=https://app.example.com/hooks"}, false},
		{"AppWebhookURLScheme", []string{"APP_WEBHOOK_URL=ftp://app.example.com/hooks", "APP_WEBHOOK_SECRET=app-webhook-secret-0123456789abcdefgh"}, false},
		{"AppWebhookURLMissing", []string{"APP_WEBHOOK_URL=", "APP_WEBHOOK_SECRET=app-webhook-secret-0123456789abcdefgh"}, false},
		{"ChangeFeedOffWithAppWebhooks", []string{"CHANGE_FEED=false", "APP_WEBHOOK_URL=https://app.example.com/hooks", "APP_WEBHOOK_SECRET=app-webhook-secret-0123456789abcdefgh"}, false},
		{"ChangeFeedWord", []string{"CHANGE_FEED=yes"}, false},
		{"ChangesRetentionShort", []string{"CHANGES_RETENTION=30m"}, false},
		{"ProfitWellMaxAttempts", []string{"PROFITWELL_MAX_ATTEMPTS=0"}, false},
		{"ErasureKeyShort", []string{"ERASURE_KEY=short"}, true},
		{"EventRetentionBelowStripeRetries", []string{"WEBHOOK_EVENT_RETENTION_DAYS=2"}, false},
		{"MetricsRetentionNegative", []string{"METRICS_RETENTION_DAYS=-1"}, false},
		{"StripeKeyPublishable", []string{"STRIPE_API_KEY=pk_test_0123456789abcdef"}, true},
		{"StripeKeyWebhookSecret", []string{"STRIPE_API_KEY=whsec_0123456789abcdef"}, true},
		{"StripeKeyNoBody", []string{"STRIPE_API_KEY=sk_test_"}, false}, // nothing secret; the prefix is in the message
		{"StripeKeyUnknownMode", []string{"STRIPE_API_KEY=sk_prod_0123456789abcdef"}, true},
		{"StripeKeyNewline", []string{"STRIPE_API_KEY=sk_live_0123456789abcdef\n"}, true},
		{"StripeKeyQuoted", []string{`STRIPE_API_KEY="sk_live_0123456789abcdef"`}, true},
		{"StripeAPIBase", []string{"STRIPE_API_BASE=localhost:12111"}, false},
		{"ReconcileTooOften", []string{"RECONCILE_INTERVAL=5s"}, false},
		{"ReconcileWord", []string{"RECONCILE_INTERVAL=daily"}, false},
		{"PublicURLNoScheme", []string{"PUBLIC_URL=billing.example.com"}, false},
		{"PublicURLPath", []string{"PUBLIC_URL=https://billing.example.com/dash"}, false},
		{"PublicURLUser", []string{"PUBLIC_URL=https://admin@billing.example.com"}, false},
		{"ReportingCurrencyName", []string{"REPORTING_CURRENCY=euro"}, false},
		{"ReportingCurrencyDigits", []string{"REPORTING_CURRENCY=e1r"}, false},
		{"SessionTTLTooShort", []string{"DASHBOARD_SESSION_TTL=1m"}, false},
		{"SessionTTLDays", []string{"DASHBOARD_SESSION_TTL=30d"}, false},
		{"SessionIdleTooShort", []string{"DASHBOARD_SESSION_IDLE=30s"}, false},
		{"SessionIdleOverTTL", []string{"DASHBOARD_SESSION_IDLE=13h"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, value, _ := strings.Cut(tt.env[0], "=")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			// Should a value pass by mistake, serve fails at once on an
			// unreachable database instead of starting one here. The case's
			// own values come last and win.
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "BILLINGD_DATA_DIR=" + t.TempDir(),
				"DATABASE_URL=postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", "LISTEN_ADDR=127.0.0.1:0"}, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "billingd: invalid configuration: "+name+": ") {
				t.Fatalf("stderr is not one line naming %s:\n%s", name, stderr.String())
			}
			if v := strings.TrimSpace(value); tt.secret && len(v) > 3 && strings.Contains(stderr.String(), v) {
				t.Errorf("stderr echoes the secret: %s", stderr.String())
			}
		})
	}
	t.Run("EveryBadValueOneLineEach", func(t *testing.T) {
		t.Parallel()
		env := []string{"GOGC=abc", "WEBHOOK_TOLERANCE=0", "LINK_SIGNING_KEY=x", "STRIPE_API_KEY=pk_live_x", "PUBLIC_URL=nope"}
		_, err := loadConfig(func(k string) string {
			for _, kv := range env {
				if name, v, _ := strings.Cut(kv, "="); name == k {
					return v
				}
			}
			return ""
		})
		var stderr bytes.Buffer
		if code := report(err, &stderr); code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if len(lines) != len(env) {
			t.Fatalf("%d lines for %d bad values:\n%s", len(lines), len(env), stderr.String())
		}
		for i, kv := range env {
			name, _, _ := strings.Cut(kv, "=")
			if !strings.HasPrefix(lines[i], "billingd: invalid configuration: "+name+": ") {
				t.Errorf("line %d %q does not name %s", i+1, lines[i], name)
			}
		}
	})
}

// TestConfigGoodValues: the edges of each range, and the documented forms,
// are accepted.
func TestConfigGoodValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(c Config) bool
	}{
		{"Defaults", nil, func(c Config) bool {
			return c.WebhookTolerance == 5*time.Minute && c.DashboardSessionTTL == 12*time.Hour &&
				c.DashboardSessionIdle == time.Hour && c.PublicURL == nil &&
				c.WebhookApplyTimeout == 5*time.Second && c.WebhookBodyTimeout == 2*time.Second &&
				c.WebhookMaxBodyReads == 128 && c.EventQueueMax == 512 && c.HTTPMaxConns == 4096
		}},
		{"BodyTimeoutUpToDeadline", map[string]string{"WEBHOOK_APPLY_TIMEOUT": "1s", "WEBHOOK_BODY_TIMEOUT": "1s"}, func(c Config) bool {
			return c.WebhookApplyTimeout == time.Second && c.WebhookBodyTimeout == time.Second
		}},
		{"GOGCOff", map[string]string{"GOGC": "off"}, func(c Config) bool { return c.GOGC == "off" }},
		{"GOGCZero", map[string]string{"GOGC": "0"}, func(c Config) bool { return c.GOGC == "0" }},
		{"ToleranceOneHour", map[string]string{"WEBHOOK_TOLERANCE": "1h"}, func(c Config) bool { return c.WebhookTolerance == time.Hour }},
		{"RestrictedLiveKey", map[string]string{"STRIPE_API_KEY": "rk_live_51HxYzAbCdEf0123456789"}, func(c Config) bool {
			return stripeKeyLive(c.StripeAPIKey)
		}},
		{"SecretTestKey", map[string]string{"STRIPE_API_KEY": "sk_test_fake"}, func(c Config) bool { return !stripeKeyLive(c.StripeAPIKey) }},
		{"PublicURLTrailingSlash", map[string]string{"PUBLIC_URL": "https://Billing.Example.com/"}, func(c Config) bool {
			return c.PublicURL != nil && c.PublicURL.String() == "https://billing.example.com"
		}},
		{"ShortTTLShortensIdleDefault", map[string]string{"DASHBOARD_SESSION_TTL": "30m"}, func(c Config) bool {
			return c.DashboardSessionIdle == 30*time.Minute
		}},
		{"IdleUpToTTL", map[string]string{"DASHBOARD_SESSION_TTL": "24h", "DASHBOARD_SESSION_IDLE": "24h"}, func(c Config) bool {
			return c.DashboardSessionIdle == 24*time.Hour
		}},
		{"ReconcileOff", map[string]string{"RECONCILE_INTERVAL": "0"}, func(c Config) bool { return c.ReconcileInterval == 0 }},

		{"SessionURLDefaultsToDatabaseURL", map[string]string{"DATABASE_URL": "postgres://u@pooler:6432/db"}, func(c Config) bool {
			return c.DatabaseSessionURL == c.DatabaseURL && c.DBPreparedStatements && c.StripeReadRate == 0
		}},
		{"SessionURLPastThePoolerTurnsNamedStatementsOff", map[string]string{"DATABASE_URL": "postgres://u@pooler:6432/db",
			"DATABASE_SESSION_URL": "postgres://u@primary:5432/db", "STRIPE_READ_RATE": "90"}, func(c Config) bool {
			return c.DatabaseSessionURL == "postgres://u@primary:5432/db" && !c.DBPreparedStatements && c.StripeReadRate == 90
		}},
		{"NamedStatementsOffExplicitly", map[string]string{"DATABASE_URL": "postgres://u@pooler:6432/db", "DB_PREPARED_STATEMENTS": "false"},
			func(c Config) bool { return !c.DBPreparedStatements }},
		{"ChangesRetentionDefault", nil, func(c Config) bool {
			return c.ChangesRetention == 7*24*time.Hour && c.AppWebhookURL == "" && !c.ChangeFeed
		}},
		{"ChangeFeedOn", map[string]string{"CHANGE_FEED": "true"}, func(c Config) bool { return c.ChangeFeed && c.AppWebhookURL == "" }},
		{"ChangeFeedOnWithAppWebhooks", map[string]string{"APP_WEBHOOK_URL": "https://app.example.com/hooks",
			"APP_WEBHOOK_SECRET": "app-webhook-secret-0123456789abcdefgh"}, func(c Config) bool { return c.ChangeFeed }},
		{"AppWebhookURLKeptExactly", map[string]string{"APP_WEBHOOK_URL": "https://app.example.com/hooks/billingd/",
			"APP_WEBHOOK_SECRET": "app-webhook-secret-0123456789abcdefgh"}, func(c Config) bool {
			return c.AppWebhookURL == "https://app.example.com/hooks/billingd/" && c.AppWebhookSecret != ""
		}},
		{"ReportingCurrencyLowered", map[string]string{"REPORTING_CURRENCY": "EUR"}, func(c Config) bool { return c.ReportingCurrency == "eur" }},
		{"SixteenCharacterKeys", map[string]string{"LINK_SIGNING_KEY": "0123456789abcdef", "ERASURE_KEY": "0123456789abcdef",
			"METRICS_TOKEN": "0123456789abcdef", "STRIPE_WEBHOOK_SECRETS": "whsec_0123456789, whsec_abcdefghij"}, func(c Config) bool {
			return len(c.WebhookSecrets) == 2
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// TestStripeKeyModeWarning: a key whose mode no recent webhook event has
// is warned about at start; a matching or mixed history, or none, is not.
func TestStripeKeyModeWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		key        string
		live, test int // recent events of each mode
		warn       bool
	}{
		{"TestKeyLiveEvents", "sk_test_fake", 3, 0, true},
		{"LiveKeyTestEvents", "rk_live_0123456789", 0, 2, true},
		{"LiveKeyLiveEvents", "sk_live_0123456789", 5, 0, false},
		{"TestKeyMixedEvents", "sk_test_fake", 4, 1, false},
		{"NoEventsYet", "sk_live_0123456789", 0, 0, false},
		{"NoKey", "", 3, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t)
			for i := range tt.live + tt.test {
				if _, err := st.DB().Exec(`INSERT INTO stripe_events (event_id, event_type, created, livemode, outcome) VALUES ($1, 'customer.created', now(), $2, 'applied')`,
					"evt_mode"+string(rune('a'+i)), i < tt.live); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := loadConfig(func(k string) string { return map[string]string{"STRIPE_API_KEY": tt.key}[k] })
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			e := newEnv(cfg, func(string) string { return "" }, &bytes.Buffer{}, &logs)
			e.warnStripeKeyMode(context.Background(), st)
			warned := strings.Contains(logs.String(), "STRIPE_API_KEY's mode differs")
			if warned != tt.warn {
				t.Fatalf("warned %v, want %v: %s", warned, tt.warn, logs.String())
			}
			if warned && (strings.Contains(logs.String(), tt.key) || !strings.Contains(logs.String(), `"key_mode"`)) {
				t.Errorf("warning leaks the key or lacks the modes: %s", logs.String())
			}
		})
	}
}

// TestReadmeConfigurationTable: the README's configuration table names
// every variable the configuration reads.
func TestReadmeConfigurationTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, v := range append(configEnv(), commonEnv...) {
		if !strings.Contains(section, "| `"+v+"` |") && !strings.Contains(section, "`"+v+"` is also read") {
			t.Errorf("README Configuration table lacks %s", v)
		}
	}
}

// DATABASE_SESSION_URL bypasses a pooler in front of DATABASE_URL: alone,
// with the embedded PostgreSQL, it is a mistake.
func TestConfigSessionURLNeedsDatabaseURL(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_SESSION_URL": "postgres://u@db:5432/billingd"}
	_, err := loadConfig(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "DATABASE_SESSION_URL: needs DATABASE_URL") {
		t.Fatalf("err %v, want DATABASE_SESSION_URL named", err)
	}
}
