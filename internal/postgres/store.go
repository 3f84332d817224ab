package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Store is the PostgreSQL implementation of billingd's storage interfaces.
type Store struct {
	db *sqlx.DB
	// sess holds the connections that need a session of their own
	// (session advisory locks of migrations, purge and the Stripe sync):
	// a small pool on DATABASE_SESSION_URL, or db itself when that is the
	// same server (pool.go).
	sess *sqlx.DB
	log  *slog.Logger

	keys instanceKeys // the erasure and link key rings, cached after first load (keys.go)

	stmts stmtCache // the event path's prepared statements (event9_prepared.go)

	group *groupApplier // group commit of concurrent events (event2_group.go)

	onAccounts func(accountIDs []string) // read your writes: told of every commit's accounts (notify.go)
	onCatalog  func()                    // read your writes: told of every catalog change (catalog.go)

	segCompacted atomic.Int64 // revenue_segments_daily rows up to this ID were compacted (revenue_segments.go)

	factsWake chan struct{} // this Store's event path queued revenue facts to derive (revenue_facts_deriver.go)
	// eventBatchAt is when the event path last committed a batch (unix
	// nanoseconds): the fact deriver yields to it.
	eventBatchAt atomic.Int64
}

// Options tunes the connection pool.
type Options struct {
	MaxOpenConns int
	MaxIdleConns int
	// EventBatchers is how many event batches run at once (event2_group.go);
	// 0 means 2. EventBatchMax caps a batch's events; 0 means 64.
	EventBatchers int
	EventBatchMax int
	// EventQueueMax caps the events waiting for a batch; callers beyond
	// it are refused at once with billing.ErrOverloaded. 0 means 512.
	EventQueueMax int
	// SessionURL is where connections that need a session of their own
	// go (migrations, purge and Stripe sync advisory locks): a server
	// reached past any transaction-mode pooler. "" or the pool's own URL
	// means the pool itself (pool.go).
	SessionURL string
	// SessionMaxConns caps the session pool when it is separate; 0 means 3.
	SessionMaxConns int
	// PrepareStatements prepares the event path's statements by name on
	// the pool (event9_prepared.go). Only for a pool whose connections are
	// sessions: direct, or a session-mode pooler. Never behind a
	// transaction-mode pooler.
	PrepareStatements bool
}

// Open connects to url and checks the connection. It does not migrate.
func Open(ctx context.Context, url string, log *slog.Logger, opt Options) (*Store, error) {
	if opt.MaxOpenConns == 0 {
		opt.MaxOpenConns = 32
	}
	if opt.MaxIdleConns == 0 {
		opt.MaxIdleConns = opt.MaxOpenConns
	}
	db, err := openPool(ctx, url, opt.MaxOpenConns, opt.MaxIdleConns)
	if err != nil {
		return nil, err
	}
	sess := db
	if opt.SessionURL != "" && opt.SessionURL != url {
		n := opt.SessionMaxConns
		if n == 0 {
			n = 3
		}
		if sess, err = openPool(ctx, opt.SessionURL, n, 1); err != nil {
			db.Close()
			return nil, fmt.Errorf("session pool (DATABASE_SESSION_URL): %w", err)
		}
	}
	if log == nil {
		log = slog.Default()
	}
	st := &Store{db: db, sess: sess, log: log, group: newGroupApplier(opt.EventBatchers, opt.EventBatchMax, opt.EventQueueMax),
		factsWake: make(chan struct{}, 1)}
	st.stmts.on = opt.PrepareStatements
	return st, nil
}

// ObserveEventBatches has f told of every event batch once it is over: how
// many events it held, how long it took and whether it failed as a whole
// (its events were then retried one by one). Call it before the first
// ApplyEvent.
func (s *Store) ObserveEventBatches(f func(events int, took time.Duration, err error)) {
	s.group.observe = f
}

// ObserveEventQueue has f told of the number of events waiting for a batch
// whenever it changes. Call it before the first ApplyEvent.
func (s *Store) ObserveEventQueue(f func(queued int)) {
	s.group.gauge = f
}

// AdmitEvent reports whether an event due by deadline would be queued now
// (nil) or refused at once (billing.ErrOverloaded), without queueing it:
// the webhook handler asks before decoding a body, so that shedding load
// costs little. ApplyEvent decides again when it is called.
func (s *Store) AdmitEvent(deadline time.Time) error {
	return s.group.Admit(deadline)
}

// OnAccountsChanged has f told, after every commit of this Store that may
// have changed what accounts are entitled to (webhook events, links,
// erasures, backfill and reconcile), which accounts those were, before the
// write returns to its caller. serve wires it to its entitlement cache, so
// a replica reads its own writes at once; other replicas learn of them
// through the cache-invalidation feed within its bound. An account may be
// named twice. f must be fast and must not call back into the Store. Call
// it before the first write.
func (s *Store) OnAccountsChanged(f func(accountIDs []string)) { s.onAccounts = f }

// DB exposes the pool for code in this module that owns its own SQL
// (tests, benchmarks).
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the pools.
func (s *Store) Close() error {
	if s.sess != s.db {
		s.sess.Close()
	}
	return s.db.Close()
}

// Ping checks the database answers, on both pools.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", translate(err))
	}
	if s.sess != s.db {
		if err := s.sess.PingContext(ctx); err != nil {
			return fmt.Errorf("ping session database: %w", translate(err))
		}
	}
	return nil
}

// inTx runs fn in one transaction: commit on nil, rollback otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", translate(err))
	}
	return nil
}

// translate maps driver errors onto billing sentinels, wrapping the original
// so logs keep the detail (clients never see it: httpjson answers with fixed
// messages). Nothing leaves unclassified: an error that is none of the
// classes below is wrapped in billing.ErrInternal.
//
// Connection loss is recognised by type, never by message text (a message
// can contain anything, "EOF" included, and a wrong "unavailable" makes
// Stripe retry an event that can never be stored for three days):
//
//   - a *pq.Error in a class the server uses for a transient state: 08
//     connection, 53 resources, 57 operator intervention (shutdown,
//     statement_timeout), 58 system, 40 serialization failure and deadlock;
//     55P03 lock_not_available (lock_timeout) and 25006 (a standby that
//     is not promoted yet) too;
//   - driver.ErrBadConn, which lib/pq returns for a connection that broke
//     mid-protocol (it turns the socket's io.EOF and io.ErrUnexpectedEOF
//     into it) and for fatal server errors;
//   - a net.Error (*net.OpError: refused, reset, timeouts; dial errors
//     joined by lib/pq's multi-host connect), and pq.ErrSSLNotSupported;
//   - a bare io.EOF or io.ErrUnexpectedEOF: what a driver that does not
//     translate them returns when the socket closes. Wrapped ones are
//     not: database/sql wraps a Scan or conversion error that merely
//     contains an EOF (a truncated jsonb decoded by a Scanner) and such an
//     error is a fault of the data, not of the connection;
//   - the end of the caller's context (deadline or cancel): the work did
//     not happen and can be repeated.
//
// Values the database refuses for good (check, not-null and foreign-key
// violations, bad text representation, too long, numeric and datetime
// overflow) are ErrInvalid; unique violations ErrConflict.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if pqErr := asPQ(err); pqErr != nil {
		switch pqErr.Code.Class() {
		case "08", "53", "57", "58", "40":
			return fmt.Errorf("%w: %w", billing.ErrUnavailable, err)
		}
		switch pqErr.Code {
		case "55P03", "25006":
			return fmt.Errorf("%w: %w", billing.ErrUnavailable, err)
		case "23505":
			return fmt.Errorf("%w: %w", billing.ErrConflict, err)
		case "23514", "23502", "23503", "22P02", "22001", "22003", "22008", "22007":
			return fmt.Errorf("%w: %w", billing.ErrInvalid, err)
		}
		return fmt.Errorf("%w: %w", billing.ErrInternal, err)
	}
	if connectionLost(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", billing.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %w", billing.ErrInternal, err)
}

// connectionLost reports whether err says the connection to PostgreSQL is
// gone or could not be made, judged by type (see translate).
func connectionLost(err error) bool {
	if err == io.EOF || err == io.ErrUnexpectedEOF { //nolint:errorlint // bare on purpose: see translate
		return true
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &netErr) || errors.Is(err, pq.ErrSSLNotSupported)
}
