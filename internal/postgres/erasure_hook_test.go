package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"
)

// SetBeforeEraseCommit lets the external tests hold an erasure open just
// before it commits, to race it against the event path deterministically.
func SetBeforeEraseCommit(s *Store, f func()) { s.keys.beforeEraseCommit = f }

// IsTombstoned exposes the event path's tombstone check to the external tests.
func IsTombstoned(ctx context.Context, s *Store, tx *sqlx.Tx, ids ...string) (bool, error) {
	return isTombstoned(s.withErasureKey(ctx), tx, ids...)
}
