package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
)

// migrate down prints what it would drop and changes nothing without
// --yes; with it, it rolls back; a too-large N changes nothing; instance
// keys survive rolling back everything.
func TestMigrateDownCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st := openStore(t, url)
	if err := st.PrepareErasureKey(ctx); err != nil {
		t.Fatal(err)
	}
	var key []byte
	if err := st.DB().Get(&key, `SELECT key FROM instance_keys WHERE name = 'erasure_hmac'`); err != nil {
		t.Fatal(err)
	}
	head := postgres.RequiredSchemaVersion()
	prev := previousSchemaVersion(t)
	cli := func(args ...string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, args, func(k string) string {
			if k == "DATABASE_URL" {
				return url
			}
			return ""
		}, &stdout, &stderr)
		return stdout.String(), err
	}
	version := func() uint {
		v, dirty, err := st.SchemaVersion()
		if err != nil || dirty {
			t.Fatalf("version %d dirty %v: %v", v, dirty, err)
		}
		return v
	}

	t.Run("WithoutYesRefuses", func(t *testing.T) {
		out, err := cli("migrate", "down", "1")
		if err == nil || !strings.Contains(err.Error(), "nothing changed") || !strings.Contains(err.Error(), "--yes") {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(out, fmt.Sprintf("schema version %d -> %d rolls back:\n  %04d ", head, prev, head)) || !strings.Contains(out, "instance_keys") {
			t.Fatalf("plan not printed:\n%s", out)
		}
		if v := version(); v != head {
			t.Fatalf("version %d after a refused rollback", v)
		}
	})

	t.Run("TooManyRefuses", func(t *testing.T) {
		out, err := cli("migrate", "down", "100", "--yes")
		if err == nil || !strings.Contains(err.Error(), "migrations are applied") {
			t.Fatalf("err = %v", err)
		}
		if out != "" || version() != head {
			t.Fatalf("stdout %q, version %d", out, version())
		}
	})

	t.Run("AllWithYesKeepsInstanceKeys", func(t *testing.T) {
		out, err := cli("migrate", "down", "--yes", "1")
		if err != nil || version() != prev || !strings.Contains(out, fmt.Sprintf("schema version %d (this binary knows %d)", prev, head)) {
			t.Fatalf("down 1 --yes: %v\n%s", err, out)
		}
		rest := strconv.Itoa(len(knownVersions(t)) - 1)
		if out, err = cli("migrate", "down", rest, "--yes"); err != nil {
			t.Fatalf("down %s --yes: %v\n%s", rest, err, out)
		}
		if !strings.Contains(out, "drops table customers") || !strings.Contains(out, "schema version 0 ") {
			t.Fatalf("output:\n%s", out)
		}
		var got []byte
		if err := st.DB().Get(&got, `SELECT key FROM instance_keys WHERE name = 'erasure_hmac'`); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("erasure key after rolling back everything: %v", err)
		}
		if out, err := cli("migrate", "up"); err != nil || version() != head {
			t.Fatalf("up again: %v\n%s", err, out)
		}
	})
}
