package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// TestKeyRingConfig: ERASURE_KEYS and LINK_SIGNING_KEYS are rings of keys
// of at least 16 characters (or "generated"), the old one-key variables
// still work, and every mistake is reported on the config's one line.
func TestKeyRingConfig(t *testing.T) {
	t.Parallel()
	const k1, k2 = "first-key-0123456789", "second-key-0123456789"
	tests := []struct {
		name    string
		env     map[string]string
		erasure []string
		link    []string
		require bool
		err     string // substring of the error; "" for none
	}{
		{"Defaults", nil, nil, nil, true, ""},
		{"Rings", map[string]string{"ERASURE_KEYS": k1 + ", generated", "LINK_SIGNING_KEYS": k2 + "," + k1}, []string{k1, "generated"}, []string{k2, k1}, true, ""},
		{"OneKeyAliases", map[string]string{"ERASURE_KEY": k1, "LINK_SIGNING_KEY": k2}, []string{k1}, []string{k2}, true, ""},
		{"ErrOneKeyWhitespace", map[string]string{"ERASURE_KEY": k1 + "\n"}, nil, nil, true, "ERASURE_KEY: has leading or trailing whitespace"},
		{"OptOutOfSignatures", map[string]string{"LINK_REQUIRE_SIGNATURE": "false"}, nil, nil, false, ""},
		{"ErrShortErasureKey", map[string]string{"ERASURE_KEY": "short"}, nil, nil, true, "ERASURE_KEY: at least 16 characters"},
		{"ErrShortLinkKey", map[string]string{"LINK_SIGNING_KEY": "x"}, nil, nil, true, "LINK_SIGNING_KEY: at least 16 characters"},
		{"ErrShortKeyInRing", map[string]string{"LINK_SIGNING_KEYS": k1 + ",tooshort"}, nil, nil, true, "LINK_SIGNING_KEYS: each key"},
		{"ErrBothForms", map[string]string{"ERASURE_KEYS": k1, "ERASURE_KEY": k2}, nil, nil, true, "ERASURE_KEYS: set ERASURE_KEYS or ERASURE_KEY, not both"},
		{"ErrKeyTwice", map[string]string{"ERASURE_KEYS": k1 + "," + k1}, nil, nil, true, "ERASURE_KEYS: a key is listed twice"},
		{"ErrEmptyRing", map[string]string{"LINK_SIGNING_KEYS": " , "}, nil, nil, true, "LINK_SIGNING_KEYS: no key in the list"},
		{"ErrRequireSignature", map[string]string{"LINK_REQUIRE_SIGNATURE": "no"}, nil, nil, true, `LINK_REQUIRE_SIGNATURE: "no" is not true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line with %q", err, tt.err)
				}
				for _, v := range tt.env {
					if len(v) >= 16 && strings.Contains(err.Error(), strings.TrimSpace(v)) {
						t.Fatalf("the error shows a key: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.ErasureKeys, tt.erasure) || !reflect.DeepEqual(c.LinkSigningKeys, tt.link) || c.LinkRequireSignature != tt.require {
				t.Fatalf("config %q %q %v", c.ErasureKeys, c.LinkSigningKeys, c.LinkRequireSignature)
			}
			if s := c.LogValue().String(); strings.Contains(s, k1) || strings.Contains(s, k2) {
				t.Fatalf("keys in the log value: %s", s)
			}
		})
	}
}

// TestKeysForgetCommand: `billingd keys forget` lets a rotated ProfitWell
// alias key go (the next start with the new key then passes), refuses to
// forget an erasure key, and says so when nothing matches.
func TestKeysForgetCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := []byte("old-profitwell-alias-key")
	if err := st.CheckProfitWellAliasKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckProfitWellAliasKey(ctx, []byte("new-profitwell-alias-key")); !errors.Is(err, postgres.ErrKeyChanged) {
		t.Fatalf("new alias key before forgetting the old: %v", err)
	}
	env := func(k string) string { return map[string]string{"DATABASE_URL": url, "LOG_LEVEL": "error"}[k] }
	tests := []struct {
		name string
		args []string
		out  string
		err  string
	}{
		{"ErrErasureKey", []string{"keys", "forget", "erasure", billing.KeyFingerprint(old)}, "", "erasure keys stay in the ring for good"},
		{"ErrUnknown", []string{"keys", "forget", "profitwell_alias", strings.Repeat("0", 32)}, "", "no profitwell_alias key with fingerprint"},
		{"ErrUsage", []string{"keys", "forget", "profitwell_alias"}, "", "keys forget: needs a purpose"},
		{"Forgets", []string{"keys", "forget", "profitwell_alias", billing.KeyFingerprint(old)}, "forgot profitwell_alias key", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, tt.args, env, &out, &bytes.Buffer{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("%v, output %q", err, out.String())
			}
		})
	}
	if err := st.CheckProfitWellAliasKey(ctx, []byte("new-profitwell-alias-key")); err != nil {
		t.Fatalf("new alias key after forgetting the old: %v", err)
	}
}
