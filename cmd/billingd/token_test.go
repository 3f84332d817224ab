package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgserver"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestTokenLifecycle drives billingd token create/list/revoke through run,
// as a shell would, and checks each step against the database.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cli := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, args, func(k string) string {
			if k == "DATABASE_URL" {
				return url
			}
			return ""
		}, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	var token string
	t.Run("Create", func(t *testing.T) {
		out, errOut, err := cli("token", "create", "--scope", "app", "--name", "backend")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "bd_app_") {
			t.Fatalf("stdout %q: want the token alone on the first line", out)
		}
		token = lines[0]
		if strings.Contains(errOut, token) {
			t.Error("the token is repeated on stderr")
		}
		got, err := st.TokenByHash(ctx, billing.HashToken(token))
		if err != nil || got.Name != "backend" || got.Scope != billing.ScopeApp || got.Revoked() {
			t.Fatalf("stored token: %+v, %v", got, err)
		}
		var n int
		if err := st.DB().Get(&n, `SELECT count(*) FROM api_tokens WHERE position($1::bytea IN token_hash) > 0`, []byte(token)); err != nil || n != 0 {
			t.Errorf("the token itself is stored (%d rows, %v)", n, err)
		}
	})
	t.Run("CreateFinance", func(t *testing.T) {
		out, _, err := cli("token", "create", "--name=finance-team", "--scope=finance")
		if err != nil || !strings.HasPrefix(out, "bd_fin_") {
			t.Fatalf("stdout %q, err %v", out, err)
		}
	})
	t.Run("List", func(t *testing.T) {
		out, _, err := cli("token", "list")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "backend") || !strings.Contains(out, "finance-team") || strings.Contains(out, token) {
			t.Fatalf("list output:\n%s", out)
		}
	})
	t.Run("Revoke", func(t *testing.T) {
		got, _ := st.TokenByHash(ctx, billing.HashToken(token))
		id := strconv.FormatInt(got.ID, 10)
		out, _, err := cli("token", "revoke", id)
		if err != nil || !strings.Contains(out, "revoked token "+id) {
			t.Fatalf("stdout %q, err %v", out, err)
		}
		got, _ = st.TokenByHash(ctx, billing.HashToken(token))
		if !got.Revoked() {
			t.Fatal("token not revoked")
		}
		out, _, err = cli("token", "revoke", id)
		if err != nil || !strings.Contains(out, "already revoked") {
			t.Fatalf("second revoke: stdout %q, err %v", out, err)
		}
		out, _, _ = cli("token", "list")
		if !strings.Contains(out, "backend") {
			t.Fatalf("revoked token missing from list:\n%s", out)
		}
	})

	errs := []struct {
		name   string
		args   []string
		usage  bool
		errHas string
	}{
		{"ErrNoSubcommand", []string{"token"}, true, ""},
		{"ErrUnknownSubcommand", []string{"token", "rotate"}, true, ""},
		{"ErrBadScope", []string{"token", "create", "--scope", "admin", "--name", "x"}, true, ""},
		{"ErrMissingName", []string{"token", "create", "--scope", "app"}, true, ""},
		{"ErrBadName", []string{"token", "create", "--scope", "app", "--name", "a b"}, true, ""},
		{"ErrUnknownFlag", []string{"token", "create", "--scope", "app", "--name", "x", "--ttl", "1h"}, true, ""},
		{"ErrExtraArgument", []string{"token", "list", "all"}, true, ""},
		{"ErrRevokeNoID", []string{"token", "revoke"}, true, ""},
		{"ErrRevokeBadID", []string{"token", "revoke", "abc"}, true, ""},
		{"ErrRevokeUnknownID", []string{"token", "revoke", "999999"}, false, "no token with ID 999999"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := cli(tt.args...)
			var ue usageError
			if tt.usage != errors.As(err, &ue) || err == nil {
				t.Fatalf("err = %v, want usage error: %v", err, tt.usage)
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("err = %v, want it to say %q", err, tt.errHas)
			}
			if out != "" {
				t.Errorf("stdout %q on error", out)
			}
		})
	}
}

// TestTokenCommandLeavesRunningEmbeddedServer: `billingd token create`
// next to a running `billingd serve` in embedded mode (the README's
// workflow) uses the same local PostgreSQL and must not stop it.
func TestTokenCommandLeavesRunningEmbeddedServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := filepath.Join(worldDir(t), ".billingd")
	srv, err := pgserver.New(filepath.Join(dataDir, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil { // stands in for serve's server
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "BILLINGD_DATA_DIR" {
			return dataDir
		}
		return ""
	}
	if err := run(ctx, []string{"token", "create", "--scope", "app", "--name", "backend"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "bd_app_") {
		t.Fatalf("stdout %q", stdout.String())
	}
	if !srv.Running(ctx) {
		t.Fatal("token create stopped the embedded PostgreSQL it did not start")
	}
}
