package main

import (
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerignore is the repository's .dockerignore as Docker reads it:
// patterns relative to the context root, "**" for any number of
// directories, and a pattern that matches a directory excluding all of it.
// Exceptions ("!") are not supported here, and the file must not use them.
type dockerignore []string

func readDockerignore(t *testing.T, path string) dockerignore {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dockerignore
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore uses an exception (%s), which this test does not model", line)
		}
		d = append(d, filepath.Clean(strings.TrimPrefix(line, "/")))
	}
	return d
}

// excludes reports whether path (slash-separated, relative to the context)
// stays out of the build context.
func (d dockerignore) excludes(path string) bool {
	parts := strings.Split(path, "/")
	for _, p := range d {
		pat := strings.Split(p, "/")
		for n := 1; n <= len(parts); n++ { // the path or one of its parents
			if matchSegments(pat, parts[:n]) {
				return true
			}
		}
	}
	return false
}

func matchSegments(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if matchSegments(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, err := filepath.Match(pat[0], parts[0])
	return err == nil && ok && matchSegments(pat[1:], parts[1:])
}

// The image's build context leaves out local data, secrets, .git and
// benchmark output but nothing the build needs; the Dockerfile's own build
// command, run on exactly that context, makes a static binary stamped with
// the version and revision passed as build arguments.
func TestDockerfileBuild(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ignore := readDockerignore(t, filepath.Join(root, ".dockerignore"))

	t.Run("LeftOut", func(t *testing.T) {
		for _, p := range []string{
			".billingd", ".billingd/pg/PG_VERSION", ".billingd/webhook-secret", ".billingd/pg.log",
			"cmd/billingd/.billingd/pg/base/1/112", "examples/webhook-secret",
			".git", ".git/config", ".env", "deploy/prod.env", "deploy/tls.key", "deploy/tls.pem",
			"bench/out/cpu.prof", "bench/.peer/node_modules/pg/index.js", "web/node_modules/x.js",
			"billingd", "cmd/billingd/billingd.test", "cover.out",
		} {
			if !ignore.excludes(p) {
				t.Errorf("%s would be sent to the Docker build", p)
			}
		}
	})

	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var tracked []string
	for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if ignore.excludes(p) {
			t.Errorf("tracked file %s is left out of the build context", p)
			continue
		}
		tracked = append(tracked, p)
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/billingd/main.go", "migrations/0001_init.up.sql", "web/static/app.js", "Dockerfile"} {
		if ignore.excludes(keep) {
			t.Errorf("%s is left out of the build context", keep)
		}
	}

	t.Run("BuildCommand", func(t *testing.T) {
		// The build stage's go build line, run as the Dockerfile runs it
		// (sh -c, build arguments in the environment) on a context holding
		// only what .dockerignore lets through.
		df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindSubmatch(df)
		if m == nil {
			t.Fatal("no `RUN CGO_ENABLED=0 go build` line in the Dockerfile")
		}
		for _, arg := range []string{"ARG VERSION", "ARG REVISION"} {
			if !strings.Contains(string(df), arg) {
				t.Fatalf("Dockerfile does not declare %s", arg)
			}
		}
		ctxDir := t.TempDir()
		for _, p := range tracked {
			copyFile(t, filepath.Join(root, p), filepath.Join(ctxDir, p))
		}
		bin := filepath.Join(t.TempDir(), "billingd")
		cmdLine := strings.ReplaceAll(string(m[1]), "/out/billingd", bin)
		cmd := exec.Command("sh", "-c", cmdLine)
		cmd.Dir = ctxDir
		cmd.Env = append(os.Environ(), "VERSION=v1.2.3-test", "REVISION=4b825dc642cb6eb9a060e54bf8d69288fbee4904")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmdLine, err, b)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary is dynamically linked; distroless static has no libc")
			}
		}
		got, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"version: v1.2.3-test\n", "revision: 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"} {
			if !strings.Contains(string(got), want) {
				t.Errorf("billingd version lacks %q:\n%s", want, got)
			}
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
