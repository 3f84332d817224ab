package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/billingd/billingd/internal/postgres"
)

func migrateUpCommand() *command {
	return &command{
		name:    "migrate up",
		summary: "apply every pending migration (serve does it too)",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.migrate(ctx, func(st *postgres.Store) error { return st.MigrateUp() })
			}
		},
	}
}

func migrateDownCommand() *command {
	return &command{
		name:    "migrate down",
		args:    "N",
		summary: "roll back the last N migrations: prints what they drop, changes nothing without --yes",
		about: `Rolling back drops tables and columns, with their data; migrate up
recreates them empty. Without --yes, prints each migration it would roll
back and the tables and columns it drops (with their row counts) and
changes nothing. An N larger than the number of applied migrations is
refused before anything changes. instance_keys (the keys billingd
generated for itself, such as the erasure key) is never dropped, whatever N.`,
		env: dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			yes := fs.Bool("yes", false, "roll back and drop what the plan lists")
			return func(ctx context.Context, e *env, args []string) error {
				// --yes after N counts too: `migrate down 2 --yes`.
				if len(args) == 2 && (args[1] == "--yes" || args[1] == "-yes") {
					args, *yes = args[:1], true
				}
				if len(args) != 1 {
					return usageError{"needs N, the number of migrations to roll back"}
				}
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return usageError{fmt.Sprintf("%q is not a positive number", args[0])}
				}
				return e.migrate(ctx, func(st *postgres.Store) error {
					// Dropping tables cannot be undone: show what goes
					// first, and only go on when the operator said so.
					plan, err := st.PlanDown(ctx, n)
					if err != nil {
						return err
					}
					printDownPlan(e.stdout, n, plan)
					if !*yes {
						return fmt.Errorf("migrate down %d: nothing changed; run it again with --yes to roll back and drop the above", n)
					}
					return st.MigrateDown(n)
				})
			}
		},
	}
}

// printDownPlan lists each migration to roll back and the data it drops.
func printDownPlan(w io.Writer, n int, p *postgres.DownPlan) {
	fmt.Fprintf(w, "migrate down %d: schema version %d -> %d rolls back:\n", n, p.From, p.To)
	for _, s := range p.Steps {
		fmt.Fprintf(w, "  %04d %s:", s.Version, s.Name)
		if len(s.Drops) == 0 {
			fmt.Fprint(w, " drops no table or column")
		}
		for i, d := range s.Drops {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			switch {
			case d.Column == "" && d.Rows < 0:
				fmt.Fprintf(w, " drops table %s (not there)", d.Table)
			case d.Column == "":
				fmt.Fprintf(w, " drops table %s (%d rows)", d.Table, d.Rows)
			case d.Rows < 0:
				fmt.Fprintf(w, " drops column %s.%s (not there)", d.Table, d.Column)
			default:
				fmt.Fprintf(w, " drops column %s.%s (%d values)", d.Table, d.Column, d.Rows)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "instance_keys (the keys billingd generated for itself) is kept, whatever is rolled back.")
}

func migrateVersionCommand() *command {
	return &command{
		name:    "migrate version",
		summary: "print the schema version and the one this binary knows",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.migrate(ctx, nil)
			}
		},
	}
}

// migrate opens the database, runs change (nil: none) and prints the
// schema version.
func (e *env) migrate(ctx context.Context, change func(st *postgres.Store) error) error {
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	if change != nil {
		if err := change(db.store); err != nil {
			return err
		}
	}
	v, dirty, err := db.store.SchemaVersion()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "schema version %d (this binary knows %d)", v, postgres.RequiredSchemaVersion())
	if dirty {
		fmt.Fprint(e.stdout, " DIRTY: a migration failed part-way; fix it and force the version")
	}
	fmt.Fprintln(e.stdout)
	return nil
}
