package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// stmtCache holds the event path's statements prepared by name on the
// pool, when Options.PrepareStatements asks for them (a pool that reaches
// PostgreSQL directly or through a session-mode pooler). Inside a
// transaction database/sql re-uses the statement already prepared on that
// transaction's connection (preparing it there once), so each execution
// skips the parse and plan of the event path's large statements.
//
// Behind a transaction-mode pooler (PgBouncer 1.18) a statement prepared
// by name outlives the transaction that prepared it on a server connection
// the next transaction may not get ("prepared statement "1" does not
// exist"), so there nothing is prepared: each statement is one unnamed
// Parse/Bind/Execute exchange (pool.go), the same one round trip, plus a
// parse and plan on the server (about 1.5 times a single-event batch's
// time on a busy 2-core machine; amortised over a batch's events at high
// concurrency). serve turns it on unless DATABASE_SESSION_URL says
// DATABASE_URL is a pooler (DB_PREPARED_STATEMENTS).
type stmtCache struct {
	on bool // Options.PrepareStatements
	mu sync.Mutex
	m  map[string]*sqlx.Stmt
}

// isEventStatement is eventStatements as a set.
var isEventStatement = func() map[string]bool {
	m := make(map[string]bool, len(eventStatements))
	for _, q := range eventStatements {
		m[q] = true
	}
	return m
}()

// prepare makes sure every query in qs is prepared on the pool when named
// statements are on. It must be called before the caller's transaction
// begins: preparing takes a pool connection, and a transaction waiting for
// one while holding another could exhaust the pool. After the first
// success it costs a mutex.
func (s *Store) prepare(ctx context.Context, qs ...string) error {
	if !s.stmts.on {
		return nil
	}
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

// eventStatements are the statements the event path runs on every
// batch, prepared once per pool before its first transaction (prepare)
// when named statements are on. This is the one list: a statement that is
// not on it always runs unprepared.
var eventStatements = [...]string{qTxLimits, qRecordEvents, qLockCustomers, qWriteSubscriptions, qCustomerVersion,
	qPlainCustomers, qCustomerDiscountVersions, qReplaceLedgers, qInsertInvalidation, qInsertAccountChange,
	qInsertAccountChanges, qLedgerInputs}

// ptx is the event path's transaction with what its steps need, passed
// as one parameter: the Store, whose prepared statements its ExecContext,
// QueryxContext and QueryRowxContext use for eventStatements (a function
// that takes a sqlx.ExecerContext, like notifyAccountChange, gets them by
// being handed a ptx rather than a *sqlx.Tx); the erasure key ring; and
// what the batch learns on the way.
type ptx struct {
	*sqlx.Tx
	s    *Store
	ring billing.KeyRing // the erasure ring: tombstone and former-account hashes
	// erased are the accounts the batch's hints name that were erased
	// (read under their shared locks): link never links to them.
	erased map[string]bool
	// changed collects the accounts the transaction's writes notified
	// (notifyAccountChange), for the Store to tell its cache after commit.
	changed accountSet
	// fin collects what customer and invoice events ask of the ledgers
	// (ledger_inputs.go).
	fin *finWork
	// plans, when statements are not prepared on the pool, are the
	// eventStatements prepared on the transaction's server session
	// (event9_session_plans.go).
	plans *sessionPlans
}

// session returns the EXECUTE that runs q with args when q is one of
// eventStatements run through session plans; ok is false otherwise.
func (t ptx) session(ctx context.Context, q string, args []any) (exec string, ok bool, err error) {
	if t.plans == nil || !isEventStatement[q] {
		return "", false, nil
	}
	exec, err = t.sessionStatement(ctx, q, args)
	return exec, true, err
}

// stmt returns q prepared on the transaction's connection, or nil when q
// is not one of eventStatements or named statements are off.
func (t ptx) stmt(ctx context.Context, q string) *sqlx.Stmt {
	if t.s == nil || !t.s.stmts.on {
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

// ExecContext runs q, prepared when it is one of eventStatements.
func (t ptx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if exec, ok, err := t.session(ctx, q, args); ok {
		if err != nil {
			return nil, err
		}
		return t.Tx.ExecContext(ctx, exec)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

// QueryRowxContext runs q, prepared when it is one of eventStatements, and
// returns its row.
func (t ptx) QueryRowxContext(ctx context.Context, q string, args ...any) *sqlx.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	// A Row can only carry the database's errors: when the session
	// statement cannot be had, the unnamed one runs (and reports a failed
	// PREPARE's aborted transaction at Scan).
	if exec, ok, err := t.session(ctx, q, args); ok && err == nil {
		return t.Tx.QueryRowxContext(ctx, exec)
	}
	return t.Tx.QueryRowxContext(ctx, q, args...)
}

// QueryxContext runs q, prepared when it is one of eventStatements, and
// returns its rows.
func (t ptx) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryxContext(ctx, args...)
	}
	if exec, ok, err := t.session(ctx, q, args); ok {
		if err != nil {
			return nil, err
		}
		return t.Tx.QueryxContext(ctx, exec)
	}
	return t.Tx.QueryxContext(ctx, q, args...)
}
