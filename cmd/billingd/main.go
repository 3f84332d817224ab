// Command billingd connects a SaaS product to Stripe billing while holding
// as little personal data as possible. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// usageError is a mistake in the command line: print usage, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: billingd [command] [args]

commands:
  serve                       run the HTTP server (default)
  migrate up|down N|version   manage the database schema
  privacy inventory [--format table|json]
                              what billingd stores and sends (no database needed)
  purge                       enforce retention now (serve also purges hourly)
  token create --scope app|finance --name NAME
                              new API token, printed alone on stdout's first line
  token list | token revoke ID
                              show or revoke API tokens
  stripe backfill             apply every Stripe customer and subscription (resumable)
  stripe reconcile [--since DURATION] [--fix]
                              report drift from Stripe as a table; --fix applies Stripe's truth
  simulate [--url URL] [--customers N]
                              send signed fake life-cycle events to a running server
  metrics rebuild             re-derive the revenue ledger from the state history (safe while serving)
  profitwell worker           deliver the ProfitWell outbox (serve runs one too when a token is set)
  profitwell status           ProfitWell queue: pending, oldest, dead rows
  profitwell retry --all|ID   re-queue dead-lettered ProfitWell rows
  profitwell backfill [--dry-run]
                              send every live subscription's current state to ProfitWell
`

func main() {
	if os.Getenv("GOGC") == "" {
		// Webhook ingest allocates per request (JSON decoding, the batch's
		// rows) with a live heap of a few MiB, so the default GOGC=100
		// collects very often: at 200, c32 ingest measured about 10% more
		// events/s (bench, back to back) for a few MiB more RSS. GOGC in
		// the environment still wins.
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "billingd: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// env bundles what every command gets, so tests can run commands in-process.
type env struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// run parses the configuration and dispatches to a command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	e := &env{cfg: cfg, log: log, stdout: stdout, stderr: stderr, getenv: getenv}
	cmd, rest := "serve", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return e.serve(ctx, rest)
	case "migrate":
		return e.migrate(ctx, rest)
	case "stripe":
		return e.stripeCmd(ctx, rest)
	case "simulate":
		return e.simulate(ctx, rest)
	case "metrics":
		return e.metrics(ctx, rest)
	case "privacy":
		return e.privacyCmd(ctx, rest)
	case "purge":
		return e.purgeCmd(ctx, rest)
	case "token":
		return e.tokenCmd(ctx, rest)
	case "profitwell":
		return e.profitwellCmd(ctx, rest)
	case "version":
		return e.versionCmd(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}
