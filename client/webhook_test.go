package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/appwebhook"
	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/client"
)

// VerifyWebhook accepts exactly what billingd's worker signs (appwebhook.Sign
// over appwebhook.Body) and refuses everything else.
func TestVerifyWebhook(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef0123456789abcdef-app"
	body := appwebhook.Body(billing.Change{Seq: 42, AccountID: "acct_1", Livemode: true,
		Entitlement: []byte(`{"entitled":true,"status":"active","plan":"price_1","valid_until":null,"livemode":true}`)})
	tampered := []byte(strings.Replace(string(body), `"entitled":true`, `"entitled":false`, 1))
	now := time.Now()
	good := appwebhook.Sign([]byte(secret), now, body)
	tests := []struct {
		name    string
		body    []byte
		header  string
		secret  string
		tol     time.Duration
		wantErr error
	}{
		{"OK", body, good, secret, 0, nil},
		{"OKSecondSignature", body, good + ",v1=" + "00ff", secret, 0, nil},
		{"OKRotatedSecret", body, appwebhook.Sign([]byte("old-secret-0123456789abcdef0123456"), now, body) + "," + good[len("t=0000000000,"):], secret, 0, nil},
		{"ErrNoHeader", body, "", secret, 0, client.ErrNoSignature},
		{"ErrNoV1", body, "t=1", secret, 0, client.ErrNoSignature},
		{"ErrWrongSecret", body, good, secret + "x", 0, client.ErrBadSignature},
		{"ErrTamperedBody", tampered, good, secret, 0, client.ErrBadSignature},
		{"ErrTooOld", body, appwebhook.Sign([]byte(secret), now.Add(-10*time.Minute), body), secret, 0, client.ErrSignatureExpired},
		{"OKOldWithoutTolerance", body, appwebhook.Sign([]byte(secret), now.Add(-10*time.Minute), body), secret, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := client.VerifyWebhook(tt.body, tt.header, tt.secret, tt.tol)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if ev.ID != "chg_42" || ev.Type != "entitlement.changed" || ev.AccountID != "acct_1" || !ev.Livemode || ev.Cursor != "42" ||
				string(ev.Entitlement) != `{"entitled":true,"status":"active","plan":"price_1","valid_until":null,"livemode":true}` {
				t.Errorf("decoded %+v", ev)
			}
		})
	}
}
