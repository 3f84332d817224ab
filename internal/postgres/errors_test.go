package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/billingd/billingd/internal/httpjson"
	"github.com/billingd/billingd/internal/pgtest"
	"github.com/billingd/billingd/internal/postgres"
	"github.com/lib/pq"
)

// truncatedJSON is a Scanner that decodes a jsonb column with a streaming
// decoder: a truncated document gives io.ErrUnexpectedEOF, which
// database/sql wraps into its Scan error. That is bad data, not a lost
// connection.
type truncatedJSON struct{ v any }

func (t *truncatedJSON) Scan(src any) error {
	b, _ := src.(string)
	return json.NewDecoder(strings.NewReader(b)).Decode(&t.v)
}

// TestTranslate feeds translate real errors: from a live PostgreSQL, a dead
// port, a killed backend, a broken Scanner, and plain Go values, and checks
// the billing class and the answer a client would get (httpjson.Classify).
// Connection loss is recognised by type: an error whose text merely
// contains "EOF" is internal (500), not a lost connection (503 forever).
func TestTranslate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t)
	db := st.DB()

	dbErr := func(q string, args ...any) error {
		t.Helper()
		_, err := db.ExecContext(ctx, q, args...)
		if err == nil {
			t.Fatalf("%s: no error", q)
		}
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE translate_t (id int PRIMARY KEY, n int NOT NULL CHECK (n >= 0), s varchar(3))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO translate_t VALUES (1, 1, 'a')`); err != nil {
		t.Fatal(err)
	}

	// A lock held elsewhere with lock_timeout set: 55P03.
	lockTimeout := func() error {
		holder, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback()
		if _, err := holder.ExecContext(ctx, `SELECT 1 FROM translate_t WHERE id = 1 FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '50ms'`); err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, `SELECT 1 FROM translate_t WHERE id = 1 FOR UPDATE`)
		return err
	}

	// A transaction whose backend an operator terminates: the next
	// statement finds the connection gone.
	killedBackend := func() error {
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var pid int
		if err := tx.GetContext(ctx, &pid, `SELECT pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, `SELECT 1`)
		return err
	}

	// A port nobody listens on.
	refused := func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		conn, err := sql.Open("postgres", "postgres://u@"+addr+"/d?sslmode=disable&connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.PingContext(ctx)
	}

	scanEOF := func() error {
		var v truncatedJSON
		return db.QueryRowContext(ctx, `SELECT '{"a": [1, 2'::text`).Scan(&v)
	}

	deadline := func() error {
		c, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err := db.ExecContext(c, `SELECT pg_sleep(5)`)
		return err
	}

	tests := []struct {
		name   string
		err    func() error
		class  error
		status int
	}{
		{"UniqueViolation", func() error { return dbErr(`INSERT INTO translate_t VALUES (1, 1, 'a')`) }, billing.ErrConflict, 409},
		{"CheckViolation", func() error { return dbErr(`INSERT INTO translate_t VALUES (2, -1, 'a')`) }, billing.ErrInvalid, 400},
		{"NotNullViolation", func() error { return dbErr(`INSERT INTO translate_t VALUES (3, NULL, 'a')`) }, billing.ErrInvalid, 400},
		{"TooLong", func() error { return dbErr(`INSERT INTO translate_t VALUES (4, 1, 'abcd')`) }, billing.ErrInvalid, 400},
		{"BigintOutOfRange", func() error { return dbErr(`SELECT $1::bigint * 2`, int64(1)<<62) }, billing.ErrInvalid, 400},
		{"BadTextRepresentation", func() error { return dbErr(`SELECT 'x'::int`) }, billing.ErrInvalid, 400},
		{"DivisionByZero", func() error { return dbErr(`SELECT 1/0`) }, billing.ErrInternal, 500},
		{"SyntaxError", func() error { return dbErr(`SELEC 1`) }, billing.ErrInternal, 500},
		{"LockTimeout", lockTimeout, billing.ErrUnavailable, 503},
		{"StatementTimeout", func() error {
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `SET LOCAL statement_timeout = '20ms'`); err != nil {
				t.Fatal(err)
			}
			_, err = tx.ExecContext(ctx, `SELECT pg_sleep(5)`)
			return err
		}, billing.ErrUnavailable, 503},
		{"KilledBackend", killedBackend, billing.ErrUnavailable, 503},
		{"ConnectionRefused", refused, billing.ErrUnavailable, 503},
		{"ContextDeadline", deadline, billing.ErrUnavailable, 503},
		{"BadConn", func() error { return driver.ErrBadConn }, billing.ErrUnavailable, 503},
		{"BareUnexpectedEOF", func() error { return io.ErrUnexpectedEOF }, billing.ErrUnavailable, 503},
		{"BareEOF", func() error { return io.EOF }, billing.ErrUnavailable, 503},
		{"ScanErrorWrappingEOF", scanEOF, billing.ErrInternal, 500},
		{"TextMentioningEOF", func() error { return errors.New("pq: unexpected EOF in copy data") }, billing.ErrInternal, 500},
		{"WrappedEOFText", func() error { return fmt.Errorf("read items: %s", "unexpected EOF") }, billing.ErrInternal, 500},
		{"NoRows", func() error {
			var n int
			return db.GetContext(ctx, &n, `SELECT 1 WHERE false`)
		}, billing.ErrInternal, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.err()
			if raw == nil {
				t.Fatal("no error to translate")
			}
			got := postgres.Translate(raw)
			if !errors.Is(got, tt.class) {
				t.Fatalf("translate(%v) = %v, want class %v", raw, got, tt.class)
			}
			for _, other := range []error{billing.ErrUnavailable, billing.ErrInvalid, billing.ErrConflict, billing.ErrInternal} {
				if other != tt.class && errors.Is(got, other) {
					t.Fatalf("translate(%v) = %v is also %v", raw, got, other)
				}
			}
			if !errors.Is(got, raw) {
				t.Fatalf("translate dropped the original error: %v", got)
			}
			if p := httpjson.Classify(fmt.Errorf("some action: %w", got)); p.Status != tt.status {
				t.Fatalf("client status %d, want %d", p.Status, tt.status)
			}
			if pe := (*pq.Error)(nil); errors.As(got, &pe) && strings.Contains(httpjson.Classify(got).Message, pe.Message) {
				t.Fatalf("client message carries the driver's: %q", httpjson.Classify(got).Message)
			}
		})
	}
	if postgres.Translate(nil) != nil {
		t.Fatal("translate(nil) != nil")
	}
}
