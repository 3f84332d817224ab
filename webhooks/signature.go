package webhooks

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// checkHeader judges a Stripe-Signature header before any body is read:
// whatever makes the request fail whatever its body is refused without
// reading one. It parses like stripe-go (webhook.ValidatePayload), so it
// refuses nothing that stripe-go would accept, and in addition bounds the
// timestamp in both directions: stripe-go only bounds its age, and a
// timestamp ten years ahead would make a captured request replayable for
// ten years.
func checkHeader(header string, now time.Time, tolerance time.Duration) (reason string, err error) {
	if header == "" {
		return "missing", errors.New("no Stripe-Signature header")
	}
	var ts int64
	hasTS, hasSig := false, false
	for _, pair := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(v, "=") {
			return "malformed", errors.New("malformed Stripe-Signature header")
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "malformed", errors.New("malformed Stripe-Signature header")
			}
			ts, hasTS = n, true
		case "v1":
			hasSig = true // hex checked with the body: an odd one is skipped, as stripe-go does
		}
	}
	switch {
	case !hasTS:
		return "malformed", errors.New("malformed Stripe-Signature header: no timestamp")
	case !hasSig:
		return "invalid", errors.New("no signature matches a configured secret")
	}
	// Compare in seconds: the header has no more precision, and an
	// extreme timestamp must not overflow a subtraction.
	limit := int64(tolerance / time.Second)
	if ts < now.Unix()-limit || ts > now.Unix()+limit {
		return "expired", errors.New("signature timestamp outside the tolerance")
	}
	return "", nil
}
