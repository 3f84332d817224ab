package entcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/billingd/billingd/billing"
)

// Answer is an entitlement ready to send: computed, encoded and tagged
// once per change, so a cache hit only writes bytes.
type Answer struct {
	Entitlement billing.Entitlement
	// Body is the JSON response body, newline-terminated.
	Body []byte
	// ETag is the strong entity tag of Body, quoted.
	ETag string
	// ETagHeader is []string{ETag}, for assigning to an http.Header
	// without an allocation per request. Read only.
	ETagHeader []string

	recheckAt time.Time
	bucket    uint16 // billing.CacheBucket of the account, for feed invalidations
}

// entitlementJSON is the wire shape of GET /v1/accounts/{id}/entitlement.
type entitlementJSON struct {
	Entitled   bool    `json:"entitled"`
	Status     string  `json:"status"`
	Plan       *string `json:"plan"`
	ValidUntil *string `json:"valid_until"`
	Livemode   bool    `json:"livemode"`
}

// render encodes e. It cannot fail: every field is a plain value.
func render(e billing.Entitlement) *Answer {
	j := entitlementJSON{Entitled: e.Entitled, Status: string(e.Status), Livemode: e.Livemode}
	if e.Plan != "" {
		j.Plan = &e.Plan
	}
	if e.ValidUntil != nil {
		s := e.ValidUntil.UTC().Format(time.RFC3339)
		j.ValidUntil = &s
	}
	body, _ := json.Marshal(j)
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	tag := `"` + hex.EncodeToString(sum[:12]) + `"`
	return &Answer{Entitlement: e, Body: body, ETag: tag, ETagHeader: []string{tag}, recheckAt: e.RecheckAt}
}
