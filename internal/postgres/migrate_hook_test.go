package postgres

import (
	"context"
	"io/fs"
)

// MigrateUpFS migrates with the migrations in fsys, as a binary built with
// them would: the external tests play binaries of several migration sets.
func MigrateUpFS(s *Store, fsys fs.FS) error { return s.migrateUp(context.Background(), fsys) }

// MigrateDownFS rolls back n migrations of fsys.
func MigrateDownFS(s *Store, fsys fs.FS, n int) error { return s.migrateDown(fsys, n) }

// CheckNewer is CheckSchema for a binary that knows the migrations in fsys.
func CheckNewer(ctx context.Context, s *Store, fsys fs.FS) error {
	set, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	v, _, err := s.SchemaVersion()
	if err != nil {
		return err
	}
	if v <= set.latest() {
		return nil
	}
	return s.checkNewer(ctx, v, set.latest())
}

// MigrationDirectives returns each migration's declared oldest compatible
// binary (0: none declared), or the error loading fsys gives.
func MigrationDirectives(fsys fs.FS) (map[uint]uint, error) {
	set, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	out := map[uint]uint{}
	for _, mg := range set {
		out[mg.Version] = mg.OldestBinary
	}
	return out, nil
}

// DownDrops lists the tables and columns each migration's down file drops,
// by version.
func DownDrops(fsys fs.FS) (map[uint][]Drop, error) {
	set, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	out := map[uint][]Drop{}
	for _, mg := range set {
		d, err := downDrops(fsys, mg)
		if err != nil {
			return nil, err
		}
		out[mg.Version] = d
	}
	return out, nil
}
