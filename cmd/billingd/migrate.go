package main

import (
	"context"
	"flag"
	"fmt"
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
		summary: "roll back the last N migrations",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usageError{"needs N, the number of migrations to roll back"}
				}
				n, err := strconv.Atoi(args[0])
				if err != nil || n < 1 {
					return usageError{fmt.Sprintf("%q is not a positive number", args[0])}
				}
				return e.migrate(ctx, func(st *postgres.Store) error { return st.MigrateDown(n) })
			}
		},
	}
}

func migrateVersionCommand() *command {
	return &command{
		name:    "migrate version",
		summary: "print the schema version and the one this binary needs",
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
	fmt.Fprintf(e.stdout, "schema version %d (this binary needs %d)", v, postgres.RequiredSchemaVersion())
	if dirty {
		fmt.Fprint(e.stdout, " DIRTY: a migration failed part-way; fix it and force the version")
	}
	fmt.Fprintln(e.stdout)
	return nil
}
