package billing

// Invalidation is one row of the cache-invalidation feed: an account (by
// bucket) or the token set changed in a committed transaction.
type Invalidation struct {
	ID     int64
	Token  bool   // the token set changed (a revocation): flush tokens
	All    bool   // every account's answer changed (the catalog): flush answers
	Bucket uint16 // for an account change: CacheBucket(account ID)
}

// CacheBucket names an account in the cache-invalidation feed without
// storing its ID: a 16-bit FNV-1a bucket. With tens of thousands of
// accounts a bucket holds one or a few, so a change invalidates almost only
// its own account, while the feed row cannot identify the account that
// changed (and is deleted within minutes anyway).
func CacheBucket(accountID string) uint16 {
	h := uint32(2166136261)
	for i := 0; i < len(accountID); i++ {
		h ^= uint32(accountID[i])
		h *= 16777619
	}
	return uint16(h ^ h>>16)
}
