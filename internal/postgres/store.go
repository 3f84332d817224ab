// Package postgres is billingd's only SQL code: it implements the billing
// interfaces on PostgreSQL. Driver errors stop here and become billing errors.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Store is the PostgreSQL implementation of billingd's storage interfaces.
type Store struct {
	db  *sqlx.DB
	log *slog.Logger

	keys erasureKeys // issue 8: the erasure HMAC key, cached after first load (keys.go)

	stmts stmtCache // issue 4: the event path's prepared statements (prepared.go)

	group *groupApplier // issue 4: group commit of concurrent events (group.go)
}

// Options tunes the connection pool.
type Options struct {
	MaxOpenConns int
	MaxIdleConns int
	// EventBatchers is how many event batches run at once (group.go);
	// 0 means 2. EventBatchMax caps a batch's events; 0 means 64.
	EventBatchers int
	EventBatchMax int
	// EventQueueMax caps the events waiting for a batch; callers beyond
	// it are refused at once with billing.ErrOverloaded. 0 means 512.
	EventQueueMax int
}

// Open connects to url and checks the connection. It does not migrate.
func Open(ctx context.Context, url string, log *slog.Logger, opt Options) (*Store, error) {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if opt.MaxOpenConns == 0 {
		opt.MaxOpenConns = 32
	}
	if opt.MaxIdleConns == 0 {
		opt.MaxIdleConns = opt.MaxOpenConns
	}
	db.SetMaxOpenConns(opt.MaxOpenConns)
	db.SetMaxIdleConns(opt.MaxIdleConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", translate(err))
	}
	if log == nil {
		log = slog.Default()
	}
	return &Store{db: db, log: log, group: newGroupApplier(opt.EventBatchers, opt.EventBatchMax, opt.EventQueueMax)}, nil
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

// DB exposes the pool for code in this module that owns its own SQL
// (tests, benchmarks).
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", translate(err))
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
// so logs keep the detail. Connection-level failures become ErrUnavailable:
// the caller answers 5xx and a retry can succeed.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "08", "53", "57", "58": // connection, resources, operator intervention, system
			return fmt.Errorf("%w: %w", billing.ErrUnavailable, err)
		case "40": // serialization failure / deadlock: retryable
			return fmt.Errorf("%w: %w", billing.ErrUnavailable, err)
		}
		switch pqErr.Code {
		case "23505":
			return fmt.Errorf("%w: %w", billing.ErrConflict, err)
		case "23514", "22P02", "22001":
			return fmt.Errorf("%w: %w", billing.ErrInvalid, err)
		}
		return err
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, pq.ErrSSLNotSupported) || isConnError(err) {
		return fmt.Errorf("%w: %w", billing.ErrUnavailable, err)
	}
	return err
}

func isConnError(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"driver: bad connection", "connection refused", "no such file or directory", "broken pipe", "connection reset", "unexpected EOF", "EOF", "the database system is shutting down", "the database system is starting up"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
