package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Session plans: the event path's statements behind a transaction-mode
// pooler, where nothing may be prepared by name on the pool (event9_prepared.go).
//
// There every statement was an unnamed one, parsed, analysed and planned
// by the server on every execution: through PgBouncer, a c32 ingest spent
// more of PostgreSQL's CPU planning the event path's large statements
// than executing them. A pooler hands a transaction one server
// connection from start to end, though, and that connection is a
// long-lived session. So inside each transaction the event path asks
// which of its statements that session has prepared at SQL level
// (PREPARE, listed in pg_prepared_statements), prepares the missing ones,
// and runs them with EXECUTE: each server connection plans each statement
// a few times in its life instead of on every batch. Nothing outlives the
// transaction in a way a pooler can confuse: the names are checked on the
// connection the transaction holds, and a name is the hash of its text, so
// two binaries (a rolling deploy) or two clients sharing a server
// connection can only ever find the same statement under it.
//
// EXECUTE takes no protocol parameters, so the arguments are written into
// it as quoted literals (sessionLiteral: escape-string syntax, every value
// quoted, whatever standard_conforming_strings says), each cast by the
// prepared statement to its parameter's type exactly as a bound parameter.

// sessionPlans is one transaction's view of its server session's
// statements; nil when the Store prepares by name or sends unnamed ones.
type sessionPlans struct {
	have map[string]bool // names prepared on this session; nil until read
}

// qSessionStatements lists the session plans prepared on the session.
const qSessionStatements = `SELECT name FROM pg_prepared_statements WHERE name LIKE 'bd\_%'`

// found records the names qSessionStatements listed.
func (p *sessionPlans) found(names []string) {
	p.have = make(map[string]bool, len(names))
	for _, n := range names {
		p.have[n] = true
	}
}

// sessionName is a statement's name in every session.
func sessionName(q string) string {
	h := sha256.Sum256([]byte(q))
	return "bd_" + hex.EncodeToString(h[:10])
}

// sessionNames are eventStatements' names, hashed once.
var sessionNames = func() map[string]string {
	m := make(map[string]string, len(eventStatements))
	for _, q := range eventStatements {
		m[q] = sessionName(q)
	}
	return m
}()

// sessionStatement returns the EXECUTE that runs q with args on the
// transaction's session, preparing q there first when the session lacks it.
func (t ptx) sessionStatement(ctx context.Context, q string, args []any) (string, error) {
	name, ok := sessionNames[q]
	if !ok {
		name = sessionName(q)
	}
	if t.plans.have == nil {
		// Read here only by a transaction that set no limits: setLimits
		// reads them in its own round trip.
		var names []string
		if err := t.Tx.SelectContext(ctx, &names, qSessionStatements); err != nil {
			return "", fmt.Errorf("session statements: %w", translate(err))
		}
		t.plans.found(names)
	}
	if !t.plans.have[name] {
		if _, err := t.Tx.ExecContext(ctx, "PREPARE "+name+" AS "+q); err != nil {
			return "", fmt.Errorf("prepare session statement: %w", translate(err))
		}
		t.plans.have[name] = true
	}
	var b strings.Builder
	b.WriteString("EXECUTE ")
	b.WriteString(name)
	if len(args) > 0 {
		b.WriteByte('(')
		for i, a := range args {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := sessionLiteral(&b, a); err != nil {
				return "", fmt.Errorf("session statement argument %d: %w", i+1, err)
			}
		}
		b.WriteByte(')')
	}
	return b.String(), nil
}

// sessionLiteral writes v as the literal a bound parameter would have
// carried: NULL, or its text form quoted in escape-string syntax (E'…',
// backslashes and quotes doubled), which no value can end early. bytea is
// written in hex form.
func sessionLiteral(b *strings.Builder, v any) error {
	dv, err := driver.DefaultParameterConverter.ConvertValue(v)
	if err != nil {
		return err
	}
	var s string
	switch x := dv.(type) {
	case nil:
		b.WriteString("NULL")
		return nil
	case string:
		s = x
	case []byte:
		s = `\x` + hex.EncodeToString(x)
	case bool:
		s = "false"
		if x {
			s = "true"
		}
	case int64:
		s = fmt.Sprint(x)
	case float64:
		s = fmt.Sprint(x)
	case time.Time:
		s = x.Format(time.RFC3339Nano)
	default:
		return fmt.Errorf("no literal for %T", dv)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("a NUL byte cannot be sent to PostgreSQL")
	}
	b.WriteString("E'")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return nil
}
