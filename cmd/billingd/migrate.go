package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/billingd/billingd/internal/postgres"
)

func (e *env) migrate(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"migrate needs up, down N [--yes] or version"}
	}
	var n int
	var yes bool
	switch args[0] {
	case "up", "version":
		if len(args) != 1 {
			return usageError{"migrate " + args[0] + " takes no arguments"}
		}
	case "down":
		var rest []string
		for _, a := range args[1:] {
			if a == "--yes" || a == "-yes" {
				yes = true
				continue
			}
			rest = append(rest, a)
		}
		if len(rest) != 1 {
			return usageError{"migrate down needs N, the number of migrations to roll back (and --yes to do it)"}
		}
		v, err := strconv.Atoi(rest[0])
		if err != nil || v < 1 {
			return usageError{fmt.Sprintf("migrate down: %q is not a positive number", rest[0])}
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
		// Dropping tables cannot be undone: show what goes first, and only
		// go on when the operator said so.
		plan, err := db.store.PlanDown(ctx, n)
		if err != nil {
			return err
		}
		printDownPlan(e.stdout, n, plan)
		if !yes {
			return fmt.Errorf("migrate down %d: nothing changed; run it again with --yes to roll back and drop the above", n)
		}
		if err := db.store.MigrateDown(n); err != nil {
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
