package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/lib/pq"
)

// Session plans write EXECUTE arguments as literals: each must reach the
// server as exactly the value a bound parameter carries, whatever it
// holds (quotes, backslashes, dollar quotes, comment and statement
// syntax), with standard_conforming_strings on or off.
func TestSessionLiteralsEqualBoundParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.Open(t).DB()
	hostile := []string{"", "plain", "it's", `back\slash`, `\'`, `''`, "$$", "$bd$ x $bd$", "'); DROP TABLE customers; --",
		"E'\\x00'", "line\nbreak\ttab", "ünïcødé ✓", `{"a": "b\"c"}`, `\\x41`}
	at := time.Date(2026, 12, 2, 10, 30, 0, 123456789, time.FixedZone("x", 3600))
	cases := []struct {
		typ string
		v   any
	}{
		{"text[]", pq.Array(hostile)},
		{"bytea", []byte("\x00\x01'\\\xff")},
		{"bytea[]", pq.ByteaArray{[]byte("a'b"), []byte{0, 92, 39}}},
		{"boolean[]", pq.Array([]bool{true, false})},
		{"int[]", pq.Array([]int64{-1, 0, 7})},
		{"timestamptz", at},
		{"timestamptz[]", pq.Array([]string{at.Format(time.RFC3339Nano)})},
		{"jsonb", `{"k": "v'\\"}`},
		{"bigint", int64(-42)},
		{"boolean", true},
		{"text", nil},
	}
	for _, s := range hostile {
		cases = append(cases, struct {
			typ string
			v   any
		}{"text", s})
	}
	for _, scs := range []string{"on", "off"} {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "SET LOCAL standard_conforming_strings = "+scs); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			lit, err := postgres.SessionLiteralForTest(c.v)
			if err != nil {
				t.Fatalf("%s %v: %v", c.typ, c.v, err)
			}
			var same *bool
			q := `SELECT (` + lit + `)::` + c.typ + ` IS NOT DISTINCT FROM $1::` + c.typ
			if err := tx.QueryRowContext(ctx, q, c.v).Scan(&same); err != nil {
				t.Fatalf("standard_conforming_strings %s, %s %q: %v", scs, c.typ, lit, err)
			}
			if same == nil || !*same {
				t.Errorf("standard_conforming_strings %s, %s: literal %s is not the bound value %v", scs, c.typ, lit, c.v)
			}
		}
		_ = tx.Rollback()
	}
	if _, err := postgres.SessionLiteralForTest("nul\x00byte"); err == nil {
		t.Error("a NUL byte was rendered")
	}
}
