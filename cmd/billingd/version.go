package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/billingd/billingd/internal/postgres"
	"github.com/prometheus/client_golang/prometheus"
)

// Stamped at build time when the source has no VCS metadata to read (the
// image builds without .git):
//
//	go build -ldflags "-X main.version=v1.4.0 -X main.revision=$(git rev-parse HEAD)" ./cmd/billingd
//
// Left empty, both come from what the Go toolchain recorded (buildInfo).
var (
	version  string
	revision string
)

// build says which billingd this is: what `billingd version` prints, the
// billingd_build_info metric and the start log line carry.
type build struct {
	Version  string // module version: a tag, a pseudo-version, or "(devel)"
	Revision string // VCS commit, "unknown" when not recorded
	Modified bool   // built from a working tree with uncommitted changes
	Go       string
	Schema   uint // highest migration this binary knows
}

func buildInfo() build {
	b := build{Version: "(devel)", Revision: "unknown", Go: runtime.Version(), Schema: postgres.RequiredSchemaVersion()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v := info.Main.Version; v != "" {
			b.Version = v
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if revision != "" {
		b.Revision = revision
	}
	return b
}

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the module version, VCS revision, Go version and the schema version this binary knows",
		setup: func(fs *flag.FlagSet) runFunc {
			return func(_ context.Context, e *env, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				b := buildInfo()
				fmt.Fprintf(e.stdout, "version: %s\nrevision: %s\nmodified: %v\ngo: %s\nschema: %d\n", b.Version, b.Revision, b.Modified, b.Go, b.Schema)
				return nil
			}
		},
	}
}

// registerBuildInfo exports billingd_build_info, constant 1, whose labels
// say which build a replica runs: during a rolling deploy or a rollback,
// count replicas per version.
func registerBuildInfo(reg prometheus.Registerer) {
	b := buildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "billingd_build_info",
		Help: "Always 1; the labels say which billingd build this replica runs and the schema version it knows.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.Revision, "modified": strconv.FormatBool(b.Modified),
			"goversion": b.Go, "schema": strconv.FormatUint(uint64(b.Schema), 10),
		},
	})
	g.Set(1)
	reg.MustRegister(g)
}
