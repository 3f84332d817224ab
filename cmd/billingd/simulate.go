package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/billingd/billingd/internal/stripefake"
	"github.com/stripe/stripe-go/v76/webhook"
)

func simulateCommand() *command {
	return &command{
		name:    "simulate",
		summary: "send signed fake life-cycle events to a running server (no Stripe account needed)",
		about: `Signs a realistic stream of subscription life-cycle events for N fake
customers with the configured webhook secret or, in embedded mode, the
development secret serve keeps in BILLINGD_DATA_DIR/webhook-secret.`,
		env: []string{"LISTEN_ADDR", "STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL", "BILLINGD_DATA_DIR"},
		setup: func(fs *flag.FlagSet) runFunc {
			base := fs.String("url", "", "base `URL` of a running billingd (default http://$LISTEN_ADDR)")
			n := fs.Int("customers", 10, "simulate `N` fake customers (1 to 10000)")
			token := fs.String("token", "", "an app-scope `TOKEN`: first replace the features catalog with the demo one (PUT /v1/catalog)")
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.simulate(ctx, *base, *n, *token)
			}
		},
	}
}

// simulate signs a realistic stream of subscription life-cycle events for
// n fake customers (stripefake.Lifecycle) and posts them to the server at
// base, so a new user sees state, entitlement and metrics change without a
// Stripe account.
func (e *env) simulate(ctx context.Context, base string, n int, token string) error {
	if base == "" {
		base = "http://" + e.cfg.ListenAddr
	}
	if n < 1 || n > 10000 {
		return usageError{"--customers must be 1 to 10000"}
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Sprintf("--url %q is not an http(s) URL", base)}
	}
	secret, err := e.simulateSecret()
	if err != nil {
		return err
	}
	events, outcomes, err := stripefake.Lifecycle(n, time.Now())
	if err != nil {
		return err
	}
	endpoint := strings.TrimRight(base, "/") + "/webhooks/stripe"
	hc := &http.Client{Timeout: 30 * time.Second}
	if token != "" {
		if err := putCatalog(ctx, hc, strings.TrimRight(base, "/")+"/v1/catalog", token); err != nil {
			return fmt.Errorf("simulate: apply the demo catalog: %w", err)
		}
		fmt.Fprintln(e.stdout, "applied the demo features catalog (projects, seats per unit, sso on Pro)")
	}
	for i, ev := range events {
		if err := postEvent(ctx, hc, endpoint, secret, ev); err != nil {
			return fmt.Errorf("simulate: event %d of %d (%s %s): %w", i+1, len(events), ev.Type, ev.ID, err)
		}
	}
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o.Status]++
	}
	fmt.Fprintf(e.stdout, "sent %d events for %d customers to %s: %d active, %d trialing, %d past_due, %d canceled\n",
		len(events), n, endpoint, counts["active"], counts["trialing"], counts["past_due"], counts["canceled"])
	fmt.Fprintf(e.stdout, "accounts acct_sim_00000 .. acct_sim_%05d (try GET /v1/accounts/acct_sim_00000/entitlement)\n", n-1)
	if n > 1 {
		fmt.Fprintln(e.stdout, "features: every account's answer lists its Stripe Entitlements; acct_sim_00001 is scheduled to go back to Starter in 10 days (scheduled_change)")
	}
	return nil
}

// putCatalog replaces the server's catalog with the demo one.
func putCatalog(ctx context.Context, hc *http.Client, endpoint, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint, strings.NewReader(stripefake.SimCatalog))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// simulateSecret is the first configured webhook secret or, in embedded
// mode, the development secret serve created.
func (e *env) simulateSecret() (string, error) {
	if len(e.cfg.WebhookSecrets) > 0 {
		return e.cfg.WebhookSecrets[0], nil
	}
	if e.cfg.DatabaseURL == "" {
		path := filepath.Join(e.cfg.DataDir, "webhook-secret")
		b, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(b)); err == nil && strings.HasPrefix(s, "whsec_") {
			return s, nil
		}
		return "", fmt.Errorf("simulate: no webhook secret: start `billingd serve` once in embedded mode (it writes %s) or set STRIPE_WEBHOOK_SECRET", path)
	}
	return "", errors.New("simulate: no webhook secret: set STRIPE_WEBHOOK_SECRET to the secret the server verifies with")
}

// postEvent signs and posts one event; a 5xx is retried a few times (the
// server says a retry can succeed), anything else but 2xx fails.
func postEvent(ctx context.Context, hc *http.Client, endpoint, secret string, ev stripefake.SimEvent) error {
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev.Payload, Secret: secret})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(ev.Payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", sp.Header)
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			return nil
		case resp.StatusCode >= 500:
			last = fmt.Errorf("server answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
			continue
		}
		return fmt.Errorf("server answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return last
}
