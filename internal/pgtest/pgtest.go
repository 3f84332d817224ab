// Package pgtest gives tests a real, isolated PostgreSQL database.
//
// With TEST_DATABASE_URL unset, the first test binary of a run starts one
// shared server under SharedDir (guarded by a file lock, so
// parallel packages agree on one server) and leaves it running for the
// others; scripts/test.sh stops it at the end. Each test gets its own
// database, cloned from a migrated template whose name is a hash of the
// migrations, so a changed migration builds a fresh template.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgserver"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/migrations"
	_ "github.com/lib/pq" // driver
)

// SharedDir is where the shared test server lives when TEST_DATABASE_URL is
// unset: BILLINGD_PGTEST_DIR, or /tmp/billingd-pgtest. Two checkouts tested
// at once need different directories, since scripts/test.sh stops its
// server when it ends.
var SharedDir = sharedDir()

func sharedDir() string {
	if d := os.Getenv("BILLINGD_PGTEST_DIR"); d != "" {
		return d
	}
	return "/tmp/billingd-pgtest"
}

// FastSettings trade durability for speed: test data is disposable.
var FastSettings = []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=400", "shared_buffers=256MB"}

var (
	baseOnce sync.Once
	baseURL  string // admin URL (database "postgres") of the server tests use
	baseErr  error
)

// AdminURL returns the admin connection URL of the server tests use,
// starting the shared server when needed.
func AdminURL(t testing.TB) string {
	t.Helper()
	baseOnce.Do(func() { baseURL, baseErr = resolveBase() })
	if baseErr != nil {
		t.Fatalf("pgtest: %v", baseErr)
	}
	return baseURL
}

func resolveBase() (string, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, nil
	}
	if err := os.MkdirAll(SharedDir, 0o755); err != nil {
		return "", err
	}
	_ = os.Chmod(SharedDir, 0o755)
	lock, err := os.OpenFile(filepath.Join(SharedDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", SharedDir, err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	srv, err := pgserver.New(filepath.Join(SharedDir, "data"))
	if err != nil {
		return "", err
	}
	srv.Settings = FastSettings
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		return "", err
	}
	return srv.URL("postgres"), nil
}

// withDB returns u with its database name replaced.
func withDB(u, name string) string {
	pu, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	pu.Path = "/" + name
	return pu.String()
}

// TemplateName is the template database for the current migrations.
func TemplateName() string {
	h := sha256.New()
	entries, _ := fs.ReadDir(migrations.FS, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(migrations.FS, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return "billingd_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]
}

// URL creates a fresh, migrated database for t and returns its URL; the
// database is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	return CreateDB(t, AdminURL(t))
}

// CreateDB creates a fresh migrated database on the server behind adminURL.
func CreateDB(t testing.TB, adminURL string) string {
	t.Helper()
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	tmpl := TemplateName()
	if err := ensureTemplate(admin, adminURL, tmpl); err != nil {
		t.Fatalf("pgtest: template: %v", err)
	}
	name := "t_" + randHex(8)
	var lastErr error
	for i := 0; i < 50; i++ {
		// Cloning fails while another session is briefly connected to the template.
		if _, lastErr = admin.Exec(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tmpl)); lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("pgtest: create database: %v", lastErr)
	}
	t.Cleanup(func() {
		a, err := sql.Open("postgres", adminURL)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name))
	})
	return withDB(adminURL, name)
}

// EmptyDB creates a database with no schema at all on the shared server
// (for tests of migrating a fresh database) and returns its URL; it is
// dropped when t ends.
func EmptyDB(t testing.TB) string {
	t.Helper()
	adminURL := AdminURL(t)
	admin, err := sql.Open("postgres", adminURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	name := "e_" + randHex(8)
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("postgres", adminURL)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name))
	})
	return withDB(adminURL, name)
}

func ensureTemplate(admin *sql.DB, adminURL, tmpl string) error {
	ctx := context.Background()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// One builder per server: a session advisory lock across test binaries.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(717171)`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock(717171)`) //nolint:errcheck
	var exists bool
	if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, tmpl).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s`, tmpl)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s`, tmpl)); err != nil {
		return err
	}
	st, err := postgres.Open(ctx, withDB(adminURL, tmpl), slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 2})
	if err != nil {
		return err
	}
	if err := st.MigrateUp(); err != nil {
		st.Close()
		return err
	}
	st.Close()
	_, err = conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s WITH is_template = true`, tmpl))
	return err
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Open returns a Store on a fresh migrated database, closed when t ends,
// set up as serve sets up a direct connection (named statements on the
// event path).
func Open(t testing.TB) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), URL(t), slog.New(slog.DiscardHandler), postgres.Options{PrepareStatements: true})
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Server is a private PostgreSQL server that a test may stop, restart or
// kill (fault tests). It is removed when the test ends.
type Server struct {
	*pgserver.Server
}

// NewServer starts a private server for t.
func NewServer(t testing.TB) *Server {
	t.Helper()
	// Not t.TempDir(): that is 0700, and the server may run as postgres.
	if err := os.MkdirAll(SharedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(SharedDir, "private-"+randHex(6))
	srv, err := pgserver.New(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	srv.Settings = FastSettings
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Stop(context.Background())
		os.RemoveAll(dir)
		os.RemoveAll(srv.SocketDir)
	})
	return &Server{srv}
}

// AdminURL is the admin URL of the private server.
func (s *Server) AdminURL() string { return s.URL("postgres") }
