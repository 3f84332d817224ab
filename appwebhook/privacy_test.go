package appwebhook_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/webhooks"
	"github.com/billingd/billingd/webhooks/webhookstest"
)

// The webhook fixtures, full of planted personal data, replayed through the
// real webhook handler: no planted string reaches a feed entry or an
// outbound webhook body.
func TestNoPersonalDataInFeedOrWebhooks(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	ctx := context.Background()
	h, err := webhooks.NewHandler(webhooks.Config{Secrets: []string{webhookstest.Secret}, Links: webhookstest.Links(),
		Store: st, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	webhookstest.ReplayFixtures(t, h, webhookstest.Secret)
	for {
		res, err := st.ProduceChanges(ctx, producer)
		if err != nil {
			t.Fatal(err)
		}
		if !res.More {
			break
		}
	}
	feed, err := st.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, nil)
	run(t, st, worker(st, a.srv.URL))
	var text strings.Builder
	for _, c := range feed {
		text.WriteString(c.AccountID + " " + string(c.Entitlement) + "\n")
	}
	got := a.deliveries()
	for _, r := range got {
		text.Write(r.body)
		text.WriteString("\n")
	}
	if len(feed) == 0 || len(got) < len(feed) || !strings.Contains(text.String(), "acct_kenji_2") {
		t.Fatalf("the fixtures made %d entries and %d webhooks; is the feed running?\n%s", len(feed), len(got), text.String())
	}
	if found := webhookstest.FindPII(t, text.String()); len(found) > 0 {
		t.Errorf("personal data in the feed or webhooks: %q", found)
	}
}
