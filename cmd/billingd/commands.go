package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
)

// runFunc runs a command with the positional arguments left after its
// flags were parsed.
type runFunc func(ctx context.Context, e *env, args []string) error

// command is one entry of the command table. Dispatch, `billingd help`,
// `--help` and the usage printed after a mistake all read this table, so
// a command's help cannot drift from what it accepts: the flags listed are
// the ones its setup declares.
type command struct {
	name     string   // the words after billingd: "token create"
	args     string   // positional arguments for the synopsis: "ID", "N"
	summary  string   // one line for the command list
	about    string   // more, for the command's own help (optional)
	required []string // flags that must be given (checked before it runs)
	env      []string // environment variables it reads (LOG_LEVEL and GOGC: every command)
	// setup declares the command's flags on fs and returns what runs it.
	setup func(fs *flag.FlagSet) runFunc
}

// Environment variable groups shared by several commands.
var (
	// dbEnv: every command that opens the database.
	dbEnv = []string{"DATABASE_URL", "DATABASE_SESSION_URL", "BILLINGD_DATA_DIR", "DB_MAX_CONNS", "DB_PREPARED_STATEMENTS", "ERASURE_KEYS", "ERASURE_KEY", "LINK_SIGNING_KEYS", "LINK_SIGNING_KEY"}
	// commonEnv: read by every command.
	commonEnv = []string{"LOG_LEVEL", "GOGC"}
)

// commands is the command table, in the order `billingd help` lists it.
// Adding a command is adding an entry (e.g. `version`).
func commands() []*command {
	return []*command{
		serveCommand(),
		migrateUpCommand(), migrateDownCommand(), migrateVersionCommand(),
		privacyInventoryCommand(),
		purgeCommand(),
		tokenCreateCommand(), tokenListCommand(), tokenRevokeCommand(),
		stripeBackfillCommand(), stripeReconcileCommand(), stripeSweepCommand(),
		stripeJobsStatusCommand(), stripeJobsRetryCommand(),
		catalogApplyCommand(), catalogShowCommand(),
		appWebhooksStatusCommand(), appWebhooksRetryCommand(),
		simulateCommand(),
		metricsRebuildCommand(),
		profitwellWorkerCommand(), profitwellStatusCommand(), profitwellRetryCommand(), profitwellBackfillCommand(),
		keysStatusCommand(), keysForgetCommand(),
		versionCommand(),
	}
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// commandUsageError is a mistake in one command's line; main follows the
// message with that command's synopsis and where to find its help.
type commandUsageError struct {
	usageError
	hint string
}

func (e commandUsageError) Unwrap() error { return e.usageError }

// hint returns what main prints after a usage error: the synopsis and
// where to find more.
func (e commandUsageError) Hint() string { return e.hint }

func (c *command) usageErr(msg string) error {
	return commandUsageError{usageError{c.name + ": " + msg}, "usage: " + c.synopsis(c.flagSet()) + "\nrun 'billingd " + c.name + " --help' for its flags and environment"}
}

func groupUsageErr(group, msg string) error {
	return commandUsageError{usageError{msg}, "run 'billingd help " + group + "' for its commands"}
}

func topUsageErr(msg string) error {
	return commandUsageError{usageError{msg}, "run 'billingd help' for the list of commands"}
}

func isHelpFlag(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// wantsHelp reports whether -h or --help is among a command's arguments
// (before a "--"), wherever it is: `billingd token revoke 3 --help` helps.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpFlag(a) {
			return true
		}
	}
	return false
}

// findCommand resolves args to a command of the table (the longest name
// that matches) and the arguments after its name.
func findCommand(table []*command, args []string) (*command, []string, error) {
	for _, words := range []int{2, 1} {
		if len(args) < words {
			continue
		}
		name := strings.Join(args[:words], " ")
		for _, c := range table {
			if c.name == name {
				return c, args[words:], nil
			}
		}
	}
	group := args[0]
	subs := subcommands(table, group)
	if len(subs) == 0 {
		return nil, nil, topUsageErr(fmt.Sprintf("unknown command %q", group))
	}
	if len(args) == 1 {
		return nil, nil, groupUsageErr(group, fmt.Sprintf("%s needs a command: %s", group, strings.Join(subs, ", ")))
	}
	return nil, nil, groupUsageErr(group, fmt.Sprintf("unknown %s command %q (want %s)", group, args[1], strings.Join(subs, ", ")))
}

// subcommands lists the second words of the commands in group.
func subcommands(table []*command, group string) []string {
	var out []string
	for _, c := range table {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			out = append(out, sub)
		}
	}
	return out
}

// run runs the command args name (commands): help, flags and required
// flags first (no configuration needed for a mistake or for help), then
// the whole configuration, then the command.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	table := commands()
	if len(args) == 0 {
		args = []string{"serve"}
	}
	if args[0] == "help" || isHelpFlag(args[0]) {
		return writeHelp(stdout, table, args[1:])
	}
	if len(args) == 2 && (args[1] == "help" || isHelpFlag(args[1])) && len(subcommands(table, args[0])) > 0 {
		return writeHelp(stdout, table, args[:1])
	}
	c, rest, err := findCommand(table, args)
	if err != nil {
		return err
	}
	fs, run := c.parse()
	if wantsHelp(rest) {
		return c.writeHelp(stdout, fs)
	}
	if err := fs.Parse(rest); err != nil {
		return c.usageErr(flagError(err))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, r := range c.required {
		if !given[r] {
			return c.usageErr("--" + r + " is required")
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	e := newEnv(cfg, getenv, stdout, stderr)
	err = run(ctx, e, fs.Args())
	var ue usageError
	var cue commandUsageError
	if errors.As(err, &ue) && !errors.As(err, &cue) {
		return c.usageErr(ue.msg)
	}
	return err
}

// parse returns a fresh flag set with the command's flags and what runs
// the command with their values.
func (c *command) parse() (*flag.FlagSet, runFunc) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, c.setup(fs)
}

// flagSet is the command's flags, for help texts.
func (c *command) flagSet() *flag.FlagSet {
	fs, _ := c.parse()
	return fs
}

// flagOrder lists the required flags first, as declared, then the others
// by name.
func (c *command) flagOrder(fs *flag.FlagSet) []*flag.Flag {
	var req, opt []*flag.Flag
	for _, r := range c.required {
		if f := fs.Lookup(r); f != nil {
			req = append(req, f)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(c.required, f.Name) {
			opt = append(opt, f)
		}
	})
	return append(req, opt...)
}

// flagPlaceholder is a flag's value in the synopsis: the `quoted` word of
// its usage, or its type in capitals; "" for a boolean flag.
func flagPlaceholder(f *flag.Flag) (string, string) {
	name, usage := flag.UnquoteUsage(f)
	if name != "" && strings.ToLower(name) == name && !strings.Contains(name, "|") {
		name = strings.ToUpper(name)
	}
	return name, usage
}

// synopsis is the command's one-line usage.
func (c *command) synopsis(fs *flag.FlagSet) string {
	parts := []string{"billingd", c.name}
	for _, f := range c.flagOrder(fs) {
		ph, _ := flagPlaceholder(f)
		s := "--" + f.Name
		if ph != "" {
			s += " " + ph
		}
		if !slices.Contains(c.required, f.Name) {
			s = "[" + s + "]"
		}
		parts = append(parts, s)
	}
	if c.args != "" {
		parts = append(parts, c.args)
	}
	return strings.Join(parts, " ")
}

// listLine is the command's synopsis without "billingd ", for lists.
func (c *command) listLine() string {
	return strings.TrimPrefix(c.synopsis(c.flagSet()), "billingd ")
}

// writeHelp prints a command's help: synopsis, what it does, its flags
// and the environment variables it reads.
func (c *command) writeHelp(w io.Writer, fs *flag.FlagSet) error {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", c.synopsis(fs), capitalize(c.summary))
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	if flags := c.flagOrder(fs); len(flags) > 0 {
		fmt.Fprintln(tw, "\nflags:")
		for _, f := range flags {
			ph, usage := flagPlaceholder(f)
			s := "--" + f.Name
			if ph != "" {
				s += " " + ph
			}
			if slices.Contains(c.required, f.Name) {
				usage += " (required)"
			} else if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(tw, "  %s\t%s\n", s, usage)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nenvironment:\n%s\n", wrapList(append(slices.Clone(c.env), commonEnv...), "  ", 76))
	fmt.Fprintln(w, "\nEvery command validates all of billingd's variables at start (README.md, Configuration).")
	return nil
}

// writeHelp answers `billingd help [command]`: the command list, a
// group's commands, or one command's help.
func writeHelp(w io.Writer, table []*command, args []string) error {
	if len(args) == 0 {
		return writeCommandList(w, table, "")
	}
	c, rest, err := findCommand(table, args)
	if err != nil {
		if len(args) == 1 && len(subcommands(table, args[0])) > 0 {
			return writeCommandList(w, table, args[0])
		}
		return err
	}
	if len(rest) > 0 {
		return topUsageErr(fmt.Sprintf("help: unexpected argument %q", rest[0]))
	}
	return c.writeHelp(w, c.flagSet())
}

// writeCommandList prints every command, or those of one group.
func writeCommandList(w io.Writer, table []*command, group string) error {
	if group == "" {
		fmt.Fprint(w, "usage: billingd [command] [flags] [args]    (no command: serve)\n\ncommands:\n")
	} else {
		fmt.Fprintf(w, "usage: billingd %s <command> [flags] [args]\n\ncommands:\n", group)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	for _, c := range table {
		if g, _, _ := strings.Cut(c.name, " "); group != "" && g != group {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", c.listLine(), c.summary)
	}
	if group == "" {
		fmt.Fprintf(tw, "  %s\t%s\n", "help [command]", "this list, or a command's flags and the environment variables it reads")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	what := "<command>"
	if group != "" {
		what = group + " <command>"
	}
	fmt.Fprintf(w, "\nrun 'billingd help %s' or 'billingd %s --help' for its flags and environment\n", what, what)
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// wrapList joins names with ", " in lines of at most width characters.
func wrapList(names []string, indent string, width int) string {
	var lines []string
	line := indent
	for i, n := range names {
		sep := ", "
		if i == len(names)-1 {
			sep = ""
		}
		if len(line)+len(n)+len(sep) > width && line != indent {
			lines = append(lines, strings.TrimRight(line, " "))
			line = indent
		}
		line += n + sep
	}
	return strings.Join(append(lines, line), "\n")
}

// noArgs refuses positional arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
	}
	return nil
}

// configEnv is every variable loadConfig reads, in its order: what serve
// reads. Recorded from loadConfig itself, so it cannot miss one.
func configEnv() []string {
	var names []string
	seen := map[string]bool{}
	_, _ = loadConfig(func(k string) string {
		if !seen[k] {
			seen[k] = true
			if !slices.Contains(commonEnv, k) {
				names = append(names, k)
			}
		}
		return ""
	})
	return names
}

// Go's flag package names flags with one dash; billingd's help writes two.
var (
	flagUndefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	flagBadValue  = regexp.MustCompile(`^invalid (boolean )?value (".*") for (?:flag )?-+([^:]*): (.*)$`)
)

// flagError words a flag parsing error the way the help does.
func flagError(err error) string {
	msg := err.Error()
	if m := flagUndefined.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return "--" + m[1] + " needs a value"
	}
	if m := flagBadValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("invalid value %s for --%s: %s", m[2], m[3], m[4])
	}
	return msg
}
