package postgres

import "strings"

// SessionLiteralForTest renders v as session plans write an EXECUTE
// argument (event9_session_plans.go).
func SessionLiteralForTest(v any) (string, error) {
	var b strings.Builder
	err := sessionLiteral(&b, v)
	return b.String(), err
}
