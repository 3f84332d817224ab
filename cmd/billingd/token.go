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

func tokenCreateCommand() *command {
	return &command{
		name:     "token create",
		summary:  "new API token, printed alone on stdout's first line and shown only once",
		required: []string{"scope", "name"},
		env:      dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			scope := fs.String("scope", "", "what the token may do: `app|finance`")
			name := fs.String("name", "", "the `name` of who uses it: 1-64 characters of A-Z a-z 0-9 _ . : -")
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if !billing.Scope(*scope).Valid() {
					return usageError{"--scope must be app or finance"}
				}
				if !billing.ValidTokenName(*name) {
					return usageError{"--name must be 1-64 characters of A-Z a-z 0-9 _ . : -"}
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error {
					return tokenCreate(ctx, st, billing.Scope(*scope), *name, e.stdout, e.stderr)
				})
			}
		},
	}
}

func tokenListCommand() *command {
	return &command{
		name:    "token list",
		summary: "list API tokens (never the tokens themselves)",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error { return tokenList(ctx, st, e.stdout) })
			}
		},
	}
}

func tokenRevokeCommand() *command {
	return &command{
		name:    "token revoke",
		args:    "ID",
		summary: "revoke a token and end its dashboard sessions (every replica rejects it within 1 s)",
		env:     dbEnv,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, e *env, args []string) error {
				if len(args) != 1 {
					return usageError{"needs the token's ID (see billingd token list)"}
				}
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || id < 1 {
					return usageError{fmt.Sprintf("%q is not a token ID", args[0])}
				}
				return e.withMigratedStore(ctx, func(st *postgres.Store) error { return tokenRevoke(ctx, st, id, e.stdout) })
			}
		},
	}
}

// withMigratedStore opens the database, applies pending migrations (like
// serve: a first command on a fresh database must work) and runs fn.
func (e *env) withMigratedStore(ctx context.Context, fn func(st *postgres.Store) error) error {
	db, err := e.openDatabase(ctx)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	if err := db.store.MigrateUp(); err != nil {
		return err
	}
	return fn(db.store)
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
