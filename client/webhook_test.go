package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"
)

func sign(secret string, t int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", t, body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifyWebhook(t *testing.T) {
	const secret = "bd_whsec_0123456789abcdef0123456789abcdef"
	body := `{"id":"chg_1","type":"entitlement.changed","account_id":"acct_1","livemode":true,` +
		`"entitlement":{"entitled":true,"status":"active","plan":"price_1","valid_until":null,"livemode":true},"cursor":"c1"}`
	now := time.Unix(1_800_000_000, 0)
	ts := now.Unix()
	good := sign(secret, ts, body)
	cases := []struct {
		name   string
		body   string
		header string
		want   error
	}{
		{"valid", body, fmt.Sprintf("t=%d,v1=%s", ts, good), nil},
		{"one of two signatures (rotation)", body, fmt.Sprintf("t=%d,v1=%s,v1=%s", ts, sign("old-secret-0123456789", ts, body), good), nil},
		{"wrong secret", body, fmt.Sprintf("t=%d,v1=%s", ts, sign("another-secret-0123456789", ts, body)), ErrSignatureMismatch},
		{"body changed", body + " ", fmt.Sprintf("t=%d,v1=%s", ts, good), ErrSignatureMismatch},
		{"timestamp changed", body, fmt.Sprintf("t=%d,v1=%s", ts+1, good), ErrSignatureMismatch},
		{"too old", body, fmt.Sprintf("t=%d,v1=%s", ts-600, sign(secret, ts-600, body)), ErrSignatureExpired},
		{"too far ahead", body, fmt.Sprintf("t=%d,v1=%s", ts+600, sign(secret, ts+600, body)), ErrSignatureExpired},
		{"no header", body, "", ErrSignatureMissing},
		{"no v1", body, fmt.Sprintf("t=%d,v0=%s", ts, good), ErrSignatureMissing},
		{"short v1", body, fmt.Sprintf("t=%d,v1=abcd", ts), ErrSignatureMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, err := verifyWebhookAt([]byte(c.body), c.header, secret, 0, now)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.want == nil && (ev.ID != "chg_1" || ev.Type != "entitlement.changed" || ev.AccountID != "acct_1" ||
				!ev.Entitlement.Entitled || *ev.Entitlement.Plan != "price_1" || ev.Cursor != "c1") {
				t.Fatalf("decoded %+v", ev)
			}
		})
	}
}
