// Package migrations holds the numbered up/down SQL migrations, embedded so
// the binary carries its own schema. README.md in this directory is the
// convention every migration follows (compatibility with older binaries,
// what a down migration may never drop).
package migrations

import (
	"embed"
	"errors"
	"io/fs"
	"regexp"
	"strconv"
)

// FS holds every *.sql migration file.
//
//go:embed *.sql
var FS embed.FS

// maxVersion, set at build time with
//
//	go build -ldflags "-X github.com/billingd/billingd/migrations.maxVersion=81" ./cmd/billingd
//
// makes the binary know only the migrations up to that version: the binary
// of the previous migration set, built from today's code. The upgrade test
// runs it against the newest schema, as a rollback or an old pod restarting
// mid-deploy would. Empty (every release build): every embedded migration.
var maxVersion string

var fileName = regexp.MustCompile(`^(\d+)_[a-z0-9_]+\.(up|down)\.sql$`)

// Version returns the migration version a file name carries (0001_init.up.sql
// is 1), and whether the name is a migration file at all.
func Version(name string) (uint, bool) {
	m := fileName.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		return 0, false
	}
	return uint(n), true
}

// Known returns the migrations this binary knows: every embedded one, or
// only those up to maxVersion when the build set it.
func Known() fs.FS {
	if maxVersion == "" {
		return FS
	}
	max, err := strconv.ParseUint(maxVersion, 10, 32)
	if err != nil {
		// A bad -X value is a build mistake; knowing nothing makes every
		// command fail loudly instead of silently knowing everything.
		max = 0
	}
	return upTo{FS, uint(max)}
}

// upTo hides the migrations newer than max.
type upTo struct {
	fsys embed.FS
	max  uint
}

func (u upTo) visible(name string) bool {
	v, ok := Version(name)
	return ok && v <= u.max
}

func (u upTo) Open(name string) (fs.File, error) {
	if name != "." && !u.visible(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return u.fsys.Open(name)
}

func (u upTo) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	all, err := u.fsys.ReadDir(name)
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	for _, e := range all {
		if u.visible(e.Name()) {
			out = append(out, e)
		}
	}
	return out, nil
}
