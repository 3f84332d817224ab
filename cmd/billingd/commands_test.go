package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// badEnv is a configuration that fails validation: help must not need a
// valid one.
func badEnv(k string) string { return map[string]string{"GOGC": "abc", "LISTEN_ADDR": "nonsense"}[k] }

// TestHelpEveryCommand: `--help`, `-h` and `billingd help <command>` on
// every command and subcommand succeed (exit 0) with the same text: its
// synopsis, every flag it parses and every environment variable it reads.
func TestHelpEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			words := strings.Fields(c.name)
			forms := [][]string{
				append(slices.Clone(words), "--help"),
				append(slices.Clone(words), "-h"),
				append([]string{"help"}, words...),
			}
			if c.setup != nil && c.args != "" {
				// Help wins wherever it is, after positional arguments too.
				forms = append(forms, append(slices.Clone(words), "7", "--help"))
			}
			var first string
			for _, args := range forms {
				var out, errb bytes.Buffer
				err := run(context.Background(), args, badEnv, &out, &errb)
				if code := report(err, &errb); code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errb.String())
				}
				if first == "" {
					first = out.String()
				} else if out.String() != first {
					t.Errorf("%v prints another text:\n%s\nthan:\n%s", args, out.String(), first)
				}
			}
			if !strings.HasPrefix(first, "usage: billingd "+c.name) {
				t.Errorf("help does not start with the synopsis:\n%s", first)
			}
			fs, _ := c.parse()
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(first, "--"+f.Name) {
					t.Errorf("help lacks flag --%s:\n%s", f.Name, first)
				}
			})
			if !strings.Contains(first, "\nenvironment:\n") {
				t.Errorf("help has no environment section:\n%s", first)
			}
			for _, v := range append(slices.Clone(c.env), commonEnv...) {
				if !strings.Contains(first, v) {
					t.Errorf("help lacks %s:\n%s", v, first)
				}
			}
		})
	}
}

// TestHelpLists: the command list and each group's list name every
// command of the table, under every way of asking.
func TestHelpLists(t *testing.T) {
	t.Parallel()
	table := commands()
	groups := map[string][]string{"": nil}
	for _, c := range table {
		groups[""] = append(groups[""], c.name)
		if g, _, ok := strings.Cut(c.name, " "); ok {
			groups[g] = append(groups[g], c.name)
		}
	}
	for group, names := range groups {
		asks := [][]string{{"help"}, {"--help"}, {"-h"}}
		if group != "" {
			asks = [][]string{{"help", group}, {group, "--help"}, {group, "-h"}, {group, "help"}}
		}
		for _, args := range asks {
			var out bytes.Buffer
			if err := run(context.Background(), args, badEnv, &out, &bytes.Buffer{}); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			for _, n := range names {
				if !strings.Contains(out.String(), "  "+n) {
					t.Errorf("%v: list lacks %q:\n%s", args, n, out.String())
				}
			}
			if group == "" && !strings.Contains(out.String(), "help [command]") {
				t.Errorf("%v: list lacks help itself", args)
			}
		}
	}
}

// TestCommandEnvIsConfig: every variable a command's help names is one
// the configuration reads (so the help cannot name a variable that does
// not exist), and serve names them all.
func TestCommandEnvIsConfig(t *testing.T) {
	t.Parallel()
	known := append(configEnv(), commonEnv...)
	for _, c := range commands() {
		for _, v := range c.env {
			if !slices.Contains(known, v) {
				t.Errorf("%s names %s, which loadConfig does not read", c.name, v)
			}
		}
	}
	for _, v := range []string{"DATABASE_URL", "PUBLIC_URL", "DASHBOARD_SESSION_TTL", "STRIPE_API_KEY", "WEBHOOK_TOLERANCE"} {
		if !slices.Contains(configEnv(), v) {
			t.Errorf("serve's environment lacks %s", v)
		}
	}
}

// TestUsageMistakes: an unknown command, subcommand or flag, a missing
// argument: exit 2 with the mistake on one line, then how to get help, in
// one wording for every command (the real binary).
func TestUsageMistakes(t *testing.T) {
	t.Parallel()
	bin := billingdBinary(t)
	tests := []struct {
		args  []string
		first string // the first stderr line
		hint  string // the last one
	}{
		{[]string{"frobnicate"}, `billingd: unknown command "frobnicate"`, "run 'billingd help' for the list of commands"},
		{[]string{"help", "frobnicate"}, `billingd: unknown command "frobnicate"`, "run 'billingd help' for the list of commands"},
		{[]string{"token"}, "billingd: token needs a command: create, list, revoke", "run 'billingd help token' for its commands"},
		{[]string{"stripe-jobs", "drop"}, `billingd: unknown stripe-jobs command "drop" (want status, retry)`, "run 'billingd help stripe-jobs' for its commands"},
		{[]string{"token", "create", "--scope", "app"}, "billingd: token create: --name is required", "run 'billingd token create --help' for its flags and environment"},
		{[]string{"token", "create", "--ttl", "1h"}, "billingd: token create: unknown flag --ttl", "run 'billingd token create --help' for its flags and environment"},
		{[]string{"stripe", "reconcile", "--since", "soon"}, `billingd: stripe reconcile: invalid value "soon" for --since: parse error`, "run 'billingd stripe reconcile --help' for its flags and environment"},
		{[]string{"simulate", "--url"}, "billingd: simulate: --url needs a value", "run 'billingd simulate --help' for its flags and environment"},
		{[]string{"serve", "now"}, `billingd: serve: unexpected argument "now"`, "run 'billingd serve --help' for its flags and environment"},
		{[]string{"migrate", "down"}, "billingd: migrate down: needs N, the number of migrations to roll back", "run 'billingd migrate down --help' for its flags and environment"},
		{[]string{"stripe-jobs", "retry"}, "billingd: stripe-jobs retry: needs --all or one outbox row ID", "run 'billingd stripe-jobs retry --help' for its flags and environment"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if lines[0] != tt.first || lines[len(lines)-1] != tt.hint || stdout.Len() != 0 {
				t.Errorf("stderr:\n%s\nwant first line %q and last %q (stdout %q)", stderr.String(), tt.first, tt.hint, stdout.String())
			}
		})
	}
	t.Run("HelpIsExitZeroOnStdout", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"--help"}, {"token", "revoke", "--help"}, {"stripe-jobs", "-h"}} {
			cmd := exec.Command(bin, args...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GOGC=abc"}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || !strings.HasPrefix(stdout.String(), "usage: billingd") || stderr.Len() != 0 {
				t.Errorf("%v: %v, stdout %q, stderr %q", args, err, stdout.String(), stderr.String())
			}
		}
	})
}
