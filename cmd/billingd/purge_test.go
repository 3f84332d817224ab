package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
)

func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO stripe_events (event_id, event_type, created, livemode, outcome, received_at)
		VALUES ('evt_old', 'customer.updated', now(), true, 'applied', now() - interval '40 days'),
		       ('evt_mid', 'customer.updated', now(), true, 'applied', now() - interval '10 days'),
		       ('evt_new', 'customer.updated', now(), true, 'applied', now())`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		usage   bool   // a usage error (exit 2)
		errHas  string // other error
		out     string
		leftEvt int
	}{
		{"ErrExtraArgument", []string{"purge", "now"}, nil, true, "", "", 3},
		{"ErrRetentionBelowThreeDays", []string{"purge"}, map[string]string{"WEBHOOK_EVENT_RETENTION_DAYS": "2"}, false, "WEBHOOK_EVENT_RETENTION_DAYS", "", 3},
		{"DefaultThirtyDays", []string{"purge"}, nil, false, "", "purged 1 stripe events", 2},
		{"FiveDays", []string{"purge"}, map[string]string{"WEBHOOK_EVENT_RETENTION_DAYS": "5"}, false, "", "purged 1 stripe events", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": url}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, func(k string) string { return env[k] }, &stdout, &stderr)
			var ue usageError
			switch {
			case tt.usage:
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
			case tt.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want one naming %s", err, tt.errHas)
				}
			case err != nil:
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.out)
			}
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM stripe_events`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != tt.leftEvt {
				t.Errorf("%d events left, want %d", n, tt.leftEvt)
			}
		})
	}
}
