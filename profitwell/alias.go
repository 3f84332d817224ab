package profitwell

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// AliasLen is the length of every alias: ProfitWell caps
// subscription_alias at 36 characters, and user aliases follow suit.
const AliasLen = 36

// Alias is the pseudonym ProfitWell sees for an internal reference
// (customers.customer_ref or subscriptions.subscription_ref, random UUIDs):
// hex HMAC-SHA256 under key, truncated to 36 characters (144 bits). The
// same key always gives the same alias, on every replica and restart; it
// cannot be reversed or recomputed without the key. Rotating the key gives
// every customer a new alias, so ProfitWell would see new customers: rotate
// only with a plan (erase the old users, then backfill).
func Alias(key []byte, ref string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ref))
	return hex.EncodeToString(m.Sum(nil))[:AliasLen]
}
