package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/billingd/billingd/internal/postgres"
)

func (e *env) migrate(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"migrate needs up, down N or version"}
	}
	var n int
	switch args[0] {
	case "up", "version":
		if len(args) != 1 {
			return usageError{"migrate " + args[0] + " takes no arguments"}
		}
	case "down":
		if len(args) != 2 {
			return usageError{"migrate down needs N, the number of migrations to roll back"}
		}
		v, err := strconv.Atoi(args[1])
		if err != nil || v < 1 {
			return usageError{fmt.Sprintf("migrate down: %q is not a positive number", args[1])}
		}
		n = v
	default:
		return usageError{fmt.Sprintf("unknown migrate command %q", args[0])}
	}
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	switch args[0] {
	case "up":
		if err := db.store.MigrateUp(); err != nil {
			return err
		}
	case "down":
		if err := db.store.MigrateDown(n); err != nil {
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
