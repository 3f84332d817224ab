package billing

import (
	"errors"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scope  Scope
		prefix string
		err    error
	}{
		{"App", ScopeApp, "bd_app_", nil},
		{"Finance", ScopeFinance, "bd_fin_", nil},
		{"ErrUnknownScope", Scope("admin"), "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, hash, err := NewToken(tt.scope)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if !strings.HasPrefix(tok, tt.prefix) {
				t.Errorf("token %q lacks prefix %q", tok[:8], tt.prefix)
			}
			// 32 random bytes in unpadded base64url are 43 characters.
			if got := len(tok) - len(tt.prefix); got != 43 {
				t.Errorf("random part is %d characters, want 43", got)
			}
			if !hash.Equal(HashToken(tok)) {
				t.Error("hash does not match HashToken of the token")
			}
			if hash.Equal(HashToken(tok + "x")) {
				t.Error("hash matches another token")
			}
			tok2, hash2, _ := NewToken(tt.scope)
			if tok2 == tok || hash2.Equal(hash) {
				t.Error("two tokens are equal")
			}
		})
	}
}

func TestValidTokenName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"OK", "app-backend", true},
		{"OKPunctuation", "svc.billing:v2_a", true},
		{"ErrEmpty", "", false},
		{"ErrSpace", "app backend", false},
		{"ErrTooLong", strings.Repeat("a", 65), false},
		{"MaxLength", strings.Repeat("a", 64), true},
		{"ErrEmail", "ops@example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTokenName(tt.in); got != tt.want {
				t.Errorf("ValidTokenName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
