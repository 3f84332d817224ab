package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

func customerEventPayload(eventID, cus, acct string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"customer.updated","created":%d,"livemode":true,
		"data":{"object":{"id":%q,"object":"customer","livemode":true,"metadata":{"account_id":%q}}}}`, eventID, time.Now().Unix(), cus, acct))
}

func checkoutEventPayload(eventID, cus, ref string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"object":"event","type":"checkout.session.completed","created":%d,"livemode":true,
		"data":{"object":{"id":"cs_1","object":"checkout.session","customer":%q,"livemode":true,"client_reference_id":%q}}}`,
		eventID, time.Now().Unix(), cus, ref))
}

// apiCall sends an app API request to a running billingd and decodes the
// JSON answer into out (when not nil).
func apiCall(t *testing.T, method, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// TestServeRefusesChangedErasureKey is the changed-key scenario with the
// real binary: serve started without ERASURE_KEY (one is generated), an account
// is erased, and serve is restarted with ERASURE_KEY set. It must refuse to
// start with one line saying what to do, and `billingd keys status` shows
// which key is missing. Restarted as that line says
// (ERASURE_KEYS=<new key>,generated), it serves and the erasure holds:
// the erased customer's events are tombstoned and hints for the account
// refused. Checkout references are signed by default with a generated
// key: one from POST .../link-reference links, and LINK_REQUIRE_SIGNATURE=false
// is warned about at start.
func TestServeRefusesChangedErasureKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	addr := freeAddr(t)
	base := []string{"DATABASE_URL=" + url, "LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + webhookstest.Secret}
	tok, hash, err := billing.NewToken(billing.ScopeApp)
	if err != nil {
		t.Fatal(err)
	}

	p := startBillingd(t, base, "serve")
	waitReady(t, p, addr, 60*time.Second)
	st, err := postgres.Open(ctx, url, slog.New(slog.DiscardHandler), postgres.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.TokenCreate(ctx, "backend", billing.ScopeApp, hash); err != nil {
		t.Fatal(err)
	}
	srv := "http://" + addr
	if r := webhookstest.Post(t, srv, webhookstest.Secret, customerEventPayload("evt_key1", "cus_Keyed1", "acct_keyed")); r.Outcome() != "applied" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if code := apiCall(t, http.MethodDelete, srv+"/v1/accounts/acct_keyed", tok, "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE answered %d", code)
	}
	stopWithSignal(t, p, syscall.SIGTERM)

	const newKey = "a-new-erasure-key-0123456789"
	t.Run("RefusedWithOneLine", func(t *testing.T) {
		cmd := exec.Command(billingdBinary(t), "serve")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, append(base, "ERASURE_KEY="+newKey)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("serve with a changed erasure key: %v, want exit 1\n%s", err, stderr.String())
		}
		var last string
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			if strings.HasPrefix(l, "billingd: ") {
				if last != "" {
					t.Fatalf("more than one error line:\n%s", stderr.String())
				}
				last = l
			}
		}
		if !strings.Contains(last, "ERASURE_KEYS=<new key>,generated") || strings.Contains(last, newKey) {
			t.Fatalf("error line %q does not say how to fix it (or shows the key)", last)
		}
		out, err := exec.Command("env", append(append([]string{"-i", "PATH=" + os.Getenv("PATH")}, base...),
			"ERASURE_KEY="+newKey, billingdBinary(t), "keys", "status")...).Output()
		if err != nil {
			t.Fatalf("keys status: %v", err)
		}
		var generated []byte
		if err := st.DB().Get(&generated, `SELECT key FROM instance_keys WHERE name = 'erasure_hmac'`); err != nil {
			t.Fatal(err)
		}
		want := []*regexp.Regexp{
			regexp.MustCompile(`(?m)^erasure +` + billing.KeyFingerprint([]byte(newKey)) + ` +yes \(writes\) +no `),
			regexp.MustCompile(`(?m)^erasure +` + billing.KeyFingerprint(generated) + ` +NO +yes .* forever$`),
		}
		for _, re := range want {
			if !re.Match(out) {
				t.Errorf("keys status does not match %s:\n%s", re, out)
			}
		}
		t.Logf("refused with: %s\nkeys status:\n%s", last, out)
	})

	t.Run("FixedAsTold", func(t *testing.T) {
		env := append(append([]string{}, base...), "ERASURE_KEYS="+newKey+",generated", "LINK_REQUIRE_SIGNATURE=false")
		p := startBillingd(t, env, "serve")
		waitReady(t, p, addr, 60*time.Second)
		if !strings.Contains(p.stderr.String(), "LINK_REQUIRE_SIGNATURE=false") {
			t.Errorf("no warning about LINK_REQUIRE_SIGNATURE=false at start:\n%s", p.stderr.String())
		}
		if r := webhookstest.Post(t, srv, webhookstest.Secret, customerEventPayload("evt_key2", "cus_Keyed1", "acct_keyed")); r.Outcome() != "tombstoned" {
			t.Fatalf("erased customer's event after the key change: %s", r.Body)
		}
		if r := webhookstest.Post(t, srv, webhookstest.Secret, customerEventPayload("evt_key3", "cus_Keyed2", "acct_keyed")); r.Outcome() != "link_erased" {
			t.Fatalf("hint for the erased account after the key change: %s", r.Body)
		}
		var ref struct {
			ClientReferenceID string `json:"client_reference_id"`
		}
		if code := apiCall(t, http.MethodPost, srv+"/v1/accounts/acct_new/link-reference", tok, "", &ref); code != http.StatusOK {
			t.Fatalf("link-reference answered %d", code)
		}
		if r := webhookstest.Post(t, srv, webhookstest.Secret, checkoutEventPayload("evt_key4", "cus_Keyed3", ref.ClientReferenceID)); r.Outcome() != "applied" {
			t.Fatalf("checkout with a reference: %s", r.Body)
		}
		var billingBody struct {
			Customers []struct {
				ID string `json:"stripe_customer_id"`
			} `json:"customers"`
		}
		if code := apiCall(t, http.MethodGet, srv+"/v1/accounts/acct_new/billing", tok, "", &billingBody); code != http.StatusOK ||
			len(billingBody.Customers) != 1 || billingBody.Customers[0].ID != "cus_Keyed3" {
			t.Fatalf("signed reference did not link: %d %+v", code, billingBody)
		}
		stopWithSignal(t, p, syscall.SIGTERM)
	})
}
