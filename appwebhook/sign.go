package appwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/billingd/billingd/billing"
)

// SignatureHeader is the header that carries the signature.
const SignatureHeader = "Billingd-Signature"

// MinSecretLength is the shortest APP_WEBHOOK_SECRET accepted.
const MinSecretLength = 32

// Sign returns the Billingd-Signature value for body sent at t: Stripe's
// scheme, "t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// event is the outbound payload. Field order is the documented one.
type event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	AccountID   string          `json:"account_id"`
	Livemode    bool            `json:"livemode"`
	Entitlement json.RawMessage `json:"entitlement"`
	Cursor      string          `json:"cursor"`
}

// Body is the JSON body POSTed for c: the same bytes in every redelivery.
func Body(c billing.Change) []byte {
	b, _ := json.Marshal(event{ID: c.WebhookID(), Type: billing.AppWebhookEventType, AccountID: c.AccountID,
		Livemode: c.Livemode, Entitlement: c.Entitlement, Cursor: c.Cursor()})
	return b
}
