package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"

	"github.com/billingd/billingd/migrations"
	"github.com/lib/pq"
)

// ErrSchemaIncompatible: the database's schema is newer than this binary
// and one of the newer migrations says this binary may not run against it.
var ErrSchemaIncompatible = errors.New("schema incompatible with this binary")

// ErrSchemaBehind: the database's schema is older than this binary, or a
// migration this binary knows failed part-way (dirty).
var ErrSchemaBehind = errors.New("schema behind this binary")

// migration is one embedded migration and what it declares.
type migration struct {
	Version uint
	Name    string // "cheap_checks" for 0082_cheap_checks.up.sql
	// OldestBinary is the oldest binary, named by the schema version it
	// knows, that may still run against a database with this migration
	// applied: the file's "-- oldest-compatible-binary: N" line. 0 (no
	// line, the default for additive migrations): every binary may.
	OldestBinary uint
	up, down     string // file names
}

// migrationSet is a binary's migrations, oldest first.
type migrationSet []migration

func (s migrationSet) latest() uint {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].Version
}

func (s migrationSet) find(v uint) (migration, bool) {
	i := sort.Search(len(s), func(i int) bool { return s[i].Version >= v })
	if i < len(s) && s[i].Version == v {
		return s[i], true
	}
	return migration{}, false
}

// compatDirective is the line a migration that breaks older binaries
// carries (migrations/README.md).
var compatDirective = regexp.MustCompile(`(?m)^--\s*oldest-compatible-binary:\s*(.*?)\s*$`)

var migrationFile = regexp.MustCompile(`^\d+_([a-z0-9_]+)\.(up|down)\.sql$`)

// loadMigrations reads the migrations in fsys and their declarations. A
// malformed declaration is an error: guessing would either block a
// rollback that is safe or allow one that is not.
func loadMigrations(fsys fs.FS) (migrationSet, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	byVersion := map[uint]*migration{}
	for _, e := range entries {
		v, ok := migrations.Version(e.Name())
		if !ok {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		mg := byVersion[v]
		if mg == nil {
			mg = &migration{Version: v, Name: m[1]}
			byVersion[v] = mg
		}
		if m[2] == "down" {
			mg.down = e.Name()
			continue
		}
		mg.up = e.Name()
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		if d := compatDirective.FindSubmatch(body); d != nil {
			n, err := strconv.ParseUint(string(d[1]), 10, 32)
			if err != nil || n == 0 || uint(n) > v {
				return nil, fmt.Errorf("migration %s: oldest-compatible-binary %q must be a schema version from 1 to %d", e.Name(), d[1], v)
			}
			mg.OldestBinary = uint(n)
		}
	}
	set := make(migrationSet, 0, len(byVersion))
	for _, mg := range byVersion {
		if mg.up == "" || mg.down == "" {
			return nil, fmt.Errorf("migration %04d_%s needs both an up and a down file", mg.Version, mg.Name)
		}
		set = append(set, *mg)
	}
	sort.Slice(set, func(i, j int) bool { return set[i].Version < set[j].Version })
	return set, nil
}

// schema_compat records, per applied migration, the oldest binary that may
// run against it. Binaries write it: an older binary cannot know what a
// newer migration changed, so it reads the newer binary's word here. Like
// golang-migrate's schema_migrations it is the migrator's own bookkeeping,
// created before any migration runs and never dropped by one.
const qCreateCompat = `
CREATE TABLE IF NOT EXISTS schema_compat (
    version        bigint PRIMARY KEY CHECK (version > 0),
    oldest_binary  bigint NOT NULL CHECK (oldest_binary >= 0 AND oldest_binary <= version),
    recorded_at    timestamptz NOT NULL DEFAULT now()
)`

// recordCompat creates schema_compat if needed and records every migration
// this binary knows that is not recorded yet (the migrations applied before
// billingd kept the table, and those about to be applied). A row already
// there is kept: it was written by the binary that applied the migration.
func (s *Store) recordCompat(ctx context.Context, set migrationSet) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record schema compatibility: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck
	// CREATE TABLE IF NOT EXISTS is not safe against itself: replicas
	// starting together would collide on the catalog's unique index.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('billingd.schema_compat', 0))`); err != nil {
		return fmt.Errorf("record schema compatibility: %w", translate(err))
	}
	if _, err := tx.ExecContext(ctx, qCreateCompat); err != nil {
		return fmt.Errorf("create schema_compat: %w", translate(err))
	}
	versions := make([]int64, len(set))
	oldest := make([]int64, len(set))
	for i, mg := range set {
		versions[i], oldest[i] = int64(mg.Version), int64(mg.OldestBinary)
	}
	const q = `
INSERT INTO schema_compat (version, oldest_binary)
SELECT * FROM unnest($1::bigint[], $2::bigint[])
ON CONFLICT (version) DO NOTHING`
	if _, err := tx.ExecContext(ctx, q, pq.Array(versions), pq.Array(oldest)); err != nil {
		return fmt.Errorf("record schema compatibility: %w", translate(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record schema compatibility: %w", translate(err))
	}
	return nil
}

// upsertCompat records mg as its applying binary declares it, just before
// the migration runs.
func upsertCompat(ctx context.Context, conn *sql.Conn, mg migration) error {
	const q = `
INSERT INTO schema_compat (version, oldest_binary)
VALUES ($1, $2)
ON CONFLICT (version) DO UPDATE SET oldest_binary = EXCLUDED.oldest_binary, recorded_at = now()`
	if _, err := conn.ExecContext(ctx, q, int64(mg.Version), int64(mg.OldestBinary)); err != nil {
		return fmt.Errorf("record compatibility of migration %d: %w", mg.Version, translate(err))
	}
	return nil
}

// checkNewer decides whether a binary that knows migrations up to known may
// run against a database at version v > known: only if every migration it
// does not know is recorded and none names a newer oldest binary.
func (s *Store) checkNewer(ctx context.Context, v, known uint) error {
	var r struct {
		Recorded bool  `db:"recorded"`
		Oldest   int64 `db:"oldest"`
		Blocker  int64 `db:"blocker"`
	}
	const q = `
SELECT coalesce(bool_or(version = $1), false) AS recorded,
       coalesce(max(oldest_binary), 0) AS oldest,
       coalesce(min(version) FILTER (WHERE oldest_binary > $2), 0) AS blocker
FROM schema_compat
WHERE version > $2 AND version <= $1`
	err := s.db.GetContext(ctx, &r, q, int64(v), int64(known))
	if pe := asPQ(err); pe != nil && pe.Code == "42P01" { // undefined_table
		err, r.Recorded = nil, false
	}
	if err != nil {
		return fmt.Errorf("read schema compatibility: %w", translate(err))
	}
	if !r.Recorded {
		return fmt.Errorf("%w: schema version %d is newer than this binary's %d and no compatibility is recorded for it: run the binary that applied it", ErrSchemaIncompatible, v, known)
	}
	if uint(r.Oldest) > known {
		return fmt.Errorf("%w: schema version %d needs a binary that knows schema version %d or newer (migration %d says so); this binary knows %d: deploy a newer binary, or roll the schema back with the binary that applied it (billingd migrate down)",
			ErrSchemaIncompatible, v, r.Oldest, r.Blocker, known)
	}
	return nil
}

// CheckSchema says whether this binary can serve against the database as it
// is now: at exactly the schema it knows, or at a newer one whose newer
// migrations are compatible with it (readiness re-checks it, so an old
// replica stops taking traffic once an incompatible migration lands).
func (s *Store) CheckSchema(ctx context.Context) error {
	known := RequiredSchemaVersion()
	v, dirty, err := s.SchemaVersion()
	if err != nil {
		return err
	}
	switch {
	case v > known:
		// A dirty version this binary does not know is a newer binary's
		// migration in progress (or failed): its compatibility record
		// was written before it started, and is what counts here.
		return s.checkNewer(ctx, v, known)
	case dirty:
		return fmt.Errorf("%w: schema version %d is dirty: a migration failed part-way or is running", ErrSchemaBehind, v)
	case v < known:
		return fmt.Errorf("%w: schema version %d, need %d", ErrSchemaBehind, v, known)
	}
	return nil
}
