package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// validAccountID is the shape of an app account ID (customers.account_id).
var validAccountID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// ValidAccountID reports whether id can be an app account ID.
func ValidAccountID(id string) bool { return validAccountID.MatchString(id) }

// SignLinkReference is the client_reference_id the app puts on a Checkout
// session (or Payment Link URL) for account accountID when LINK_SIGNING_KEY
// is set: "<account_id>.<hex HMAC-SHA256(key, account_id)>". Anyone can
// edit a Payment Link URL; only the app can sign, so billingd links a
// customer from checkout only when the signature matches.
func SignLinkReference(key []byte, accountID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(accountID))
	return accountID + "." + hex.EncodeToString(m.Sum(nil))
}

// VerifyLinkReference returns the account a client_reference_id names. With
// no key, the reference is the account ID itself. With a key, it must be
// SignLinkReference's form with a matching signature; the account ID may
// itself contain dots, so the signature is what follows the last one.
func VerifyLinkReference(key []byte, ref string) (string, bool) {
	if len(key) == 0 {
		if ValidAccountID(ref) {
			return ref, true
		}
		return "", false
	}
	i := strings.LastIndexByte(ref, '.')
	if i <= 0 || len(ref)-i-1 != sha256.Size*2 {
		return "", false
	}
	acct, sig := ref[:i], ref[i+1:]
	if !ValidAccountID(acct) {
		return "", false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return "", false
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(acct))
	if !hmac.Equal(got, m.Sum(nil)) {
		return "", false
	}
	return acct, true
}
