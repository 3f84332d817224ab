package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how old a signature VerifyWebhook accepts when given
// a tolerance of 0: Stripe's default, 5 minutes.
const DefaultTolerance = 5 * time.Minute

// Errors of VerifyWebhook. Answer 400 to each: billingd retries, and a
// webhook that was really sent by billingd verifies on a later attempt
// only if the cause was a clock far off.
var (
	ErrNoSignature      = errors.New("billingd webhook: no v1 signature in the Billingd-Signature header")
	ErrBadSignature     = errors.New("billingd webhook: signature does not match the body")
	ErrSignatureExpired = errors.New("billingd webhook: signature timestamp outside the tolerance")
)

// WebhookEvent is one entitlement.changed webhook as billingd sends it.
type WebhookEvent struct {
	ID        string `json:"id"`   // chg_...: the same in every redelivery
	Type      string `json:"type"` // entitlement.changed
	AccountID string `json:"account_id"`
	Livemode  bool   `json:"livemode"`
	// Entitlement is the account's new answer, exactly as GET
	// /v1/accounts/{account_id}/entitlement returns it.
	Entitlement json.RawMessage `json:"entitlement"`
	// Cursor orders an account's webhooks: delivery is at least once and,
	// after a dead-lettered webhook is retried, may repeat an older one;
	// ignore an event whose cursor is not greater (as numbers) than the
	// last one applied for the account.
	Cursor string `json:"cursor"`
}

// VerifyWebhook checks the Billingd-Signature header of a webhook body
// against secret (APP_WEBHOOK_SECRET) and decodes it. header is
// "t=<unix>,v1=<hex>[,v1=<hex>...]" (Stripe's scheme: HMAC-SHA256 of
// "<t>.<body>"); any matching v1 passes. tolerance bounds the timestamp's
// age (0: DefaultTolerance; negative: not checked). Pass the raw body,
// before any JSON decoding.
func VerifyWebhook(payload []byte, header, secret string, tolerance time.Duration) (WebhookEvent, error) {
	return verifyAt(payload, header, secret, tolerance, time.Now())
}

func verifyAt(payload []byte, header, secret string, tolerance time.Duration, now time.Time) (WebhookEvent, error) {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" || len(sigs) == 0 {
		return WebhookEvent{}, ErrNoSignature
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return WebhookEvent{}, ErrNoSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(payload)
	want := mac.Sum(nil)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return WebhookEvent{}, ErrBadSignature
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance > 0 {
		if age := now.Sub(time.Unix(unix, 0)); age > tolerance || age < -tolerance {
			return WebhookEvent{}, ErrSignatureExpired
		}
	}
	var ev WebhookEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return WebhookEvent{}, fmt.Errorf("billingd webhook: decode body: %w", err)
	}
	return ev, nil
}
