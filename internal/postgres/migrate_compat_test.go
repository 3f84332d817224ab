package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/migrations"
)

// withMigrations is the embedded migrations plus extra files: the migration
// set of a binary newer than this one.
func withMigrations(t *testing.T, extra map[string]string) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b}
	}
	for name, body := range extra {
		m[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

// logBuffer collects a store's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) records(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) == nil && r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func openLogged(t *testing.T, url string) (*postgres.Store, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	st, err := postgres.Open(context.Background(), url, slog.New(slog.NewJSONHandler(logs, nil)), postgres.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, logs
}

func schemaVersion(t *testing.T, st *postgres.Store) uint {
	t.Helper()
	v, dirty, err := st.SchemaVersion()
	if err != nil || dirty {
		t.Fatalf("schema version %d dirty=%v err=%v", v, dirty, err)
	}
	return v
}

// A binary runs against a schema newer than it knows exactly when every
// newer migration is recorded as compatible with it; the newer binary's
// migrations are each logged with version and duration.
func TestNewerSchemaCompatibility(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, logs := openLogged(t, pgtest.EmptyDB(t))
	head := postgres.RequiredSchemaVersion()
	probe := map[string]string{
		"9001_compat_probe.up.sql":   "-- Additive: declares nothing.\nCREATE TABLE compat_probe (id int);\n",
		"9001_compat_probe.down.sql": "DROP TABLE compat_probe;\n",
	}
	additive := withMigrations(t, probe)
	breaking := withMigrations(t, map[string]string{
		"9001_compat_probe.up.sql":   probe["9001_compat_probe.up.sql"],
		"9001_compat_probe.down.sql": probe["9001_compat_probe.down.sql"],
		"9002_compat_rename.up.sql": "-- Binaries before 9002 write the old name.\n" +
			"-- oldest-compatible-binary: 9002\nALTER TABLE compat_probe RENAME COLUMN id TO probe_id;\n",
		"9002_compat_rename.down.sql": "ALTER TABLE compat_probe RENAME COLUMN probe_id TO id;\n",
	})

	// The newer binary migrates a fresh database; each migration is logged.
	if err := postgres.MigrateUpFS(st, additive); err != nil {
		t.Fatal(err)
	}
	if v := schemaVersion(t, st); v != 9001 {
		t.Fatalf("version %d, want 9001", v)
	}
	applied := logs.records("migration applied")
	if len(applied) == 0 || applied[0]["version"] != float64(1) || applied[len(applied)-1]["version"] != float64(9001) {
		t.Fatalf("migration log lines: %v", applied)
	}
	for _, r := range applied {
		if _, ok := r["duration_ms"].(float64); !ok || r["name"] == "" {
			t.Fatalf("log line without duration or name: %v", r)
		}
	}

	t.Run("AdditiveIsCompatible", func(t *testing.T) {
		// This binary (it knows up to head) starts: nothing to migrate,
		// and no "no migration found for version 9001".
		if err := st.MigrateUp(); err != nil {
			t.Fatalf("older binary against an additive newer schema: %v", err)
		}
		if err := st.CheckSchema(ctx); err != nil {
			t.Fatalf("CheckSchema: %v", err)
		}
		if v := schemaVersion(t, st); v != 9001 {
			t.Fatalf("version moved to %d", v)
		}
	})

	t.Run("AdditiveInProgressIsCompatible", func(t *testing.T) {
		// Mid-migration the version is dirty; its record says it is safe.
		if _, err := st.DB().Exec(`UPDATE schema_migrations SET dirty = true`); err != nil {
			t.Fatal(err)
		}
		defer st.DB().Exec(`UPDATE schema_migrations SET dirty = false`) //nolint:errcheck
		if err := st.CheckSchema(ctx); err != nil {
			t.Fatalf("CheckSchema during a compatible migration: %v", err)
		}
	})

	t.Run("IncompatibleRefuses", func(t *testing.T) {
		if err := postgres.MigrateUpFS(st, breaking); err != nil {
			t.Fatal(err)
		}
		err := st.MigrateUp()
		if !errors.Is(err, postgres.ErrSchemaIncompatible) {
			t.Fatalf("MigrateUp = %v, want ErrSchemaIncompatible", err)
		}
		for _, want := range []string{"schema version 9002 needs a binary that knows schema version 9002", "migration 9002", "this binary knows " + itoa(head)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error spans several lines: %q", err)
		}
		if err := st.CheckSchema(ctx); !errors.Is(err, postgres.ErrSchemaIncompatible) {
			t.Errorf("CheckSchema = %v, want ErrSchemaIncompatible", err)
		}
		// The 9001 binary is too old as well; the 9002 one is fine.
		if err := postgres.CheckNewer(ctx, st, additive); !errors.Is(err, postgres.ErrSchemaIncompatible) {
			t.Errorf("9001 binary: %v", err)
		}
		if err := postgres.CheckNewer(ctx, st, breaking); err != nil {
			t.Errorf("9002 binary: %v", err)
		}
	})

	t.Run("RollBackMakesItCompatibleAgain", func(t *testing.T) {
		if err := postgres.MigrateDownFS(st, breaking, 1); err != nil {
			t.Fatal(err)
		}
		back := logs.records("migration rolled back")
		if len(back) != 1 || back[0]["version"] != float64(9002) || back[0]["to_version"] != float64(9001) {
			t.Fatalf("rollback log lines: %v", back)
		}
		// 9002's record stays behind but no longer counts.
		if err := st.MigrateUp(); err != nil {
			t.Fatalf("after rolling 9002 back: %v", err)
		}
	})

	t.Run("UnrecordedRefuses", func(t *testing.T) {
		// A newer schema nobody recorded (migrated by hand, say) is not
		// assumed safe.
		if _, err := st.DB().Exec(`DELETE FROM schema_compat WHERE version = 9001`); err != nil {
			t.Fatal(err)
		}
		err := st.MigrateUp()
		if !errors.Is(err, postgres.ErrSchemaIncompatible) || !strings.Contains(err.Error(), "no compatibility is recorded") {
			t.Fatalf("MigrateUp = %v", err)
		}
	})
}

func itoa(n uint) string { return strconv.FormatUint(uint64(n), 10) }

// Every embedded migration's declaration parses, and bad ones are refused.
func TestMigrationDirectives(t *testing.T) {
	t.Parallel()
	got, err := postgres.MigrationDirectives(migrations.FS)
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	if uint(len(got)) == 0 {
		t.Fatal("no migrations")
	}
	for v, oldest := range got {
		if oldest > v {
			t.Errorf("migration %d declares oldest compatible binary %d, newer than itself", v, oldest)
		}
	}
	ok, err := postgres.MigrationDirectives(fstest.MapFS{
		"0005_x.up.sql":   {Data: []byte("-- why\n--  oldest-compatible-binary:  5 \nSELECT 1;")},
		"0005_x.down.sql": {Data: []byte("SELECT 1;")},
		"0006_y.up.sql":   {Data: []byte("SELECT 1;")},
		"0006_y.down.sql": {Data: []byte("SELECT 1;")},
	})
	if err != nil || ok[5] != 5 || ok[6] != 0 {
		t.Fatalf("directives = %v, %v", ok, err)
	}
	bad := []struct{ name, up, down string }{
		{"NotANumber", "-- oldest-compatible-binary: soon\n", "SELECT 1;"},
		{"Zero", "-- oldest-compatible-binary: 0\n", "SELECT 1;"},
		{"NewerThanItself", "-- oldest-compatible-binary: 6\n", "SELECT 1;"},
		{"NoDownFile", "SELECT 1;", ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"0005_x.up.sql": {Data: []byte(tc.up)}}
			if tc.down != "" {
				fsys["0005_x.down.sql"] = &fstest.MapFile{Data: []byte(tc.down)}
			}
			if _, err := postgres.MigrationDirectives(fsys); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// breakingStmt finds the statements that usually break older binaries (see
// migrations/README.md): a migration using one must say which binaries
// may still run against it, so the default "compatible" is never applied
// to it by oversight.
var breakingStmt = regexp.MustCompile(`(?i)\b(DROP\s+TABLE|DROP\s+COLUMN|RENAME\s+COLUMN|RENAME\s+TO|SET\s+NOT\s+NULL|ALTER\s+COLUMN\s+\w+\s+(?:SET\s+DATA\s+)?TYPE)\b`)

var declared = regexp.MustCompile(`(?m)^--\s*oldest-compatible-binary:`)

func TestBreakingMigrationsDeclareCompatibility(t *testing.T) {
	t.Parallel()
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".up.sql") {
			continue
		}
		b, err := fs.ReadFile(migrations.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		code := regexp.MustCompile(`--[^\n]*`).ReplaceAll(b, nil)
		if m := breakingStmt.Find(code); m != nil && !declared.Match(b) {
			t.Errorf("%s uses %q but declares no oldest-compatible-binary (migrations/README.md)", e.Name(), m)
		}
	}
	// The check sees what it is for.
	if !breakingStmt.MatchString("ALTER TABLE customers RENAME COLUMN account_id TO app_account_id") ||
		!breakingStmt.MatchString("alter table subscriptions alter column quantity type bigint") ||
		breakingStmt.MatchString("ALTER TABLE customers ADD COLUMN note_ref uuid NULL") {
		t.Fatal("the pattern does not tell breaking statements from additive ones")
	}
}
