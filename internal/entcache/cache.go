// Package entcache keeps entitlement answers and API token records in
// process memory so the app's hot path (GET /v1/accounts/{id}/entitlement)
// costs no database round trip, and stays correct across replicas through
// PostgreSQL's cache-invalidation feed (internal/postgres/invalidations.go).
//
// Staleness bound: a replica serves a cached answer only while a poll of
// the feed succeeded within the last Bound (default 1s; polls run four
// times per Bound). A poll sees every change committed before it started,
// so an answer served at time t reflects every change committed before
// t - Bound. When the proof is older (database slow or unreachable) reads
// bypass the cache and go to the database; the first good poll after a
// failure flushes everything. Entries are also dropped when time alone
// changes them (a past_due grace period or scheduled cancellation ending:
// RecheckAt).
//
// Why a feed table and not LISTEN/NOTIFY: NOTIFY serialises the commits of
// all notifying transactions on one database-wide lock (fsync included),
// which capped webhook ingest; the feed costs an ordinary insert, loses
// nothing while a replica is disconnected, and needs no session-mode
// connection.
//
// What is kept per account and mode is an answer: whatever the render
// function given to New makes of the account's billing.Entitlement, once
// per change. The API renders its response (body and ETag,
// api.RenderEntitlement), so a cache hit only writes bytes, and the wire
// format stays the API's.
//
// Loads race invalidations: an entry loaded from a snapshot older than an
// invalidation that arrived meanwhile is not stored (a sequence number
// taken before the load is compared under the write lock).
package entcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is the database behind the cache (*postgres.Store).
type Source interface {
	// EntitlementInputs reads what an account's answer is computed from,
	// but the catalog, which the cache keeps (Catalog).
	EntitlementInputs(ctx context.Context, accountID string, livemode bool) (billing.ResolveInput, error)
	// Catalog reads the features catalog: every answer uses it, so it is
	// loaded once and kept until a feed row of kind "all" (a catalog
	// change) or a flush drops it.
	Catalog(ctx context.Context) (billing.CatalogRecord, error)
	TokenByHash(ctx context.Context, hash billing.TokenHash) (billing.Token, error)
	TokenTouch(ctx context.Context, id int64) error
	// Invalidations reads the cache-invalidation feed (see Run).
	Invalidations(ctx context.Context, since uint64) (uint64, []billing.Invalidation, error)
	// PurgeInvalidations deletes feed rows older than age.
	PurgeInvalidations(ctx context.Context, age time.Duration) error
}

// Options tunes a Cache. Zero values take the defaults.
type Options struct {
	// Grace is ENTITLEMENT_GRACE_PERIOD: how long past_due stays entitled.
	Grace time.Duration
	// Bound is the staleness bound (default 1s). The feed is polled four
	// times per Bound.
	Bound time.Duration
	// MaxEntries caps each map (default 200,000); beyond it a random entry
	// is evicted per insert.
	MaxEntries int
	Log        *slog.Logger
	// Registerer receives the cache metrics; nil: not collected.
	Registerer prometheus.Registerer
}

// Cache is the entitlement and token cache of one process, keeping
// entitlement answers of type A. Its methods are safe for concurrent use.
// Without Run it never serves from memory (every read goes to the
// database): correct, only slower.
type Cache[A any] struct {
	src    Source
	render func(billing.Entitlement) A
	grace  time.Duration
	bound  time.Duration
	max    int
	log    *slog.Logger
	m      *metrics

	// base anchors the monotonic clock; confirmed is the time (since base,
	// ns) at which the last heartbeat that proved the listener up to date
	// started; 0: never / not now.
	base      time.Time
	confirmed atomic.Int64

	mu     sync.RWMutex
	seq    uint64               // bumped by every invalidation; guarded by mu
	live   map[string]*entry[A] // account ID -> live-mode answer
	test   map[string]*entry[A] // account ID -> test-mode answer
	tokens map[billing.TokenHash]*billing.Token
	// unknown holds hashes no token has: a client misconfigured with a
	// wrong token retries fast, and each retry would cost a query.
	// Creating a token needs no invalidation here: a new token's hash is
	// one nobody has presented before.
	unknown map[billing.TokenHash]struct{}
	// catalog is the features catalog every answer reads; nil: not loaded
	// (dropped with the answers by FlushEntitlements and Flush).
	catalog *billing.Catalog
}

// entry is one cached answer and what the cache needs to know of it.
type entry[A any] struct {
	answer    A
	recheckAt time.Time // billing.Entitlement.RecheckAt: time alone changes the answer then
	bucket    uint16    // billing.CacheBucket of the account, for feed invalidations
}

// New returns a cache over src whose answers are render's of each
// entitlement. Call Run to start its listener.
func New[A any](src Source, render func(billing.Entitlement) A, opt Options) *Cache[A] {
	if opt.Bound <= 0 {
		opt.Bound = time.Second
	}
	if opt.MaxEntries <= 0 {
		opt.MaxEntries = 200_000
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Cache[A]{
		src: src, render: render, grace: opt.Grace, bound: opt.Bound, max: opt.MaxEntries, log: opt.Log,
		m: newMetrics(opt.Registerer), base: time.Now(),
		live: make(map[string]*entry[A]), test: make(map[string]*entry[A]),
		tokens: make(map[billing.TokenHash]*billing.Token), unknown: make(map[billing.TokenHash]struct{}),
	}
}

// Bound is the staleness bound this cache keeps.
func (c *Cache[A]) Bound() time.Duration { return c.bound }

func (c *Cache[A]) since() int64 { return int64(time.Since(c.base)) }

// Fresh reports whether the cache may answer from memory now: its
// listener proved itself up to date within the bound.
func (c *Cache[A]) Fresh() bool { return c.fresh() }

// fresh reports whether memory may answer now (see the package comment).
func (c *Cache[A]) fresh() bool {
	conf := c.confirmed.Load()
	return conf != 0 && c.since()-conf <= int64(c.bound)
}

// Entitlement returns the account's entitlement answer in one mode.
func (c *Cache[A]) Entitlement(ctx context.Context, accountID string, livemode bool) (A, error) {
	return c.entitlement(ctx, accountID, livemode, true)
}

// FreshEntitlement is Entitlement read from the database whatever memory
// holds: a client that sent Cache-Control: no-cache asked not to be
// answered from a stored copy. The answer still replaces the cached one.
func (c *Cache[A]) FreshEntitlement(ctx context.Context, accountID string, livemode bool) (A, error) {
	return c.entitlement(ctx, accountID, livemode, false)
}

func (c *Cache[A]) entitlement(ctx context.Context, accountID string, livemode, memory bool) (A, error) {
	now := time.Now()
	if memory && c.fresh() {
		c.mu.RLock()
		e := c.modeMap(livemode)[accountID]
		c.mu.RUnlock()
		if e != nil && (e.recheckAt.IsZero() || now.Before(e.recheckAt)) {
			c.m.hit(kindEntitlement)
			return e.answer, nil
		}
	}
	c.m.miss(kindEntitlement)
	seq := c.currentSeq()
	// The catalog after the sequence number: a catalog change that lands
	// between the two bumps it, and this answer is then not kept.
	cat, err := c.catalogFor(ctx, seq)
	if err != nil {
		var none A
		return none, err
	}
	in, err := c.src.EntitlementInputs(ctx, accountID, livemode)
	if err != nil {
		var none A
		return none, err
	}
	in.Catalog = cat
	ent := billing.ResolveEntitlement(in, livemode, now, c.grace)
	e := &entry[A]{answer: c.render(ent), recheckAt: ent.RecheckAt}
	if c.fresh() {
		c.mu.Lock()
		if c.seq == seq {
			m := c.modeMap(livemode)
			evict(m, c.max)
			e.bucket = billing.CacheBucket(accountID)
			m[accountID] = e
		}
		c.mu.Unlock()
	}
	return e.answer, nil
}

func (c *Cache[A]) modeMap(livemode bool) map[string]*entry[A] {
	if livemode {
		return c.live
	}
	return c.test
}

// catalogFor returns the catalog, loading it when memory has none; the
// loaded one is kept only while no invalidation arrived since seq.
func (c *Cache[A]) catalogFor(ctx context.Context, seq uint64) (*billing.Catalog, error) {
	c.mu.RLock()
	cat := c.catalog
	c.mu.RUnlock()
	if cat != nil {
		return cat, nil
	}
	rec, err := c.src.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	cat = &rec.Catalog
	if c.fresh() {
		c.mu.Lock()
		if c.seq == seq {
			c.catalog = cat
		}
		c.mu.Unlock()
	}
	return cat, nil
}

// FlushEntitlements drops every cached answer and the catalog: the catalog
// changed, and every account's answer reads it. The feed tells every
// replica (a row of kind "all"); the Store calls it on the replica that
// made the change before the write returns (OnCatalogChanged).
func (c *Cache[A]) FlushEntitlements() {
	c.mu.Lock()
	c.seq++
	clear(c.live)
	clear(c.test)
	c.catalog = nil
	c.mu.Unlock()
	c.m.flushes.Inc()
}

// TokenByHash returns the token record with this hash (api.Tokens);
// billing.ErrNotFound when none.
func (c *Cache[A]) TokenByHash(ctx context.Context, hash billing.TokenHash) (billing.Token, error) {
	if c.fresh() {
		c.mu.RLock()
		t := c.tokens[hash]
		_, bad := c.unknown[hash]
		c.mu.RUnlock()
		switch {
		case t != nil:
			c.m.hit(kindToken)
			return *t, nil
		case bad:
			c.m.hit(kindToken)
			return billing.Token{}, fmt.Errorf("get token: %w", billing.ErrNotFound)
		}
	}
	c.m.miss(kindToken)
	seq := c.currentSeq()
	t, err := c.src.TokenByHash(ctx, hash)
	if errors.Is(err, billing.ErrNotFound) && c.fresh() {
		c.mu.Lock()
		if c.seq == seq {
			evict(c.unknown, maxUnknown)
			c.unknown[hash] = struct{}{}
		}
		c.mu.Unlock()
	}
	if err != nil {
		return billing.Token{}, err
	}
	// last_used_at is kept at minute precision, written on loads only.
	if !t.Revoked() && (t.LastUsedAt == nil || time.Since(*t.LastUsedAt) > time.Minute) {
		if err := c.src.TokenTouch(ctx, t.ID); err != nil && !errors.Is(err, context.Canceled) {
			c.log.Warn("record token use", "token_id", t.ID, "err", err)
		}
	}
	if c.fresh() {
		c.mu.Lock()
		if c.seq == seq {
			evict(c.tokens, c.max)
			tc := t
			c.tokens[hash] = &tc
		}
		c.mu.Unlock()
	}
	return t, nil
}

func (c *Cache[A]) currentSeq() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.seq
}

// InvalidateAccount drops an account's answers (both modes). The listener
// calls it for every notification; a handler that changed the account
// calls it too, so its own replica reads its writes at once.
func (c *Cache[A]) InvalidateAccount(accountID string) {
	c.mu.Lock()
	c.seq++
	delete(c.live, accountID)
	delete(c.test, accountID)
	c.mu.Unlock()
	c.m.invalidations.Inc()
}

// InvalidateAccounts drops the answers of several accounts (both modes)
// under one lock: the Store calls it after each commit that changed them
// (postgres.Store.OnAccountsChanged), before the write's caller is
// answered, so this replica reads its own writes.
func (c *Cache[A]) InvalidateAccounts(accountIDs []string) {
	if len(accountIDs) == 0 {
		return
	}
	c.mu.Lock()
	c.seq++
	for _, id := range accountIDs {
		delete(c.live, id)
		delete(c.test, id)
	}
	c.mu.Unlock()
	c.m.invalidations.Add(float64(len(accountIDs)))
}

// FlushTokens drops every cached token (a token was revoked somewhere).
func (c *Cache[A]) FlushTokens() {
	c.mu.Lock()
	c.seq++
	clear(c.tokens)
	clear(c.unknown)
	c.mu.Unlock()
	c.m.invalidations.Inc()
}

// Flush drops everything: after a (re)connection, when notifications may
// have been lost.
func (c *Cache[A]) Flush() {
	c.mu.Lock()
	c.seq++
	clear(c.live)
	clear(c.test)
	clear(c.tokens)
	clear(c.unknown)
	c.catalog = nil
	c.mu.Unlock()
	c.m.flushes.Inc()
}

// evict makes room for one insert. Go randomises map iteration, so the
// first key is a random victim: no bookkeeping on the read path.
func evict[K comparable, V any](m map[K]V, max int) {
	for k := range m {
		if len(m) < max {
			return
		}
		delete(m, k)
	}
}

// maxUnknown bounds the unknown-token set: random tokens from a scan
// evict each other, not the real ones (a separate map).
const maxUnknown = 10_000
