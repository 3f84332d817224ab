package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Connection poolers. Managed PostgreSQL puts PgBouncer in transaction
// mode in front of the database: a client's server connection is its own
// for one transaction only, and the next statement outside a transaction
// may run on another. PgBouncer 1.18 (Debian 12's) does not track
// protocol-level prepared statements, so anything a statement leaves on a
// server connection past its transaction is gone, or someone else's, by
// the next one. billingd therefore keeps no server-side state beyond a
// transaction on the main pool:
//
//   - every parameterised statement is one unnamed Parse/Bind/Execute/Sync
//     exchange (lib/pq's binary_parameters): one round trip, nothing left
//     behind. Without it lib/pq parses in one exchange and binds in a
//     second, and a pooler may hand the second to another server outside
//     a transaction ("unnamed prepared statement does not exist");
//   - no statement is prepared by name on the pool (event9_prepared.go:
//     Options.PrepareStatements stays off; serve leaves it off when
//     DATABASE_SESSION_URL names another address than DATABASE_URL);
//   - session advisory locks (migrations, purge, Stripe sync) take a
//     connection of the session pool, DATABASE_SESSION_URL, which points
//     past the pooler (or at it in session mode).
//
// binary_parameters sends []byte arguments in binary format: a []byte
// bound to a jsonb parameter would be read as jsonb's binary form, so JSON
// goes in as a string (outbox payloads, audit details).

// openPool opens a pool on url with binary parameters and checks it.
func openPool(ctx context.Context, url string, maxOpen, maxIdle int) (*sqlx.DB, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	cfg.BinaryParameters = true
	conn, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(conn), "postgres")
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", translate(err))
	}
	return db, nil
}

// qWriteProbe writes the way the event path and the API do, in a
// transaction that is rolled back: a parameterised statement (extended
// protocol) that takes a row lock and needs a writable transaction.
// Nothing is changed: no row has that key.
const qWriteProbe = `UPDATE instance_keys SET created_at = created_at WHERE name = $1`

// CheckWrites reports whether a write would succeed now, as a webhook's
// or an API call's would: on the pool's connections, through any pooler,
// to a primary that accepts writes, in a transaction (the event path's
// BEGIN READ WRITE fails on a standby) and outside one (one-statement
// writes fail where default_transaction_read_only is on, as managed
// offerings set it on a database out of space). A ping alone answers in
// all these cases, and on a pooler that cannot run parameterised
// statements.
func (s *Store) CheckWrites(ctx context.Context) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write probe: begin: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // the probe never commits
	if _, err := tx.ExecContext(ctx, qWriteProbe, "billingd.readyz-probe"); err != nil {
		return fmt.Errorf("write probe: %w", translate(err))
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("write probe: rollback: %w", translate(err))
	}
	if _, err := s.db.ExecContext(ctx, qWriteProbe, "billingd.readyz-probe"); err != nil {
		return fmt.Errorf("write probe: one statement: %w", translate(err))
	}
	return nil
}
