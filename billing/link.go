package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// validAccountID is the shape of an app account ID (customers.account_id).
var validAccountID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// ValidAccountID reports whether id can be an app account ID.
func ValidAccountID(id string) bool { return validAccountID.MatchString(id) }

// Link references are the client_reference_id an app puts on a Checkout
// Session (or a Payment Link URL) so that billingd links the paying
// customer to the app's account. Anyone can edit a Payment Link URL; only
// the app (and billingd) hold the key, so only a signed reference links.
//
// Form: "bdl1_<key ID>_<expiry>_<signature>_<account ID>", where the key ID
// is LinkKeyID(key) (8 hex digits), the expiry is Unix seconds, and the
// signature is the first 16 bytes of HMAC-SHA256(key, everything before
// it, then the account ID), in hex. The fixed-alphabet parts come first
// and the account ID, which may hold underscores, last, so the form needs
// no escaping; with an account ID of letters, digits, "-" and "_" only it
// stays within what Stripe accepts in a Payment Link URL (those characters,
// at most 200). The longest account ID gives 186 characters.
const (
	// DefaultLinkReferenceTTL is how long a reference is valid by default:
	// a Checkout Session lives at most 24 hours, so a reference made for one
	// when it is created outlives it with a day to spare.
	DefaultLinkReferenceTTL = 48 * time.Hour
	// MaxLinkReferenceTTL is the longest validity the API hands out.
	MaxLinkReferenceTTL = 7 * 24 * time.Hour
	// MaxLinkReferenceLen is Stripe's limit on client_reference_id.
	MaxLinkReferenceLen = 200

	linkRefPrefix = "bdl1_"
	linkKeyIDLen  = 8
	linkSigBytes  = 16 // 128 bits: forging one is out of reach
)

// LinkKeyID is the key ID a reference signed with key carries: the first 8
// hex digits of the key's fingerprint. It lets the verifier try only the
// key that signed, and names the key in logs without revealing it.
func LinkKeyID(key []byte) string { return KeyFingerprint(key)[:linkKeyIDLen] }

// SignLinkReference returns the client_reference_id that links a Checkout
// Session to accountID, signed with key and valid until expires. Apps that
// hold the key (LINK_SIGNING_KEYS' first key) can call it themselves;
// otherwise POST /v1/accounts/{account_id}/link-reference returns one.
func SignLinkReference(key []byte, accountID string, expires time.Time) (string, error) {
	if len(key) < MinKeyLen {
		return "", fmt.Errorf("%w: link signing key shorter than %d characters", ErrInvalid, MinKeyLen)
	}
	if !ValidAccountID(accountID) {
		return "", fmt.Errorf("%w: malformed account ID", ErrInvalid)
	}
	exp := expires.Unix()
	if exp <= 0 || exp > maxLinkExpiry {
		return "", fmt.Errorf("%w: link reference expiry out of range", ErrInvalid)
	}
	head := linkRefPrefix + LinkKeyID(key) + "_" + strconv.FormatInt(exp, 10) + "_"
	return head + linkMAC(key, head, accountID) + "_" + accountID, nil
}

// maxLinkExpiry is 9999-12-31T23:59:59Z.
const maxLinkExpiry = 253402300799

func linkMAC(key []byte, head, accountID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(head))
	m.Write([]byte(accountID))
	return hex.EncodeToString(m.Sum(nil)[:linkSigBytes])
}

// LinkRejection says why a client_reference_id did not link ("" when it did).
type LinkRejection string

// Reasons a reference is refused; they label
// billingd_link_references_rejected_total.
const (
	LinkAccepted LinkRejection = ""
	// LinkUnsigned: a plain account ID while signatures are required.
	LinkUnsigned LinkRejection = "unsigned"
	// LinkMalformed: neither a reference nor an account ID.
	LinkMalformed LinkRejection = "malformed"
	// LinkUnknownKey: signed with a key not in the ring (rotated out, or forged).
	LinkUnknownKey LinkRejection = "unknown_key"
	// LinkBadSignature: the signature does not match.
	LinkBadSignature LinkRejection = "bad_signature"
	// LinkExpired: the checkout completed after the reference expired.
	LinkExpired LinkRejection = "expired"
	// LinkLegacy: the old form without expiry, after its grace period.
	LinkLegacy LinkRejection = "legacy"
)

// LinkRejections lists every reason, for metrics.
func LinkRejections() []LinkRejection {
	return []LinkRejection{LinkUnsigned, LinkMalformed, LinkUnknownKey, LinkBadSignature, LinkExpired, LinkLegacy}
}

// LinkKey is one key a LinkVerifier accepts.
type LinkKey struct {
	Key []byte
	// LegacyUntil: references of the form before expiries existed
	// ("<account_id>.<hex HMAC-SHA256(key, account_id)>", which never
	// expired) signed with this key still link for checkouts completed
	// before this time; zero: never. billingd sets it to 24 hours after
	// its first start with link keys recorded, which covers every Checkout
	// Session created before the upgrade.
	LegacyUntil time.Time
}

// LinkVerifier checks client_reference_ids against a ring of link keys.
type LinkVerifier struct {
	keys          []LinkKey
	ids           []string
	allowUnsigned bool
}

// NewLinkVerifier returns a verifier accepting references signed with any
// of keys. allowUnsigned (LINK_REQUIRE_SIGNATURE=false) also accepts a
// plain account ID: anyone who can edit a Payment Link URL can then link
// their payment to any account.
func NewLinkVerifier(keys []LinkKey, allowUnsigned bool) *LinkVerifier {
	v := &LinkVerifier{allowUnsigned: allowUnsigned}
	for _, k := range keys {
		v.keys = append(v.keys, k)
		v.ids = append(v.ids, LinkKeyID(k.Key))
	}
	return v
}

// AllowsUnsigned reports whether plain account IDs are accepted.
func (v *LinkVerifier) AllowsUnsigned() bool { return v != nil && v.allowUnsigned }

// Verify returns the account a client_reference_id names, checked as of
// at (when the checkout completed: the event's creation time, so a
// delivery Stripe retries for days still counts when it was paid), or
// why it is refused. A nil verifier refuses everything.
func (v *LinkVerifier) Verify(ref string, at time.Time) (string, LinkRejection) {
	if v == nil {
		if ValidAccountID(ref) {
			return "", LinkUnsigned
		}
		return "", LinkMalformed
	}
	if strings.HasPrefix(ref, linkRefPrefix) {
		// Judged as a reference only, even with unsigned references
		// allowed: a damaged one must not link to a garbage account ID.
		if acct, why, ok := v.verifySigned(ref, at); ok {
			return acct, why
		}
		return "", LinkMalformed
	}
	if acct, why, ok := v.verifyLegacy(ref, at); ok {
		return acct, why
	}
	switch {
	case !ValidAccountID(ref):
		return "", LinkMalformed
	case v.allowUnsigned:
		return ref, LinkAccepted
	}
	return "", LinkUnsigned
}

// verifySigned checks the current form; ok is false when ref does not have
// its shape.
func (v *LinkVerifier) verifySigned(ref string, at time.Time) (string, LinkRejection, bool) {
	parts := strings.SplitN(ref[len(linkRefPrefix):], "_", 4)
	if len(parts) != 4 {
		return "", "", false
	}
	kid, expS, sig, acct := parts[0], parts[1], parts[2], parts[3]
	if len(kid) != linkKeyIDLen || !isLowerHex(kid) || len(sig) != 2*linkSigBytes || !isLowerHex(sig) ||
		len(expS) == 0 || len(expS) > 12 || !ValidAccountID(acct) {
		return "", "", false
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil || exp <= 0 || expS[0] == '0' {
		return "", "", false
	}
	head := ref[:len(linkRefPrefix)+len(kid)+1+len(expS)+1]
	why := LinkUnknownKey
	for i, k := range v.keys {
		if v.ids[i] != kid {
			continue
		}
		if !hmac.Equal([]byte(linkMAC(k.Key, head, acct)), []byte(sig)) {
			why = LinkBadSignature
			continue
		}
		if at.Unix() > exp {
			return "", LinkExpired, true
		}
		return acct, LinkAccepted, true
	}
	return "", why, true
}

// verifyLegacy checks the form before expiries existed, accepted only
// during a key's grace period; ok is false when ref does not have its
// shape (it may then be a plain account ID: the account ID alphabet
// includes the dot).
func (v *LinkVerifier) verifyLegacy(ref string, at time.Time) (string, LinkRejection, bool) {
	i := strings.LastIndexByte(ref, '.')
	if i <= 0 || len(ref)-i-1 != sha256.Size*2 {
		return "", "", false
	}
	acct, sig := ref[:i], ref[i+1:]
	got, err := hex.DecodeString(sig)
	if err != nil || !ValidAccountID(acct) {
		return "", "", false
	}
	for _, k := range v.keys {
		m := hmac.New(sha256.New, k.Key)
		m.Write([]byte(acct))
		if !hmac.Equal(got, m.Sum(nil)) {
			continue
		}
		if at.Before(k.LegacyUntil) {
			return acct, LinkAccepted, true
		}
		return "", LinkLegacy, true
	}
	// Signed with a key no longer in the ring, or forged. With unsigned
	// references allowed the whole string may still be an account ID.
	return "", LinkBadSignature, !v.allowUnsigned
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
