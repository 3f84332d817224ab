package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// etag is the strong entity tag of a response body, quoted: the first 12
// bytes of its SHA-256 in hex. Every tagged response (the entitlement, an
// account's billing) is tagged here, so equal bodies get equal tags
// whichever endpoint or replica made them.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// writeTagged answers 200 with body and its ETag, or 304 when the client's
// If-None-Match already names it. Responses may be kept by the client but
// must be revalidated on every use (private, no-cache).
func writeTagged(w http.ResponseWriter, r *http.Request, body []byte, tag string, tagHdr []string) {
	h := w.Header()
	if tagHdr == nil {
		tagHdr = []string{tag}
	}
	h["Etag"] = tagHdr
	h["Cache-Control"] = hdrNoCache
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110
// 13.1.2): "*", or any listed tag equal to tag, W/ prefixes ignored.
func etagMatches(values []string, tag string) bool {
	for _, v := range values {
		if v == tag { // the common case: one tag, sent back verbatim
			return true
		}
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == tag {
				return true
			}
		}
	}
	return false
}
