package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cpuProfile takes a CPU profile of the running billingd (PPROF_ADDR) for
// seconds, keeps it under bench/out/ and returns `go tool pprof -top`.
func (c *config) cpuProfile(pprofAddr string, seconds int) string {
	return c.cpuProfileNamed(pprofAddr, seconds, "billingd_ingest_c32")
}

// cpuProfileNamed is cpuProfile kept as bench/out/<name>.pprof.
func (c *config) cpuProfileNamed(pprofAddr string, seconds int, name string) string {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, seconds))
	if err != nil {
		return "profile failed: " + err.Error()
	}
	defer resp.Body.Close()
	dir := filepath.Join(repoRoot(), "bench", "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	path := filepath.Join(dir, name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return err.Error()
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err.Error()
	}
	f.Close()
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=20", c.bin, path).CombinedOutput()
	if err != nil {
		return "pprof: " + err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return fmt.Sprintf("(profile kept in %s)\n%s", path, strings.Join(lines, "\n"))
}
