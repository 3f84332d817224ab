package billing

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"regexp"
	"time"
)

// Scope is what an API token may do.
type Scope string

// The token scopes: the app backend (link, read state, delete accounts) and
// finance (revenue metrics, dashboard).
const (
	ScopeApp     Scope = "app"
	ScopeFinance Scope = "finance"
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return s == ScopeApp || s == ScopeFinance }

// tokenPrefix marks a token's scope in its text, so a leaked token is easy
// to recognise (secret scanners) and a misplaced one easy to spot. The
// prefix is not trusted: the scope comes from the stored record.
func (s Scope) tokenPrefix() string {
	switch s {
	case ScopeApp:
		return "bd_app_"
	case ScopeFinance:
		return "bd_fin_"
	}
	return "bd_"
}

// TokenBytes is how many random bytes a token carries (256 bits).
const TokenBytes = 32

// TokenHash is the stored form of a token. SHA-256 and not a slow password
// hash: a token has 256 random bits, so nobody can guess it from its hash
// by brute force, and a fast hash keeps the per-request check cheap.
type TokenHash [sha256.Size]byte

// Token is an API token's record. The token itself is shown once, at
// creation, and never stored.
type Token struct {
	ID         int64
	Name       string
	Scope      Scope
	Hash       TokenHash
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Revoked reports whether the token was revoked.
func (t Token) Revoked() bool { return t.RevokedAt != nil }

var validTokenName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// ValidTokenName reports whether name can name a token (api_tokens.name):
// it is recorded as the actor in audit entries, so it is an identifier, not
// free text.
func ValidTokenName(name string) bool { return validTokenName.MatchString(name) }

// NewToken returns a new random token for scope, "<prefix><base64url of 32
// random bytes>", and its hash.
func NewToken(scope Scope) (string, TokenHash, error) {
	if !scope.Valid() {
		return "", TokenHash{}, fmt.Errorf("new token: %w: scope %q is not app or finance", ErrInvalid, scope)
	}
	var b [TokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", TokenHash{}, fmt.Errorf("new token: %w", err)
	}
	tok := scope.tokenPrefix() + base64.RawURLEncoding.EncodeToString(b[:])
	return tok, HashToken(tok), nil
}

// HashToken is the hash under which a presented token is looked up.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// Equal compares two hashes in constant time. Lookups by hash (a map or an
// index) already leak nothing useful, since timing reveals at most bits of
// a hash whose preimage has 256 random bits; the final check is constant
// time anyway so no code path ever compares secrets byte by byte.
func (h TokenHash) Equal(o TokenHash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }
