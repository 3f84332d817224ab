package privacy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/privacy"
)

// The inventory describes the schema after every migration, exactly.
func TestInventoryMatchesSchema(t *testing.T) {
	t.Parallel()
	st := pgtest.Open(t)
	live, err := st.SchemaColumns(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(live) == 0 {
		t.Fatal("no tables in the migrated schema")
	}
	if _, ok := live["schema_migrations"]; ok {
		t.Error("schema_migrations should be left out of the live schema")
	}
	for _, p := range privacy.Check(privacy.Tables(), live) {
		t.Error(p)
	}
}

// A schema change the inventory does not describe is reported: proof that
// the check above would catch a migration that slipped a column in.
func TestInventoryCatchesSchemaChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ddl   string
		wants []string // substrings of the reported problems
	}{
		{
			name:  "AddedColumn",
			ddl:   `ALTER TABLE customers ADD COLUMN nickname text`,
			wants: []string{"column customers.nickname is in the schema but not in the inventory"},
		},
		{
			name: "RenamedColumn",
			ddl:  `ALTER TABLE subscriptions RENAME COLUMN status TO state`,
			wants: []string{
				"column subscriptions.state is in the schema but not in the inventory",
				"column subscriptions.status is in the inventory but not in the schema",
			},
		},
		{
			name:  "DroppedColumn",
			ddl:   `ALTER TABLE mrr_movements DROP COLUMN customer_mrr_before`,
			wants: []string{"column mrr_movements.customer_mrr_before is in the inventory but not in the schema"},
		},
		{
			name:  "AddedTable",
			ddl:   `CREATE TABLE contacts (id bigserial PRIMARY KEY, email text)`,
			wants: []string{"table contacts is in the schema but not in the inventory"},
		},
		{
			name:  "DroppedTable",
			ddl:   `DROP TABLE instance_keys`,
			wants: []string{"table instance_keys is in the inventory but not in the schema"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t)
			ctx := context.Background()
			// Only what the scratch change adds counts, so this proof
			// holds whatever TestInventoryMatchesSchema finds.
			before, err := st.SchemaColumns(ctx)
			if err != nil {
				t.Fatal(err)
			}
			known := map[string]bool{}
			for _, p := range privacy.Check(privacy.Tables(), before) {
				known[p] = true
			}
			if _, err := st.DB().ExecContext(ctx, tt.ddl); err != nil {
				t.Fatalf("scratch migration: %v", err)
			}
			live, err := st.SchemaColumns(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range privacy.Check(privacy.Tables(), live) {
				if !known[p] {
					got = append(got, p)
				}
			}
			if len(got) != len(tt.wants) {
				t.Errorf("got %d problems, want %d: %q", len(got), len(tt.wants), got)
			}
			for _, want := range tt.wants {
				if !containsLine(got, want) {
					t.Errorf("problems %q lack %q", got, want)
				}
			}
		})
	}
}

// Malformed inventory entries are reported without a database.
func TestCheckRejectsBadEntries(t *testing.T) {
	t.Parallel()
	live := map[string][]string{"t": {"a", "b"}}
	tests := []struct {
		name string
		inv  []privacy.Table
		want string
	}{
		{
			name: "UnknownCategory",
			inv: []privacy.Table{{Name: "t", Purpose: "p", Retention: "r", OnErasure: "e", Export: "s", Columns: []privacy.Column{
				{Name: "a", Category: "personal", Purpose: "p"}, {Name: "b", Category: privacy.Operational, Purpose: "p"}}}},
			want: `column t.a has category "personal"`,
		},
		{
			name: "MissingPurpose",
			inv: []privacy.Table{{Name: "t", Purpose: "p", Retention: "r", OnErasure: "e", Export: "s", Columns: []privacy.Column{
				{Name: "a", Category: privacy.Identifier}, {Name: "b", Category: privacy.Operational, Purpose: "p"}}}},
			want: "column t.a needs a purpose",
		},
		{
			name: "MissingRetention",
			inv: []privacy.Table{{Name: "t", Purpose: "p", OnErasure: "e", Export: "s", Columns: []privacy.Column{
				{Name: "a", Category: privacy.Identifier, Purpose: "p"}, {Name: "b", Category: privacy.Operational, Purpose: "p"}}}},
			want: "table t needs a purpose, a retention and an erasure rule",
		},
		{
			name: "MissingExportReason",
			inv: []privacy.Table{{Name: "t", Purpose: "p", Retention: "r", OnErasure: "e", Export: "-", Columns: []privacy.Column{
				{Name: "a", Category: privacy.Identifier, Purpose: "p"}, {Name: "b", Category: privacy.Operational, Purpose: "p"}}}},
			want: "table t needs an export section",
		},
		{
			name: "DuplicateColumn",
			inv: []privacy.Table{{Name: "t", Purpose: "p", Retention: "r", OnErasure: "e", Export: "s", Columns: []privacy.Column{
				{Name: "a", Category: privacy.Identifier, Purpose: "p"}, {Name: "a", Category: privacy.Identifier, Purpose: "p"},
				{Name: "b", Category: privacy.Operational, Purpose: "p"}}}},
			want: "column t.a is listed twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := privacy.Check(tt.inv, live)
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Errorf("got %q, want exactly one problem containing %q", got, tt.want)
			}
		})
	}
}

// Processors lists Stripe as receiving only the fields of the sessions the
// app asks for, and ProfitWell only the
// contract's fields, with aliases in every identifying one.
func TestProcessors(t *testing.T) {
	t.Parallel()
	byName := map[string]privacy.Processor{}
	for _, p := range privacy.Processors() {
		byName[p.Name] = p
	}
	t.Run("StripeReceivesOnlySessionFields", func(t *testing.T) {
		p, ok := byName["Stripe"]
		if !ok {
			t.Fatal("Stripe is not listed")
		}
		// Only the checkout and portal sessions the app asks for send
		// anything; the e-mail is the one personal field, and only passed on.
		for _, f := range p.Receives {
			if strings.Contains(f.Name, "email") && !strings.Contains(f.Content, "never stored") {
				t.Errorf("field %q: %q must say it is never stored", f.Name, f.Content)
			}
			for _, personal := range []string{"name", "phone", "address", "tax"} {
				if strings.Contains(f.Name, personal) {
					t.Errorf("Stripe receives %q from billingd", f.Name)
				}
			}
		}
	})
	t.Run("ProfitWellContractFieldsOnly", func(t *testing.T) {
		contract := map[string]bool{"user_alias": true, "subscription_alias": true, "email": true, "plan_id": true,
			"plan_interval": true, "plan_currency": true, "status": true, "value": true, "effective_date": true, "churn_type": true}
		p, ok := byName["ProfitWell"]
		if !ok || len(p.Receives) == 0 {
			t.Fatalf("ProfitWell = %+v, want listed with its fields", p)
		}
		for _, f := range p.Receives {
			if !contract[f.Name] {
				t.Errorf("field %q is not in the ProfitWell contract", f.Name)
			}
			if f.Name == "email" && !strings.Contains(f.Content, "alias") {
				t.Errorf("email field must carry the alias, inventory says %q", f.Content)
			}
		}
	})
}

// Tables hands out copies: a caller cannot change the inventory.
func TestTablesIsACopy(t *testing.T) {
	t.Parallel()
	a := privacy.Tables()
	a[0].Columns[0].Category = "changed"
	if b := privacy.Tables(); b[0].Columns[0].Category == "changed" {
		t.Error("Tables returned the inventory itself, not a copy")
	}
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
