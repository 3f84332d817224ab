package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// MinKeyLen is the shortest HMAC key billingd accepts (characters of a
// configured key, bytes of a generated one).
const MinKeyLen = 16

// fingerprintLabel is what KeyFingerprint MACs: no ID billingd hashes can
// equal it (account, customer and subscription IDs hold no spaces).
const fingerprintLabel = "billingd key fingerprint"

// KeyFingerprint names an HMAC key without revealing it:
// hex(HMAC-SHA256(key, "billingd key fingerprint"))[:32]. billingd stores
// the fingerprints of the keys its tombstones, aliases and references were
// made with, so that a key changed by mistake stops it at start instead of
// silently undoing erasures.
func KeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// KeyRing is the ordered set of keys of one purpose (erasure hashes, link
// signatures): the first writes or signs, every key checks or verifies.
// Rotation adds a new key in front and keeps the old ones behind it for as
// long as anything made with them must still be recognised.
type KeyRing struct {
	keys [][]byte
	fps  []string
}

// NewKeyRing checks keys (at least one, each at least MinKeyLen long, no
// key twice) and returns them as a ring, the first being the writer.
func NewKeyRing(keys ...[]byte) (KeyRing, error) {
	if len(keys) == 0 {
		return KeyRing{}, fmt.Errorf("%w: a key ring needs at least one key", ErrInvalid)
	}
	r := KeyRing{}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return KeyRing{}, fmt.Errorf("%w: key %d of the ring is shorter than %d characters", ErrInvalid, i+1, MinKeyLen)
		}
		fp := KeyFingerprint(k)
		if r.Contains(fp) {
			return KeyRing{}, fmt.Errorf("%w: key %d of the ring is listed twice", ErrInvalid, i+1)
		}
		r.keys = append(r.keys, append([]byte(nil), k...))
		r.fps = append(r.fps, fp)
	}
	return r, nil
}

// Writer is the key that writes new hashes and signs new references.
func (r KeyRing) Writer() []byte {
	if len(r.keys) == 0 {
		return nil
	}
	return r.keys[0]
}

// Keys are every key of the ring, writer first. The slice is the ring's
// own: do not modify it.
func (r KeyRing) Keys() [][]byte { return r.keys }

// Fingerprints are the keys' fingerprints, in ring order.
func (r KeyRing) Fingerprints() []string { return append([]string(nil), r.fps...) }

// Contains reports whether the ring holds the key with fingerprint fp.
func (r KeyRing) Contains(fp string) bool {
	for _, f := range r.fps {
		if f == fp {
			return true
		}
	}
	return false
}

// Len is the number of keys.
func (r KeyRing) Len() int { return len(r.keys) }
