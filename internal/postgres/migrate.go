package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"

	"github.com/billingd/billingd/migrations"
	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
)

var migrationName = regexp.MustCompile(`^(\d+)_.*\.up\.sql$`)

// RequiredSchemaVersion is the highest migration embedded in this binary:
// /readyz reports ready only when the database is at least this new, so a
// rolling deploy keeps old replicas ready while a newer one migrates.
func RequiredSchemaVersion() uint {
	entries, _ := fs.ReadDir(migrations.FS, ".")
	var max uint
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		if uint(n) > max {
			max = uint(n)
		}
	}
	return max
}

func (s *Store) migrator() (*migrate.Migrate, error) {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	// A dedicated connection (closed with the migrator; the pool stays
	// open). The postgres driver takes a session advisory lock around every
	// run, so replicas starting together apply each migration once.
	conn, err := s.db.DB.Conn(context.Background())
	if err != nil {
		return nil, fmt.Errorf("open migration connection: %w", translate(err))
	}
	drv, err := postgres.WithConnection(context.Background(), conn, &postgres.Config{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open migration driver: %w", translate(err))
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", drv)
	if err != nil {
		return nil, fmt.Errorf("create migrator: %w", err)
	}
	return m, nil
}

// MigrateUp applies every pending migration.
func (s *Store) MigrateUp() error {
	m, err := s.migrator()
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back n migrations.
func (s *Store) MigrateDown(n int) error {
	m, err := s.migrator()
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Steps(-n); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down %d: %w", n, err)
	}
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
	return uint(v.Version), v.Dirty, nil
}
