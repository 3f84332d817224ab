package entcache

import (
	"context"
	"time"

	"github.com/billingd/billingd/billing"
)

// feedRetention is how long invalidation rows are kept. A poller that has
// not read the feed for this long lost its freshness proof long ago and
// flushes when it reads again.
const feedRetention = 10 * time.Minute

// Run polls the invalidation feed (postgres.Store.Invalidations) four
// times per bound until ctx ends, applying each change and proving
// freshness: a poll that succeeds has seen every change committed before
// it started, so the cache is fresh as of that start. A failed poll drops
// the proof (reads go to the database) and the next good one flushes,
// since rows may have been purged meanwhile. It works through any
// PostgreSQL connection, pooled ones included: no LISTEN session needed.
func (c *Cache[A]) Run(ctx context.Context) {
	every := c.bound / 4
	var since uint64
	seen := map[int64]struct{}{}
	lastPurge := time.Now()
	for ctx.Err() == nil {
		t0 := c.since()
		pctx, cancel := context.WithTimeout(ctx, c.bound)
		next, rows, err := c.src.Invalidations(pctx, since)
		cancel()
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			if since != 0 || c.confirmed.Load() != 0 {
				c.log.Warn("entitlement cache feed unreadable; reads go to the database until it is back", "err", err)
			}
			c.confirmed.Store(0)
			c.m.listening.Set(0)
			since = 0
		case since == 0:
			// First read, or the first after a failure: changes may have
			// been missed, so start from nothing.
			c.Flush()
			c.m.reconnects.Inc()
			since, seen = next, map[int64]struct{}{}
			c.confirmed.Store(t0)
			c.m.listening.Set(1)
		default:
			seen = c.applyFeed(rows, seen)
			since = next
			c.confirmed.Store(t0)
			c.m.listening.Set(1)
		}
		if time.Since(lastPurge) > time.Minute {
			lastPurge = time.Now()
			if err := c.src.PurgeInvalidations(ctx, feedRetention); err != nil && ctx.Err() == nil {
				c.log.Warn("purge cache invalidation feed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// applyFeed applies rows not applied before and returns the IDs of this
// read: the next read's window starts at this read's xmin, so it can only
// repeat rows of this one.
func (c *Cache[A]) applyFeed(rows []billing.Invalidation, seen map[int64]struct{}) map[int64]struct{} {
	now := make(map[int64]struct{}, len(rows))
	var buckets map[uint16]struct{}
	tokens, all := false, false
	for _, r := range rows {
		now[r.ID] = struct{}{}
		if _, ok := seen[r.ID]; ok {
			continue
		}
		if r.Token {
			tokens = true
			continue
		}
		if r.All {
			all = true
			continue
		}
		if buckets == nil {
			buckets = map[uint16]struct{}{}
		}
		buckets[r.Bucket] = struct{}{}
	}
	if tokens {
		c.FlushTokens()
	}
	switch {
	case all:
		c.FlushEntitlements()
	case len(buckets) > 0:
		c.invalidateBuckets(buckets)
	}
	return now
}

// invalidateBuckets drops the answers of every account in the buckets.
func (c *Cache[A]) invalidateBuckets(buckets map[uint16]struct{}) {
	c.mu.Lock()
	c.seq++
	for _, m := range []map[string]*entry[A]{c.live, c.test} {
		for id, e := range m {
			if _, ok := buckets[e.bucket]; ok {
				delete(m, id)
			}
		}
	}
	c.mu.Unlock()
	c.m.invalidations.Add(float64(len(buckets)))
}
