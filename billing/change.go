package billing

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// OutboxAppWebhook is the outbox kind of outbound app webhooks: one row per
// change feed entry, ordered per account, delivered by the appwebhook
// worker.
const OutboxAppWebhook = "app_webhook"

// AppWebhookEventType is the type of every outbound app webhook.
const AppWebhookEventType = "entitlement.changed"

// ErrCursorExpired means a change feed cursor points before entries that
// were purged (CHANGES_RETENTION): the consumer must resynchronise (read
// every account's entitlement again) and start over without a cursor.
var ErrCursorExpired = errors.New("cursor expired")

// Change is one entry of the change feed: an account's entitlement answer
// in one mode after it changed, as the entitlement endpoint renders it.
type Change struct {
	Seq       int64
	AccountID string
	Livemode  bool
	At        time.Time
	// Entitlement is the rendered answer (the entitlement endpoint's body),
	// a JSON object.
	Entitlement json.RawMessage
}

// Cursor is the change's position in the feed, as clients see it.
func (c Change) Cursor() string { return FormatCursor(c.Seq) }

// WebhookID is the outbound webhook's ID: one per change, the same in every
// redelivery, so a receiver can drop duplicates.
func (c Change) WebhookID() string { return "chg_" + strconv.FormatInt(c.Seq, 10) }

// FormatCursor renders a feed position. Clients treat it as opaque.
func FormatCursor(seq int64) string { return strconv.FormatInt(seq, 10) }

// ParseCursor reads a cursor made by FormatCursor; "" is the start of the
// feed (0).
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 19 {
		return 0, errors.New("cursor too long")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("cursor is not one of this feed's cursors")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("cursor is not one of this feed's cursors")
	}
	return n, nil
}

// AckOutcome is what became of one claimed outbox row's send.
type AckOutcome string

// The outcomes of a send.
const (
	AckSent  AckOutcome = "sent"  // delivered: the row is done
	AckRetry AckOutcome = "retry" // failed: try again after Delay
	AckDead  AckOutcome = "dead"  // failed for good: dead-lettered, visible until retried
)

// OutboxAck is the outcome of one claimed row, recorded in a batch.
type OutboxAck struct {
	ID      int64
	Attempt int // the claim's Attempts: a row claimed again since is left alone
	Outcome AckOutcome
	Delay   time.Duration // AckRetry: wait before the next attempt
	Status  int           // HTTP status of the attempt (0: none)
	Error   string        // short summary, no payload or personal data
}
