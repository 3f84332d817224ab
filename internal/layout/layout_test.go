package layout

import (
	"bufio"
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The allowed imports: the picture of the module, read from the bottom up.
// Arrows are the only imports of our own packages that non-test code may
// make; test files may wire packages together (end-to-end tests) except
// where a rule below says otherwise.
//
//	cmd/billingd ───────── wires everything below; imported by nothing
//	client ─────────────── the Go client app backends import; imports nothing of ours
//	bench ───────────────── measures the binary and the handler stack; imported by nothing
//	  │
//	  ├─ internal/api ──────────→ billing, internal/httpjson, web
//	  ├─ webhooks ──────────────→ billing, internal/httpjson      (never internal/api, never profitwell)
//	  ├─ profitwell ────────────→ billing                         (never webhooks)
//	  ├─ appwebhook ────────────→ billing                         (outbound app webhooks)
//	  ├─ internal/stripeapi ────→ billing, webhooks (its decoders) (the only stripe-go API client)
//	  ├─ internal/entcache ─────→ billing                         (answers rendered by the API, not here)
//	  ├─ internal/postgres ─────→ billing, migrations             (the only SQL)
//	  ├─ internal/httpjson ─────→ billing
//	  ├─ internal/privacy, internal/pgserver, migrations, web ──→ nothing of ours
//	  └─ billing ───────────────→ nothing of ours; standard library only, no net/http or database/sql
//
//	test support, imported by tests (and bench, cmd where listed):
//	  internal/pgtest → internal/pgserver, internal/postgres, migrations
//	  internal/metricstest → billing, internal/postgres   (bench's revenue seed)
//	  internal/stripefake → nothing of ours               (cmd's `simulate` stream)
//	  webhooks/webhookstest → billing;  profitwell/profitwelltest → nothing
//
// A package missing from allowed fails the test: add it, with its place in
// the picture.
var allowed = map[string][]string{
	"billing":            {},
	"migrations":         {},
	"web":                {},
	"internal/privacy":   {},
	"internal/pgserver":  {},
	"internal/layout":    {},
	"internal/httpjson":  {"billing"},
	"internal/entcache":  {"billing"},
	"internal/postgres":  {"billing", "migrations"},
	"webhooks":           {"billing", "internal/httpjson"},
	"profitwell":         {"billing"},
	"appwebhook":         {"billing"},
	"internal/api":       {"billing", "internal/httpjson", "web"},
	"internal/stripeapi": {"billing", "webhooks"},

	"internal/pgtest":           {"internal/pgserver", "internal/postgres", "migrations"},
	"internal/metricstest":      {"billing", "internal/postgres"},
	"internal/stripefake":       {},
	"webhooks/webhookstest":     {"billing"},
	"profitwell/profitwelltest": {},

	"cmd/billingd": {"appwebhook", "billing", "internal/api", "internal/entcache", "internal/pgserver", "internal/postgres",
		"internal/privacy", "internal/stripeapi", "internal/stripefake", "profitwell", "webhooks"},
	// The Go client app backends import: nothing of ours, so an app pulls
	// in no internals, no database driver and no Stripe SDK.
	"client": {},

	"bench": {"appwebhook", "billing", "client", "internal/api", "internal/entcache", "internal/metricstest", "internal/pgserver",
		"internal/postgres", "internal/stripefake", "webhooks"},
}

// outside restricts imports from outside the module (and of the standard
// library) to the packages named: an import path matches a rule when it
// is the prefix or starts with the prefix and "/". Non-test code only.
var outside = []struct {
	prefix string
	only   []string
	why    string
}{
	{"github.com/stripe/stripe-go/v76/client", []string{"internal/stripeapi"}, "one Stripe API client"},
	{"github.com/gorilla/mux", []string{"internal/api"}, "routes are registered in internal/api's routes()"},
	{"database/sql", []string{"internal/postgres", "internal/pgtest", "bench"}, "SQL lives in the store"},
	{"github.com/lib/pq", []string{"internal/postgres", "internal/pgtest", "cmd/billingd", "bench"}, "SQL lives in the store"},
	{"github.com/jmoiron/sqlx", []string{"internal/postgres", "bench"}, "SQL lives in the store"},
	{"github.com/golang-migrate/migrate", []string{"internal/postgres"}, "migrations are applied by the store"},
	{"github.com/stripe/stripe-go/v76/webhook", []string{"webhooks", "webhooks/webhookstest", "cmd/billingd", "bench"},
		"webhook signatures are checked in webhooks (and made by its test support and the simulators)"},
	{"net/http", []string{"client", "internal/api", "internal/httpjson", "webhooks", "webhooks/webhookstest", "profitwell", "appwebhook",
		"profitwell/profitwelltest", "internal/stripeapi", "internal/stripefake", "internal/entcache", "cmd/billingd", "bench"},
		"HTTP stays at the edges (billing and the store never speak it)"},
}

// stripeGo is stripe-go's root package (typed API objects): Stripe types
// stop at the edge, in the package that talks to Stripe's API.
const stripeGo = "github.com/stripe/stripe-go/v76"

type pkg struct {
	path         string   // relative to the module: "internal/api"
	imports      []string // non-test
	testImports  []string // in-package and external test files
	modulePrefix string
}

// TestImports checks every package of the module against the picture and
// the rules.
func TestImports(t *testing.T) {
	pkgs := modulePackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("found %d packages; the walk is broken", len(pkgs))
	}
	for _, p := range pkgs {
		for _, msg := range check(p) {
			t.Error(msg)
		}
	}
}

// check returns one line per rule p breaks.
func check(p pkg) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	ours := func(imps []string) []string {
		var out []string
		for _, i := range imps {
			if r, ok := strings.CutPrefix(i, p.modulePrefix); ok {
				out = append(out, r)
			}
		}
		return out
	}
	want, known := allowed[p.path]
	if !known {
		fail("%s is not in the picture (internal/layout/layout_test.go): add it with the packages it may import", p.path)
	}
	for _, imp := range ours(p.imports) {
		if known && !slices.Contains(want, imp) {
			fail("%s imports %s, which the picture does not allow (internal/layout/layout_test.go)", p.path, imp)
		}
	}
	for _, imp := range append(ours(p.imports), ours(p.testImports)...) {
		if imp == "cmd" || strings.HasPrefix(imp, "cmd/") {
			fail("%s imports %s: nothing imports a command", p.path, imp)
		}
	}
	for _, imp := range p.imports {
		for _, r := range outside {
			if (imp == r.prefix || strings.HasPrefix(imp, r.prefix+"/")) && !slices.Contains(r.only, p.path) {
				fail("%s imports %s: only %s may (%s)", p.path, imp, strings.Join(r.only, ", "), r.why)
			}
		}
		if imp == stripeGo && p.path != "internal/stripeapi" {
			fail("%s imports %s: Stripe's API types stay in internal/stripeapi (webhooks reads raw JSON)", p.path, imp)
		}
		if p.path == "billing" && !strings.HasPrefix(imp, p.modulePrefix) && !standard(imp) {
			fail("billing imports %s: the domain uses the standard library only", imp)
		}
	}
	return errs
}

// TestRulesCatchViolations feeds the checks made-up packages that break
// each rule once, so a rule that silently stopped matching is noticed.
func TestRulesCatchViolations(t *testing.T) {
	mod := "example.com/m/"
	cases := []struct {
		name string
		p    pkg
	}{
		{"BillingImportsOurs", pkg{path: "billing", imports: []string{mod + "internal/postgres"}}},
		{"BillingImportsHTTP", pkg{path: "billing", imports: []string{"net/http"}}},
		{"BillingImportsSQL", pkg{path: "billing", imports: []string{"database/sql"}}},
		{"BillingImportsStripe", pkg{path: "billing", imports: []string{stripeGo}}},
		{"BillingImportsMux", pkg{path: "billing", imports: []string{"github.com/gorilla/mux"}}},
		{"BillingImportsPQ", pkg{path: "billing", imports: []string{"github.com/lib/pq"}}},
		{"BillingImportsSqlx", pkg{path: "billing", imports: []string{"github.com/jmoiron/sqlx"}}},
		{"WebhooksImportsProfitWell", pkg{path: "webhooks", imports: []string{mod + "profitwell"}}},
		{"ProfitWellImportsWebhooks", pkg{path: "profitwell", imports: []string{mod + "webhooks"}}},
		{"WebhooksImportsAPI", pkg{path: "webhooks", imports: []string{mod + "internal/api"}}},
		{"TestImportsCmd", pkg{path: "internal/api", testImports: []string{mod + "cmd/billingd"}}},
		{"SecondStripeClient", pkg{path: "profitwell", imports: []string{"github.com/stripe/stripe-go/v76/client"}}},
		{"UnknownPackage", pkg{path: "internal/util"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.modulePrefix = mod
			if errs := check(tc.p); len(errs) == 0 {
				t.Errorf("%+v passed the rules", tc.p)
			}
		})
	}
}

// standard reports whether an import path is of the standard library (its
// first element has no dot).
func standard(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// modulePackages lists the module's packages with their imports, as the
// go tool builds them for this platform.
func modulePackages(t *testing.T) []pkg {
	t.Helper()
	root, mod := moduleRoot(t)
	var out []pkg
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules" || name == "vendor") {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		bp, err := build.Default.ImportDir(path, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, pkg{path: filepath.ToSlash(rel), imports: bp.Imports,
			testImports: append(slices.Clone(bp.TestImports), bp.XTestImports...), modulePrefix: mod + "/"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// moduleRoot finds go.mod above this directory and returns its directory
// and module path.
func moduleRoot(t *testing.T) (string, string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return dir, strings.TrimSpace(m)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}
