// Package migrations holds the numbered up/down SQL migrations, embedded so
// the binary carries its own schema.
package migrations

import "embed"

// FS holds every *.sql migration file.
//
//go:embed *.sql
var FS embed.FS
