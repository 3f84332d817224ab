package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/billingd/billingd/migrations"
	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

// RequiredSchemaVersion is the highest migration this binary knows (see
// migrations.Known): /readyz reports ready only when the database is at
// least this new, and newer only when the newer migrations say this binary
// may still run against them (schema_compat.go).
func RequiredSchemaVersion() uint { return requiredSchemaVersion() }

// requiredSchemaVersion reads the embedded files once: readiness asks on
// every probe.
var requiredSchemaVersion = sync.OnceValue(func() uint {
	set, err := loadMigrations(migrations.Known())
	if err != nil {
		return 0
	}
	return set.latest()
})

// MigrateUp applies every pending migration this binary knows, logging each
// with its version and duration. A database already newer than the binary
// is left alone when its newer migrations are compatible with this binary
// (a rollback, or an old replica restarting mid-deploy); otherwise it fails
// with ErrSchemaIncompatible.
func (s *Store) MigrateUp() error {
	return s.migrateUp(context.Background(), migrations.Known())
}

func (s *Store) migrateUp(ctx context.Context, fsys fs.FS) error {
	set, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if err := s.recordCompat(ctx, set); err != nil {
		return err
	}
	known := set.latest()
	v, dirty, err := s.SchemaVersion()
	if err != nil {
		return err
	}
	if v > known {
		if err := s.checkNewer(ctx, v, known); err != nil {
			return err
		}
		s.log.Info("schema is newer than this binary and compatible with it: not migrating",
			"schema_version", v, "binary_schema_version", known, "dirty", dirty)
		return nil
	}
	m, err := s.migrator(fsys, set)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		// A newer binary may have migrated past this one between the check
		// above and the migration lock: judge that schema as above.
		if now, _, verr := s.SchemaVersion(); verr == nil && now > known {
			return s.checkNewer(ctx, now, known)
		}
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back the n newest applied migrations. It refuses, before
// changing anything, when fewer than n are applied or the database is newer
// than this binary. No down migration drops instance_keys (the keys erasure
// tombstones and audit subjects depend on): see migrations/README.md.
func (s *Store) MigrateDown(n int) error {
	return s.migrateDown(migrations.Known(), n)
}

func (s *Store) migrateDown(fsys fs.FS, n int) error {
	set, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	if _, _, _, err := s.downSteps(fsys, set, n); err != nil {
		return err
	}
	m, err := s.migrator(fsys, set)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Steps(-n); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down %d: %w", n, err)
	}
	return nil
}

func (s *Store) migrator(fsys fs.FS, set migrationSet) (*migrate.Migrate, error) {
	src, err := iofs.New(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	// A dedicated connection (closed with the migrator; the pool stays
	// open). The postgres driver takes a session advisory lock around every
	// run, so replicas starting together apply each migration once.
	conn, err := s.sess.DB.Conn(context.Background())
	if err != nil {
		return nil, fmt.Errorf("open migration connection: %w", translate(err))
	}
	drv, err := postgres.WithConnection(context.Background(), conn, &postgres.Config{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open migration driver: %w", translate(err))
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", &loggedDriver{Driver: drv, conn: conn, log: s.log, set: set})
	if err != nil {
		return nil, fmt.Errorf("create migrator: %w", err)
	}
	return m, nil
}

// loggedDriver sees every migration golang-migrate runs through the
// version changes around it (dirty before, clean after): it logs each one
// with its version and duration, and records an up migration's
// compatibility before the schema changes, so a binary that reads the new
// version already finds its record.
type loggedDriver struct {
	database.Driver
	conn *sql.Conn
	log  *slog.Logger
	set  migrationSet

	cur   int // the version last read or set
	from  int // the version the running migration started from
	start time.Time
}

func (d *loggedDriver) Version() (int, bool, error) {
	v, dirty, err := d.Driver.Version()
	if err == nil {
		d.cur = v
	}
	return v, dirty, err
}

func (d *loggedDriver) SetVersion(version int, dirty bool) error {
	if dirty {
		d.from, d.start = d.cur, time.Now()
		if version > d.cur {
			if mg, ok := d.set.find(uint(version)); ok {
				if err := upsertCompat(context.Background(), d.conn, mg); err != nil {
					return err
				}
			}
		}
		return d.Driver.SetVersion(version, dirty)
	}
	if err := d.Driver.SetVersion(version, dirty); err != nil {
		return err
	}
	took := float64(time.Since(d.start).Microseconds()) / 1000
	if version > d.from {
		mg, _ := d.set.find(uint(version))
		d.log.Info("migration applied", "version", version, "name", mg.Name, "duration_ms", took)
	} else {
		mg, _ := d.set.find(uint(d.from))
		d.log.Info("migration rolled back", "version", d.from, "name", mg.Name, "to_version", max(version, 0), "duration_ms", took)
	}
	d.cur = version
	return nil
}

// SchemaVersion returns the database's migration version and dirty flag;
// version 0 means no migration has run.
func (s *Store) SchemaVersion() (uint, bool, error) {
	var v struct {
		Version int64 `db:"version"`
		Dirty   bool  `db:"dirty"`
	}
	const q = `SELECT version, dirty FROM schema_migrations LIMIT 1`
	err := s.db.Get(&v, q)
	if err != nil {
		var missing bool
		if pe := asPQ(err); pe != nil && pe.Code == "42P01" {
			missing = true
		}
		if missing || errors.Is(err, errNoRows) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("read schema version: %w", translate(err))
	}
	if v.Version < 0 {
		return 0, v.Dirty, nil
	}
	return uint(v.Version), v.Dirty, nil
}
