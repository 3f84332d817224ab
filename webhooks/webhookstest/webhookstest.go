// Package webhookstest helps tests across billingd send signed Stripe
// webhook events: signing, the shared fixtures in webhooks/testdata/events
// (realistic payloads full of fake personal data) and the list of those
// personal strings (webhooks/testdata/pii.txt), and replaying every fixture
// into a handler or a running server.
package webhookstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Secret is a webhook signing secret for tests.
const Secret = "whsec_test_billingd_fixture_secret"

// Sign returns a Stripe-Signature header for payload signed now with secret.
func Sign(secret string, payload []byte) string { return SignAt(secret, payload, time.Now()) }

// SignAt returns a Stripe-Signature header for payload signed at t.
func SignAt(secret string, payload []byte, t time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: t}).Header
}

// Fixture is one stored Stripe event.
type Fixture struct {
	Name    string // file name without .json, e.g. v2023_03_customer.subscription.created
	ID      string // the event ID
	Type    string // the event type
	Payload []byte
}

// Dir is webhooks/testdata in the source tree.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("webhookstest: cannot locate source")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// Fixtures loads every fixture in name order (which is a plausible
// delivery order: each customer's lifecycle in sequence).
func Fixtures(t testing.TB) []Fixture {
	t.Helper()
	dir := filepath.Join(Dir(), "events")
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("webhookstest: no fixtures in %s: %v", dir, err)
	}
	sort.Strings(names)
	out := make([]Fixture, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatalf("webhookstest: %v", err)
		}
		var head struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatalf("webhookstest: %s: %v", n, err)
		}
		out = append(out, Fixture{Name: strings.TrimSuffix(filepath.Base(n), ".json"), ID: head.ID, Type: head.Type, Payload: b})
	}
	return out
}

// FixtureNamed loads one fixture by name (without .json).
func FixtureNamed(t testing.TB, name string) Fixture {
	t.Helper()
	for _, f := range Fixtures(t) {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("webhookstest: no fixture %q", name)
	return Fixture{}
}

// PII returns the fake personal strings planted in the fixtures; none of
// them may be stored or logged.
func PII(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(Dir(), "pii.txt"))
	if err != nil {
		t.Fatalf("webhookstest: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("webhookstest: %v", err)
	}
	return out
}

// FindPII returns the planted personal strings that occur in text
// (case-insensitive).
func FindPII(t testing.TB, text string) []string {
	t.Helper()
	low := strings.ToLower(text)
	var found []string
	for _, p := range PII(t) {
		if strings.Contains(low, strings.ToLower(p)) {
			found = append(found, p)
		}
	}
	return found
}

// Response is what the webhook endpoint answered.
type Response struct {
	Status int
	Body   string
}

// Outcome is the "outcome" of a 2xx answer, or "".
func (r Response) Outcome() string {
	var b struct {
		Outcome string `json:"outcome"`
	}
	_ = json.Unmarshal([]byte(r.Body), &b)
	return b.Outcome
}

// Post sends payload, signed now with secret, to target: an http.Handler
// (served in-process at /webhooks/stripe) or a base URL string such as
// "http://127.0.0.1:8080" (POST base+"/webhooks/stripe").
func Post(t testing.TB, target any, secret string, payload []byte) Response {
	t.Helper()
	return PostHeader(t, target, Sign(secret, payload), payload)
}

// PostHeader is Post with an explicit Stripe-Signature header ("" for none).
func PostHeader(t testing.TB, target any, sigHeader string, payload []byte) Response {
	t.Helper()
	switch tg := target.(type) {
	case http.Handler:
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(payload))
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if sigHeader != "" {
			req.Header.Set("Stripe-Signature", sigHeader)
		}
		rec := httptest.NewRecorder()
		tg.ServeHTTP(rec, req)
		return Response{Status: rec.Code, Body: rec.Body.String()}
	case string:
		req, err := http.NewRequest(http.MethodPost, strings.TrimRight(tg, "/")+"/webhooks/stripe", bytes.NewReader(payload))
		if err != nil {
			t.Fatalf("webhookstest: %v", err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if sigHeader != "" {
			req.Header.Set("Stripe-Signature", sigHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("webhookstest: post: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return Response{Status: resp.StatusCode, Body: string(b)}
	}
	t.Fatalf("webhookstest: target must be an http.Handler or a base URL string, got %T", target)
	return Response{}
}

// ReplayFixtures posts every fixture, in name order, signed with secret, to
// target (see Post) and fails the test unless each is answered 200. It
// returns the answers by fixture name.
func ReplayFixtures(t testing.TB, target any, secret string) map[string]Response {
	t.Helper()
	out := map[string]Response{}
	for _, f := range Fixtures(t) {
		r := Post(t, target, secret, f.Payload)
		if r.Status != http.StatusOK {
			t.Fatalf("webhookstest: fixture %s: status %d: %s", f.Name, r.Status, r.Body)
		}
		out[f.Name] = r
	}
	return out
}

// Rewrite returns payload with every occurrence of each old string replaced
// by its new one, e.g. to give a fixture fresh event, customer and
// subscription IDs: Rewrite(p, "evt_1PiiSubCreated", "evt_1PiiSubCreatedX7").
func Rewrite(payload []byte, oldNew ...string) []byte {
	if len(oldNew)%2 != 0 {
		panic(fmt.Sprintf("webhookstest: Rewrite needs pairs, got %d strings", len(oldNew)))
	}
	return []byte(strings.NewReplacer(oldNew...).Replace(string(payload)))
}
