package main

import (
	"context"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
)

// TestHandlerSmoke runs the handler stage tiny, so it keeps working: every
// stage answers every request (each call checks its status) and the
// figures are whole.
func TestHandlerSmoke(t *testing.T) {
	t.Parallel()
	res, err := measureHandler(context.Background(), handlerConfig{DatabaseURL: pgtest.URL(t), Accounts: 50, Concurrency: 4, Requests: 800})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].n != 800 || res[1].n != 200 || res[2].n != 800 || res[0].p99 < res[0].p50 || res[0].rate() <= 0 {
		t.Fatalf("results: %+v", res)
	}
}
