package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/billingd/billingd/webhooks/webhookstest"
)

// assertServes checks that the serve at addr is ready and still reaches its
// database: a signed event is committed (200), not 503.
func assertServes(t *testing.T, addr, secret, evt string) {
	t.Helper()
	status, body := httpGet(t, "http://"+addr+"/readyz", "")
	if status != http.StatusOK {
		t.Fatalf("readyz %d %s", status, body)
	}
	payload := []byte(`{"id":"` + evt + `","object":"event","type":"ping","created":1700000000,"livemode":false,"data":{"object":{}}}`)
	if r := webhookstest.Post(t, "http://"+addr, secret, payload); r.Status != http.StatusOK {
		t.Fatalf("webhook %d %s", r.Status, r.Body)
	}
}

// A second serve on the same data directory uses the running embedded
// PostgreSQL and never stops it under the first, whichever ends first;
// the last one to end stops it.
func TestSecondServeOnOneDataDirectory(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(worldDir(t), ".billingd")
	pgData := filepath.Join(dataDir, "pg")
	const secret = "whsec_second_serve_0123456789"
	start := func() (*proc, string) {
		addr := freeAddr(t)
		p := startBillingd(t, []string{"BILLINGD_DATA_DIR=" + dataDir, "LISTEN_ADDR=" + addr, "STRIPE_WEBHOOK_SECRETS=" + secret})
		waitReady(t, p, addr, 90*time.Second)
		return p, addr
	}

	first, firstAddr := start()
	second, secondAddr := start()
	assertServes(t, secondAddr, secret, "evt_second_1")
	// The second ends first: the first keeps its database.
	stopWithSignal(t, second, syscall.SIGTERM)
	assertServes(t, firstAddr, secret, "evt_first_1")
	if strings.Contains(first.stderr.String(), "database unreachable") {
		t.Fatalf("first serve lost its database:\n%s", first.stderr.String())
	}

	// The other order: a new serve joins, the first (which started the
	// server) ends, the newcomer keeps its database.
	third, thirdAddr := start()
	stopWithSignal(t, first, os.Interrupt)
	assertServes(t, thirdAddr, secret, "evt_third_1")

	// The last one to end stops PostgreSQL.
	stopWithSignal(t, third, syscall.SIGTERM)
	assertPostgresStopped(t, pgData)
}
