package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
)

// stmtCache holds the event path's statements prepared on the pool. Inside
// a transaction database/sql re-uses the statement already prepared on that
// transaction's connection (preparing it there once), so each execution is
// one round trip with no parse or plan, where an unprepared parameterised
// query costs lib/pq two round trips and a fresh plan every time. The event
// path runs a handful of statements per event at thousands of events per
// second, so this halves its database work.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sqlx.Stmt
}

// prepare makes sure every query in qs is prepared on the pool. It must be
// called before the caller's transaction begins: preparing takes a pool
// connection, and a transaction waiting for one while holding another could
// exhaust the pool. After the first success it costs a mutex.
func (s *Store) prepare(ctx context.Context, qs ...string) error {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if s.stmts.m == nil {
		s.stmts.m = make(map[string]*sqlx.Stmt)
	}
	for _, q := range qs {
		if _, ok := s.stmts.m[q]; ok {
			continue
		}
		st, err := s.db.PreparexContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", translate(err))
		}
		s.stmts.m[q] = st
	}
	return nil
}

// ptx is a transaction of the event path with access to the prepared
// statements; queries not prepared run as plain queries.
type ptx struct {
	*sqlx.Tx
	s *Store
	// tombstones are the keyed hashes of the event's subjects, whose
	// shared locks ApplyEvent already holds: lockCustomer checks them.
	tombstones [][]byte
	// erased are the accounts the batch's hints name that were erased
	// (read under their shared locks): link never links to them.
	erased map[string]bool
	// changed collects the accounts the transaction's hooks notified
	// (notifyAccountChange), for the Store to tell its cache after commit.
	changed accountSet
}

func (t ptx) stmt(ctx context.Context, q string) *sqlx.Stmt {
	if t.s == nil {
		return nil
	}
	t.s.stmts.mu.Lock()
	st := t.s.stmts.m[q]
	t.s.stmts.mu.Unlock()
	if st == nil {
		return nil
	}
	return t.Tx.StmtxContext(ctx, st)
}

// queryRowx runs q (prepared if it was) and returns its row.
func (t ptx) queryRowx(ctx context.Context, q string, args ...any) *sqlx.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	return t.Tx.QueryRowxContext(ctx, q, args...)
}

// Hooks of the event transaction (recomputeMovements, enqueueSubscriptionSync,
// notifyAccountChange, isTombstoned) have fixed signatures without the
// Store, and a statement must be prepared before the transaction begins. So
// a hook opts in by registering its statement text when the package loads
// and running it through txExec / txQueryRowx / txSelect:
//
//	var qInsertInvalidation = eventStatement(`INSERT INTO ... VALUES ($1, $2)`)
//	...
//	_, err := txExec(ctx, tx, qInsertInvalidation, kind, bucket)
//
// Inside ApplyEvent that is one round trip with a cached plan; anywhere
// else (other transactions, tests) the helpers run a plain query.
var hookStatements []string

// eventStatement registers q to be prepared with the event path's
// statements and returns it unchanged. Call it only from package-level
// variable initialisers.
func eventStatement(q string) string {
	hookStatements = append(hookStatements, q)
	return q
}

// stmtStoreCtx carries the Store whose prepared statements the hooks use.
type stmtStoreCtx struct{}

func withStatements(ctx context.Context, s *Store) context.Context {
	return context.WithValue(ctx, stmtStoreCtx{}, s)
}

// hookTx is tx with the prepared statements of ctx's Store, if any.
func hookTx(ctx context.Context, tx *sqlx.Tx) ptx {
	s, _ := ctx.Value(stmtStoreCtx{}).(*Store)
	return ptx{Tx: tx, s: s}
}

// txExec runs q in tx, prepared when ApplyEvent prepared it.
func txExec(ctx context.Context, tx *sqlx.Tx, q string, args ...any) (sql.Result, error) {
	if st := hookTx(ctx, tx).stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQueryRowx runs q in tx and returns its row, prepared when ApplyEvent
// prepared it.
func txQueryRowx(ctx context.Context, tx *sqlx.Tx, q string, args ...any) *sqlx.Row {
	return hookTx(ctx, tx).queryRowx(ctx, q, args...)
}

// txSelect runs q in tx and scans every row into dest, prepared when
// ApplyEvent prepared it.
func txSelect(ctx context.Context, tx *sqlx.Tx, dest any, q string, args ...any) error {
	if st := hookTx(ctx, tx).stmt(ctx, q); st != nil {
		return st.SelectContext(ctx, dest, args...)
	}
	return tx.SelectContext(ctx, dest, q, args...)
}

// stmtQueryx runs q (prepared if it was) and returns its rows.
func (t ptx) stmtQueryx(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryxContext(ctx, args...)
	}
	return t.Tx.QueryxContext(ctx, q, args...)
}
