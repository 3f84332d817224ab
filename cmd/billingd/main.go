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
	"strings"
	"syscall"
)

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
	os.Exit(report(err, os.Stderr))
}

// report prints err, every line prefixed "billingd: ", then for a mistake
// in the command line how to get help; it returns the exit code: 0 none,
// 2 a usage error, 1 anything else.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "billingd: %s\n", line)
	}
	var cue commandUsageError
	if errors.As(err, &cue) {
		fmt.Fprintln(stderr, cue.Hint())
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// env bundles what every command gets, so tests can run commands in-process.
type env struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func newEnv(cfg Config, getenv func(string) string, stdout, stderr io.Writer) *env {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return &env{cfg: cfg, log: log, stdout: stdout, stderr: stderr, getenv: getenv}
}
