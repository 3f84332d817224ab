package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/billingd/billingd/migrations"
	"github.com/lib/pq"
)

// keysTable holds the keys billingd generates for itself (the erasure key
// tombstones and audit subjects are made with). Losing it while tombstones survive elsewhere (a
// backup, a replica's memory) would make new replicas hash with a new key,
// so no down migration may drop it, and MigrateDown refuses one that would.
const keysTable = "instance_keys"

// DownPlan is what rolling back would do, for the operator to read first.
type DownPlan struct {
	From, To uint // schema versions before and after
	Steps    []DownStep
}

// DownStep is one migration to roll back and the data it drops.
type DownStep struct {
	Version uint
	Name    string
	Drops   []Drop
}

// Drop is a table or column a down migration removes, and how much data
// goes with it.
type Drop struct {
	Table  string
	Column string // "": the whole table
	// Rows is how many rows the table holds now, or for a column how many
	// of them hold a value; -1 when it does not exist.
	Rows int64
}

// PlanDown describes what MigrateDown(n) would roll back and drop, without
// changing anything. It fails as MigrateDown would (fewer than n applied, a
// dirty or newer schema, instance_keys dropped).
func (s *Store) PlanDown(ctx context.Context, n int) (*DownPlan, error) {
	fsys := migrations.Known()
	set, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	from, to, steps, err := s.downSteps(fsys, set, n)
	if err != nil {
		return nil, err
	}
	plan := &DownPlan{From: from, To: to}
	for _, mg := range steps {
		drops, err := downDrops(fsys, mg)
		if err != nil {
			return nil, err
		}
		for i := range drops {
			if drops[i].Rows, err = s.countDropped(ctx, drops[i]); err != nil {
				return nil, err
			}
		}
		plan.Steps = append(plan.Steps, DownStep{Version: mg.Version, Name: mg.Name, Drops: drops})
	}
	return plan, nil
}

// downSteps returns the migrations MigrateDown(n) rolls back, newest first,
// or why it must not run at all. Checking first means a too-large n changes
// nothing, where golang-migrate would roll back what it can and only then
// report the shortfall.
func (s *Store) downSteps(fsys fs.FS, set migrationSet, n int) (from, to uint, steps []migration, err error) {
	if n < 1 {
		return 0, 0, nil, fmt.Errorf("migrate down %d: roll back at least one migration", n)
	}
	v, dirty, err := s.SchemaVersion()
	if err != nil {
		return 0, 0, nil, err
	}
	if dirty {
		return 0, 0, nil, fmt.Errorf("migrate down: schema version %d is dirty (a migration failed part-way): repair it and force the version first", v)
	}
	if known := set.latest(); v > known {
		return 0, 0, nil, fmt.Errorf("migrate down: schema version %d is newer than this binary knows (%d): roll it back with the binary that applied it", v, known)
	}
	if v == 0 {
		return 0, 0, nil, fmt.Errorf("migrate down: no migration is applied")
	}
	var applied migrationSet
	for _, mg := range set {
		if mg.Version <= v {
			applied = append(applied, mg)
		}
	}
	if len(applied) == 0 || applied.latest() != v {
		return 0, 0, nil, fmt.Errorf("migrate down: schema version %d is not a migration this binary knows", v)
	}
	if n > len(applied) {
		return 0, 0, nil, fmt.Errorf("migrate down %d: only %d migrations are applied (schema version %d); migrate down %d rolls back all of them (instance_keys stays)", n, len(applied), v, len(applied))
	}
	for i := len(applied) - 1; i >= len(applied)-n; i-- {
		steps = append(steps, applied[i])
	}
	if n < len(applied) {
		to = applied[len(applied)-n-1].Version
	}
	for _, mg := range steps {
		drops, err := downDrops(fsys, mg)
		if err != nil {
			return 0, 0, nil, err
		}
		for _, d := range drops {
			if d.Table == keysTable && d.Column == "" {
				return 0, 0, nil, fmt.Errorf("migrate down: migration %04d_%s would drop %s: refusing (migrations/README.md)", mg.Version, mg.Name, keysTable)
			}
		}
	}
	return v, to, steps, nil
}

var (
	sqlComment  = regexp.MustCompile(`--[^\n]*`)
	dropTable   = regexp.MustCompile(`(?is)^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(.+?)(?:\s+(?:CASCADE|RESTRICT))?$`)
	alterTable  = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?("?[A-Za-z0-9_]+"?)\s+(.*)$`)
	dropColumn  = regexp.MustCompile(`(?is)\bDROP\s+COLUMN\s+(?:IF\s+EXISTS\s+)?("?[A-Za-z0-9_]+"?)`)
	truncateTbl = regexp.MustCompile(`(?is)^(?:TRUNCATE|DELETE\s+FROM)\s+(?:TABLE\s+)?(?:ONLY\s+)?("?[A-Za-z0-9_]+"?)`)
)

// downDrops lists the tables and columns mg's down file drops (or empties).
// It reads our own migration files, whose statements are plain DDL
// separated by semicolons, never inside a string.
func downDrops(fsys fs.FS, mg migration) ([]Drop, error) {
	body, err := fs.ReadFile(fsys, mg.down)
	if err != nil {
		return nil, fmt.Errorf("read migration %s: %w", mg.down, err)
	}
	var drops []Drop
	for _, stmt := range strings.Split(sqlComment.ReplaceAllString(string(body), ""), ";") {
		stmt = strings.TrimSpace(stmt)
		if m := dropTable.FindStringSubmatch(stmt); m != nil {
			for _, name := range strings.Split(m[1], ",") {
				drops = append(drops, Drop{Table: unquote(name)})
			}
			continue
		}
		if m := truncateTbl.FindStringSubmatch(stmt); m != nil {
			drops = append(drops, Drop{Table: unquote(m[1])})
			continue
		}
		if m := alterTable.FindStringSubmatch(stmt); m != nil {
			for _, c := range dropColumn.FindAllStringSubmatch(m[2], -1) {
				drops = append(drops, Drop{Table: unquote(m[1]), Column: unquote(c[1])})
			}
		}
	}
	return drops, nil
}

func unquote(ident string) string {
	return strings.Trim(strings.TrimSpace(ident), `"`)
}

// countDropped counts what d would take with it: rows of a table, values of
// a column; -1 when it is not there.
func (s *Store) countDropped(ctx context.Context, d Drop) (int64, error) {
	var exists bool
	const qExists = `
SELECT EXISTS (
    SELECT 1 FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = $1 AND ($2 = '' OR column_name = $2))`
	if err := s.db.GetContext(ctx, &exists, qExists, d.Table, d.Column); err != nil {
		return 0, fmt.Errorf("inspect %s: %w", d.Table, translate(err))
	}
	if !exists {
		return -1, nil
	}
	// Identifiers cannot be parameters; these come from our own migration
	// files and are quoted all the same.
	q := `SELECT count(*) FROM ` + pq.QuoteIdentifier(d.Table)
	if d.Column != "" {
		q += ` WHERE ` + pq.QuoteIdentifier(d.Column) + ` IS NOT NULL`
	}
	var n int64
	if err := s.db.GetContext(ctx, &n, q); err != nil {
		return 0, fmt.Errorf("count %s: %w", d.Table, translate(err))
	}
	return n, nil
}
