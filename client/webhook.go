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

// WebhookEvent is one outbound webhook from billingd: an account's
// entitlement answer changed. It holds no personal data.
type WebhookEvent struct {
	ID          string      `json:"id"`   // chg_…: deliveries of one change share it (at least once)
	Type        string      `json:"type"` // entitlement.changed
	AccountID   string      `json:"account_id"`
	Livemode    bool        `json:"livemode"`
	Entitlement Entitlement `json:"entitlement"`
	Cursor      string      `json:"cursor"` // the change feed's cursor of this change
}

// DefaultWebhookTolerance is how far a signature's timestamp may be from
// now when VerifyWebhook is given no tolerance.
const DefaultWebhookTolerance = 5 * time.Minute

// Errors of VerifyWebhook.
var (
	ErrSignatureMissing  = errors.New("billingd webhook: Billingd-Signature header missing or malformed")
	ErrSignatureMismatch = errors.New("billingd webhook: no signature matches the secret")
	ErrSignatureExpired  = errors.New("billingd webhook: signature timestamp outside the tolerance")
)

// VerifyWebhook checks the Billingd-Signature header of an outbound
// webhook (t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>,
// Stripe's scheme) and decodes the payload. Pass the raw request body,
// unmodified. tolerance 0 means DefaultWebhookTolerance. Several v1
// signatures may be present (during a secret rotation): one match is
// enough.
func VerifyWebhook(payload []byte, header, secret string, tolerance time.Duration) (*WebhookEvent, error) {
	return verifyWebhookAt(payload, header, secret, tolerance, time.Now())
}

func verifyWebhookAt(payload []byte, header, secret string, tolerance time.Duration, now time.Time) (*WebhookEvent, error) {
	if tolerance <= 0 {
		tolerance = DefaultWebhookTolerance
	}
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
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return nil, ErrSignatureMissing
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(payload)
	want := mac.Sum(nil)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return nil, ErrSignatureMismatch
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return nil, ErrSignatureExpired
	}
	var ev WebhookEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("billingd webhook: decode payload: %w", err)
	}
	return &ev, nil
}
