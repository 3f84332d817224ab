package entcache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// The NOTIFY channels; internal/postgres sends on them (AccountChannel and
// TokenChannel there, repeated here so this package needs no store import).
const (
	accountChannel = "billingd_account"
	tokenChannel   = "billingd_token"
)

// Run keeps a LISTEN connection to dsn open until ctx ends, applying
// notifications to the cache and proving freshness with heartbeats (see the
// package comment). It reconnects with backoff and flushes on every
// (re)connection. dsn must reach PostgreSQL in session mode: LISTEN does
// not work through a transaction-pooling PgBouncer.
func (c *Cache) Run(ctx context.Context, dsn string) {
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.session(ctx, dsn)
		c.confirmed.Store(0)
		c.m.listening.Set(0)
		c.Flush()
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > maxBackoff {
			backoff = 100 * time.Millisecond // it ran fine for a while
		}
		c.log.Warn("entitlement cache listener lost; reads go to the database until it is back",
			"err", err, "retry_in_ms", backoff.Milliseconds())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session runs one LISTEN connection until it fails or ctx ends.
//
// It uses pq.ListenerConn rather than pq.Listener on purpose: ListenerConn
// hands notifications to our channel from the goroutine that reads the
// connection, in wire order, before the reply of a later query. So once a
// heartbeat ping returns, every notification PostgreSQL sent before its
// reply is in our channel. pq.Listener relays them through a second
// goroutine, which loses that ordering.
func (c *Cache) session(ctx context.Context, dsn string) error {
	notes := make(chan *pq.Notification, 256)
	cn, err := pq.NewListenerConn(dsn, notes)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer cn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// LISTEN runs while this goroutine consumes notifications: the reader
	// blocks on a full channel, and LISTEN's reply queues behind it.
	listening := make(chan error, 1)
	go func() {
		for _, ch := range []string{accountChannel, tokenChannel} {
			if _, err := cn.Listen(ch); err != nil {
				listening <- fmt.Errorf("listen %s: %w", ch, err)
				return
			}
		}
		listening <- nil
	}()

	beats := make(chan int64)
	pingErr := make(chan error, 1)
	for {
		select {
		case n, ok := <-notes:
			if !ok {
				return fmt.Errorf("listener connection closed: %w", cn.Err())
			}
			c.apply(n.Channel, n.Extra)
		case err := <-listening:
			if err != nil {
				return err
			}
			// Anything cached before LISTEN took effect may have missed a
			// notification.
			c.Flush()
			c.m.reconnects.Inc()
			go c.heartbeat(sctx, cn, beats, pingErr)
		case t0 := <-beats:
			// Every notification sent before the ping's reply is already in
			// notes: apply them all before declaring the cache fresh as of
			// the ping's start.
			for drained := false; !drained; {
				select {
				case n, ok := <-notes:
					if !ok {
						return fmt.Errorf("listener connection closed: %w", cn.Err())
					}
					c.apply(n.Channel, n.Extra)
				default:
					drained = true
				}
			}
			c.confirmed.Store(t0)
			c.m.listening.Set(1)
		case err := <-pingErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// heartbeat pings the listening connection four times per bound and
// reports each success with the time the ping started. A ping that takes
// longer than the bound closes the connection: it is dead or stuck, and
// session reconnects.
func (c *Cache) heartbeat(ctx context.Context, cn *pq.ListenerConn, beats chan<- int64, errc chan<- error) {
	every := c.bound / 4
	for {
		t0 := c.since()
		done := make(chan error, 1)
		go func() { done <- cn.Ping() }()
		timer := time.NewTimer(c.bound)
		select {
		case err := <-done:
			timer.Stop()
			if err != nil {
				errc <- fmt.Errorf("listener ping: %w", err)
				return
			}
		case <-timer.C:
			cn.Close()
			errc <- errors.New("listener ping timed out")
			return
		case <-ctx.Done():
			timer.Stop()
			return
		}
		select {
		case beats <- t0:
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(every):
		case <-ctx.Done():
			return
		}
	}
}

// apply handles one notification.
func (c *Cache) apply(channel, payload string) {
	switch channel {
	case accountChannel:
		c.InvalidateAccount(payload)
	case tokenChannel:
		c.FlushTokens()
	}
}
