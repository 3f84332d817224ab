// Command bench measures billingd against baselines in one run and prints
// one `name: value` line per figure. `go run ./bench` starts its own
// PostgreSQL when DATABASE_URL is unset; `go run ./bench -short` is a
// quicker pass (a few minutes: the overload stage still idles 60 s to read
// memory coming back) that leaves the soak out. Not part of the CI test run.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/billingd/billingd/internal/pgserver"
	"github.com/lib/pq"
)

type config struct {
	short   bool
	skip    map[string]bool
	workDir string
	adminDB string // admin URL of the server used
	pgDir   string // its data directory when the bench started it ("" otherwise)
	bin     string
	out     io.Writer
	conc    []int // ingest concurrencies
	// capacity is ingest's c32 events/s in this run: the overload, slow
	// body and soak stages offer multiples of it.
	capacity float64
}

func main() {
	short := flag.Bool("short", false, "quick pass: fewer events and a smaller revenue seed")
	skip := flag.String("skip", "", "comma-separated stages to skip: ingest,peer,changes,entitlement,handler,revenue,revenue_1m,overload,slowbody,headers_only,backfill,soak")
	only := flag.String("only", "", "comma-separated stages to run, skipping the others")
	conc := flag.String("conc", "1,8,32", "ingest concurrencies, comma-separated")
	soak := flag.Int("soak-events", 500_000, "events the soak stage sends (at half the c32 capacity)")
	flag.IntVar(&backfillSubs, "backfill-subs", backfillSubs, "subscriptions the fake Stripe holds in the backfill stage (and a fifth as many customers)")
	r1m := flag.Int("revenue-1m-subs", 1_000_000, "subscriptions the revenue_1m stage seeds (-short: at most 50,000)")
	soakRateFlag := flag.Float64("soak-rate", 0, "events/s of the soak stage (0: half the c32 capacity), to compare two builds at one rate")
	appHooks := flag.Bool("app-webhooks", false, "ingest stage: billingd also POSTs every change feed entry to a receiver in this process (APP_WEBHOOK_URL), to compare ingest with outbound app webhooks on and off")
	flag.Parse()
	var cs []int
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad -conc %q\n", *conc)
			os.Exit(2)
		}
		cs = append(cs, n)
	}
	if *only != "" {
		*skip = ""
		for _, st := range stageNames {
			if !strings.Contains(","+*only+",", ","+st+",") {
				*skip += st + ","
			}
		}
	}
	soakEvents, soakRate, ingestAppWebhooks, revenue1MSubs = *soak, *soakRateFlag, *appHooks, *r1m
	if err := run(*short, *skip, cs); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(short bool, skip string, conc []int) error {
	ctx := context.Background()
	cfg := &config{short: short, skip: map[string]bool{}, out: os.Stdout, conc: conc}
	for _, s := range strings.Split(skip, ",") {
		if s != "" {
			cfg.skip[s] = true
		}
	}
	work, err := os.MkdirTemp("", "billingd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg.workDir = work

	cfg.adminDB = os.Getenv("DATABASE_URL")
	if cfg.adminDB == "" {
		// A durable server with default settings (fsync on): figures are
		// for the real thing, not a tuned test server.
		// BENCH_PG_DIR moves it, so two checkouts can run the bench at once.
		dir := os.Getenv("BENCH_PG_DIR")
		if dir == "" {
			dir = "/tmp/billingd-bench/pg"
		}
		srv, err := pgserver.New(dir)
		if err != nil {
			return err
		}
		// pg_stat_statements shows where database time goes per statement
		// (printed after the c32 ingest run).
		srv.Settings = []string{"max_connections=300", "shared_buffers=512MB",
			"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"}
		// BENCH_PG_SETTINGS adds server settings for an experiment
		// (semicolon-separated, e.g. "auto_explain.log_min_duration=5").
		for _, kv := range strings.Split(os.Getenv("BENCH_PG_SETTINGS"), ";") {
			if kv = strings.TrimSpace(kv); kv != "" {
				srv.Settings = append(srv.Settings, kv)
			}
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		defer srv.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
		cfg.adminDB = srv.URL("postgres")
		cfg.pgDir = dir
	}
	if cfg.bin, err = buildBillingd(work); err != nil {
		return err
	}
	fmt.Fprintf(cfg.out, "machine_cores: %d\n", runtime.NumCPU())
	fmt.Fprintf(cfg.out, "go_version: %s\n", runtime.Version())
	fmt.Fprintf(cfg.out, "short: %v\n", short)

	stages := []struct {
		name string
		fn   func(context.Context, *config) error
	}{
		{"ingest", benchIngest},
		{"changes", benchChanges},
		{"entitlement", benchEntitlement},
		{"handler", benchHandler},
		{"revenue", benchRevenue},
		{"revenue_1m", benchRevenue1M},
		{"overload", benchOverload},
		{"slowbody", benchSlowBody},
		{"headers_only", benchHeadersOnly},
		{"backfill", benchBackfill},
		{"soak", benchSoak},
	}
	for _, st := range stages {
		if cfg.skip[st.name] {
			fmt.Fprintf(cfg.out, "%s: skipped (-skip)\n", st.name)
			continue
		}
		if err := cfg.dropStageDBs(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := st.fn(ctx, cfg); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		slog.Debug("stage done", "stage", st.name, "seconds", time.Since(t0).Seconds())
	}
	return nil
}

// stageNames are the stages -skip and -only name (peer is part of ingest).
var stageNames = []string{"ingest", "peer", "changes", "entitlement", "handler", "revenue", "revenue_1m", "overload", "slowbody", "headers_only", "backfill", "soak"}

// freshDB drops and creates database name and returns its URL.
func (c *config) freshDB(name string) (string, error) {
	db, err := sql.Open("postgres", c.adminDB)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := db.Exec(`CREATE DATABASE ` + name); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	u, err := url.Parse(c.adminDB)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropStageDBs drops the databases earlier stages (and earlier bench runs
// on the same server) left, when the bench started the server: autovacuum
// would otherwise work through them while a later stage is measured (a
// full run's backfill shared the two cores with VACUUM ANALYZE of the
// slowbody stage's tables, 0.77 against 0.87 alone). A stage's own
// autovacuum stays part of its figures.
func (c *config) dropStageDBs() error {
	if c.pgDir == "" {
		return nil
	}
	db, err := sql.Open("postgres", c.adminDB)
	if err != nil {
		return err
	}
	defer db.Close()
	var names []string
	rows, err := db.Query(`SELECT datname FROM pg_database WHERE datname LIKE 'bench\_%'`)
	if err != nil {
		return fmt.Errorf("list stage databases: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if _, err := db.Exec(`DROP DATABASE IF EXISTS ` + pq.QuoteIdentifier(n) + ` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	return nil
}

func (c *config) print(name string, format string, args ...any) {
	fmt.Fprintf(c.out, "%s: %s\n", name, fmt.Sprintf(format, args...))
}

func repoRoot() string {
	wd, _ := os.Getwd()
	for d := wd; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return wd
}
