package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/privacy"
)

// The inventory command needs no database: with an unreachable
// DATABASE_URL it still prints the whole inventory.
func TestPrivacyInventoryCommand(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://nobody@127.0.0.1:1/none?sslmode=disable"
		}
		return ""
	}
	tables := privacy.Tables()
	t.Run("Table", func(t *testing.T) {
		t.Parallel()
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"privacy", "inventory"}, getenv, &out, &errb); err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			if !strings.Contains(out.String(), tb.Name+": ") {
				t.Errorf("table output lacks table %s", tb.Name)
			}
		}
		for _, want := range []string{"stripe_customer_id", "identifier", "billing_fact", "operational", "Stripe:", "client_reference_id", "customer_email", "ProfitWell:", "user_alias"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("table output lacks %q", want)
			}
		}
	})
	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"privacy", "inventory", "--format", "json"}, {"privacy", "inventory", "--format=json"}} {
			var out, errb bytes.Buffer
			if err := run(context.Background(), args, getenv, &out, &errb); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			var doc inventoryDoc
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("%v: not JSON: %v", args, err)
			}
			if len(doc.Tables) != len(tables) || len(doc.Processors) != len(privacy.Processors()) {
				t.Errorf("%v: %d tables, %d processors; want %d, %d", args, len(doc.Tables), len(doc.Processors), len(tables), len(privacy.Processors()))
			}
			if doc.Tables[0].Columns[0].Category == "" {
				t.Errorf("%v: first column has no category", args)
			}
		}
	})
	t.Run("BadUsage", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{"privacy"},
			{"privacy", "export"},
			{"privacy", "inventory", "--format", "yaml"},
			{"privacy", "inventory", "--colour"},
			{"privacy", "inventory", "extra"},
		} {
			var out, errb bytes.Buffer
			err := run(context.Background(), args, getenv, &out, &errb)
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("%v: err = %v, want a usage error", args, err)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("%v: error %q is not one line", args, err)
			}
		}
	})
}
