package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/postgres"
)

// tokenCmd: billingd token create --scope app|finance --name NAME | list | revoke ID.
func (e *env) tokenCmd(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"token needs create, list or revoke"}
	}
	var run func(st *postgres.Store) error
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("token create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		scope := fs.String("scope", "", "app or finance")
		name := fs.String("name", "", "who uses the token")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{"token create: " + err.Error()}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("token create: unexpected argument %q", fs.Arg(0))}
		}
		if !billing.Scope(*scope).Valid() {
			return usageError{"token create: --scope must be app or finance"}
		}
		if !billing.ValidTokenName(*name) {
			return usageError{"token create: --name must be 1-64 characters of A-Z a-z 0-9 _ . : -"}
		}
		run = func(st *postgres.Store) error {
			return tokenCreate(ctx, st, billing.Scope(*scope), *name, e.stdout, e.stderr)
		}
	case "list":
		if len(args) != 1 {
			return usageError{"token list takes no arguments"}
		}
		run = func(st *postgres.Store) error { return tokenList(ctx, st, e.stdout) }
	case "revoke":
		if len(args) != 2 {
			return usageError{"token revoke needs the token's ID (see token list)"}
		}
		id, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || id < 1 {
			return usageError{fmt.Sprintf("token revoke: %q is not a token ID", args[1])}
		}
		run = func(st *postgres.Store) error { return tokenRevoke(ctx, st, id, e.stdout) }
	default:
		return usageError{fmt.Sprintf("unknown token command %q", args[0])}
	}
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	// Like serve: a first command on a fresh database must work.
	if err := db.store.MigrateUp(); err != nil {
		return err
	}
	return run(db.store)
}

// tokenCreate makes a token and prints it alone on stdout's first line, so
// scripts can capture it (`TOKEN=$(billingd token create ... | head -1)`);
// the note goes to stderr. The token is never shown again.
func tokenCreate(ctx context.Context, st *postgres.Store, scope billing.Scope, name string, stdout, stderr io.Writer) error {
	tok, hash, err := billing.NewToken(scope)
	if err != nil {
		return err
	}
	id, err := st.TokenCreate(ctx, name, scope, hash)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "created token %d (%s, scope %s); it is shown only now: store it as a secret\n", id, name, scope)
	return nil
}

func tokenList(ctx context.Context, st *postgres.Store, stdout io.Writer) error {
	toks, err := st.TokenList(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPE\tCREATED\tLAST USED\tREVOKED")
	for _, t := range toks {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Scope, t.CreatedAt.UTC().Format(time.RFC3339),
			timeOrDash(t.LastUsedAt), timeOrDash(t.RevokedAt))
	}
	return tw.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func tokenRevoke(ctx context.Context, st *postgres.Store, id int64, stdout io.Writer) error {
	already, err := st.TokenRevoke(ctx, id)
	if errors.Is(err, billing.ErrNotFound) {
		return fmt.Errorf("no token with ID %d (see billingd token list)", id)
	}
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(stdout, "token %d was already revoked\n", id)
		return nil
	}
	fmt.Fprintf(stdout, "revoked token %d\n", id)
	return nil
}
