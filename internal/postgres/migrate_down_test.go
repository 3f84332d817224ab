package postgres_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/billingd/billingd/migrations"
)

type keyRow struct {
	Name string `db:"name"`
	Key  []byte `db:"key"`
}

func instanceKeys(t *testing.T, st *postgres.Store) []keyRow {
	t.Helper()
	var rows []keyRow
	if err := st.DB().Select(&rows, `SELECT name, key FROM instance_keys ORDER BY name`); err != nil {
		t.Fatalf("read instance_keys: %v", err)
	}
	return rows
}

func tableExists(t *testing.T, st *postgres.Store, name string) bool {
	t.Helper()
	var ok bool
	if err := st.DB().Get(&ok, `SELECT to_regclass($1) IS NOT NULL`, name); err != nil {
		t.Fatal(err)
	}
	return ok
}

// migrate down never drops the instance keys, whatever N: too large an N
// changes nothing, and rolling back everything keeps the table and its keys,
// so the schema applied again hashes with the same erasure key.
func TestMigrateDownKeepsInstanceKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.URL(t)
	st, _ := openLogged(t, url)
	erasureBefore, err := st.SubjectHMAC(ctx, "acct_keep")
	if err != nil {
		t.Fatal(err)
	}
	// A second key, as other features keep theirs there.
	if _, err := st.DB().Exec(`INSERT INTO instance_keys (name, key) VALUES ('test_other', '\x00112233445566778899aabbccddeeff')`); err != nil {
		t.Fatal(err)
	}
	keys := instanceKeys(t, st)
	if len(keys) < 2 {
		t.Fatalf("instance_keys holds %d rows, want at least the erasure key and test_other", len(keys))
	}
	all, err := postgres.MigrationDirectives(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	applied := len(all)
	head := schemaVersion(t, st)

	t.Run("TooManyChangesNothing", func(t *testing.T) {
		err := st.MigrateDown(100)
		if err == nil || !strings.Contains(err.Error(), "only "+itoa(uint(applied))+" migrations are applied") {
			t.Fatalf("MigrateDown(100) = %v", err)
		}
		if _, err := st.PlanDown(ctx, 100); err == nil {
			t.Fatal("PlanDown(100) succeeded")
		}
		if v := schemaVersion(t, st); v != head || !tableExists(t, st, "customers") {
			t.Fatalf("after a refused rollback: version %d, customers there: %v", v, tableExists(t, st, "customers"))
		}
	})

	t.Run("AllOfThem", func(t *testing.T) {
		plan, err := st.PlanDown(ctx, applied)
		if err != nil {
			t.Fatal(err)
		}
		if plan.From != head || plan.To != 0 || len(plan.Steps) != applied {
			t.Fatalf("plan from %d to %d in %d steps", plan.From, plan.To, len(plan.Steps))
		}
		for _, s := range plan.Steps {
			for _, d := range s.Drops {
				if d.Table == "instance_keys" && d.Column == "" {
					t.Fatalf("plan drops instance_keys in %d", s.Version)
				}
			}
		}
		if err := st.MigrateDown(applied); err != nil {
			t.Fatal(err)
		}
		if v, _, _ := st.SchemaVersion(); v != 0 || tableExists(t, st, "customers") {
			t.Fatalf("after rolling back everything: version %d, customers there: %v", v, tableExists(t, st, "customers"))
		}
		if got := instanceKeys(t, st); len(got) != len(keys) {
			t.Fatalf("instance_keys after rollback: %d rows, want %d", len(got), len(keys))
		}
	})

	t.Run("UpAgainSameKeys", func(t *testing.T) {
		if err := st.MigrateUp(); err != nil {
			t.Fatal(err)
		}
		got := instanceKeys(t, st)
		for i := range keys {
			if got[i].Name != keys[i].Name || !bytes.Equal(got[i].Key, keys[i].Key) {
				t.Fatalf("key %s changed across down and up", keys[i].Name)
			}
		}
		fresh, _ := openLogged(t, url) // a new replica: nothing cached
		erasureAfter, err := fresh.SubjectHMAC(ctx, "acct_keep")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(erasureBefore, erasureAfter) {
			t.Fatal("a replica started after the rollback hashes with another erasure key")
		}
	})
}

// The plan names what each rolled-back migration drops, and how much data
// goes with it.
func TestPlanDownCountsWhatGoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	if _, err := st.DB().Exec(`INSERT INTO customers (stripe_customer_id, former_account_hmac) VALUES ('cus_Plan1', '\x01'), ('cus_Plan2', NULL)`); err != nil {
		t.Fatal(err)
	}
	all, err := postgres.MigrationDirectives(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := st.PlanDown(ctx, len(all))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int64{}
	for _, s := range plan.Steps {
		for _, d := range s.Drops {
			found[d.Table+"."+d.Column] = d.Rows
		}
	}
	if n, ok := found["customers.former_account_hmac"]; !ok || n != 1 {
		t.Errorf("column customers.former_account_hmac: %d values, listed %v; want 1", n, ok)
	}
	if n, ok := found["customers."]; !ok || n != 2 {
		t.Errorf("table customers: %d rows, listed %v; want 2", n, ok)
	}
	if _, ok := found["instance_keys."]; ok {
		t.Error("instance_keys listed as dropped")
	}
	// The plan changed nothing.
	if !tableExists(t, st, "customers") {
		t.Fatal("planning dropped a table")
	}
}

// No down migration drops or empties instance_keys: checked on the files,
// so a new migration that tries fails here before any database sees it.
func TestDownMigrationsNeverDropInstanceKeys(t *testing.T) {
	t.Parallel()
	drops, err := postgres.DownDrops(migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	for v, ds := range drops {
		for _, d := range ds {
			if d.Table == "instance_keys" && d.Column == "" {
				t.Errorf("migration %d's down drops or empties instance_keys", v)
			}
		}
	}
	// The check sees each form a down migration could use.
	for _, stmt := range []string{"DROP TABLE instance_keys", "DROP TABLE IF EXISTS tombstones, instance_keys CASCADE", "TRUNCATE instance_keys", "DELETE FROM instance_keys"} {
		got, err := postgres.DownDrops(withMigrations(t, map[string]string{
			"9001_bad.up.sql": "SELECT 1;", "9001_bad.down.sql": "-- a comment; with a semicolon\n" + stmt + ";\n",
		}))
		if err != nil {
			t.Fatal(err)
		}
		var caught bool
		for _, d := range got[9001] {
			caught = caught || (d.Table == "instance_keys" && d.Column == "")
		}
		if !caught {
			t.Errorf("%q not seen as dropping instance_keys: %v", stmt, got[9001])
		}
	}
}

// A down migration that would drop instance_keys is refused at run time
// too, before anything is rolled back.
func TestMigrateDownRefusesToDropInstanceKeys(t *testing.T) {
	t.Parallel()
	st, _ := openLogged(t, pgtest.EmptyDB(t))
	bad := withMigrations(t, map[string]string{
		"9001_bad.up.sql":   "SELECT 1;",
		"9001_bad.down.sql": "DROP TABLE instance_keys;",
	})
	if err := postgres.MigrateUpFS(st, bad); err != nil {
		t.Fatal(err)
	}
	err := postgres.MigrateDownFS(st, bad, 1)
	if err == nil || !strings.Contains(err.Error(), "would drop instance_keys") {
		t.Fatalf("MigrateDown = %v", err)
	}
	if v := schemaVersion(t, st); v != 9001 || !tableExists(t, st, "instance_keys") {
		t.Fatalf("version %d, instance_keys there: %v", v, tableExists(t, st, "instance_keys"))
	}
}
