package billing

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// Dashboard sessions: the finance dashboard signs in with a finance token
// once and then rides on a random session ID in a cookie. The session is
// held server-side under the ID's hash, so signing out deletes it (a copied
// cookie stops working), its lifetime and idle limits are the server's and
// not the cookie's, and nothing in the cookie can be forged or extended.

// SessionIDBytes is how many random bytes a session ID carries (256 bits,
// like a token: its SHA-256 can be stored without a slow hash).
const SessionIDBytes = 32

// sessionIDLen is the length of a session ID's text: unpadded base64url.
var sessionIDLen = base64.RawURLEncoding.EncodedLen(SessionIDBytes)

// DashboardSession is one signed-in dashboard session as stored.
type DashboardSession struct {
	Hash          TokenHash // SHA-256 of the session ID; the ID itself is only in the cookie
	TokenID       int64     // the finance token that signed in
	CreatedAt     time.Time
	ExpiresAt     time.Time // lifetime cap: never extended
	IdleExpiresAt time.Time // moves forward with use, never past ExpiresAt
}

// SessionPolicy is how long a session may live at most (Lifetime,
// DASHBOARD_SESSION_TTL) and unused (Idle, DASHBOARD_SESSION_IDLE).
type SessionPolicy struct {
	Lifetime time.Duration
	Idle     time.Duration
}

// Default session limits: a working day, and an hour away from the desk.
const (
	DefaultSessionLifetime = 12 * time.Hour
	DefaultSessionIdle     = time.Hour
)

// sessionTouchEvery is how stale the stored idle expiry may get before a
// request writes a fresher one: at most one write a minute per session,
// and an idle limit accurate to a minute.
const sessionTouchEvery = time.Minute

// withDefaults fills unset limits.
func (p SessionPolicy) withDefaults() SessionPolicy {
	if p.Lifetime <= 0 {
		p.Lifetime = DefaultSessionLifetime
	}
	if p.Idle <= 0 || p.Idle > p.Lifetime {
		p.Idle = min(DefaultSessionIdle, p.Lifetime)
	}
	return p
}

// NewDashboardSession starts a session for the token tokenID at now: it
// returns the session ID (for the cookie only) and the record to store.
func NewDashboardSession(tokenID int64, now time.Time, p SessionPolicy) (string, DashboardSession, error) {
	p = p.withDefaults()
	var b [SessionIDBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", DashboardSession{}, fmt.Errorf("new dashboard session: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s := DashboardSession{Hash: HashSessionID(id), TokenID: tokenID, CreatedAt: now,
		ExpiresAt: now.Add(p.Lifetime), IdleExpiresAt: now.Add(p.Idle)}
	return id, s, nil
}

// HashSessionID is the hash under which a presented session ID is looked up.
func HashSessionID(id string) TokenHash { return sha256.Sum256([]byte(id)) }

// ValidSessionID reports whether id has the shape of a session ID, so a
// junk cookie costs no lookup.
func ValidSessionID(id string) bool {
	if len(id) != sessionIDLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}

// Active reports whether the session may be used at now: before both its
// lifetime cap and its idle expiry.
func (s DashboardSession) Active(now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt)
}

// Touch returns the idle expiry a use at now gives the session and whether
// it is worth storing: only when it moves the stored one by at least a
// minute, so a dashboard's burst of requests writes once.
func (p SessionPolicy) Touch(s DashboardSession, now time.Time) (time.Time, bool) {
	p = p.withDefaults()
	next := now.Add(p.Idle)
	if next.After(s.ExpiresAt) {
		next = s.ExpiresAt
	}
	return next, next.Sub(s.IdleExpiresAt) >= sessionTouchEvery
}
