package billing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// legacySign is the reference form before expiries existed.
func legacySign(key []byte, acct string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(acct))
	return acct + "." + hex.EncodeToString(m.Sum(nil))
}

func mustSign(t testing.TB, key []byte, acct string, exp time.Time) string {
	t.Helper()
	ref, err := SignLinkReference(key, acct, exp)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestLinkReference(t *testing.T) {
	t.Parallel()
	oldKey := []byte("old-link-signing-key-for-tests")
	newKey := []byte("new-link-signing-key-for-tests")
	paid := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exp := paid.Add(DefaultLinkReferenceTTL)
	signed := mustSign(t, newKey, "acct.with.dots_1", exp)
	byOld := mustSign(t, oldKey, "acct_1", exp)
	ring := []LinkKey{{Key: newKey}, {Key: oldKey}}
	graced := []LinkKey{{Key: newKey, LegacyUntil: paid.Add(time.Hour)}}
	tampered := strings.Replace(signed, "acct.with.dots_1", "acct.with.dots_2", 1)
	laterExp := strings.Replace(signed, "_"+strconv.FormatInt(exp.Unix(), 10)+"_", "_"+strconv.FormatInt(exp.Unix()+3600, 10)+"_", 1)
	tests := []struct {
		name     string
		keys     []LinkKey
		unsigned bool
		ref      string
		at       time.Time
		want     string
		why      LinkRejection
	}{
		{"SignedOK", ring, false, signed, paid, "acct.with.dots_1", LinkAccepted},
		{"OldKeyStillInRing", ring, false, byOld, paid, "acct_1", LinkAccepted},
		{"OldKeyRotatedOut", []LinkKey{{Key: newKey}}, false, byOld, paid, "", LinkUnknownKey},
		{"LastSecondStillValid", ring, false, signed, exp, "acct.with.dots_1", LinkAccepted},
		{"ErrExpired", ring, false, signed, exp.Add(time.Second), "", LinkExpired},
		{"ErrTamperedAccount", ring, false, tampered, paid, "", LinkBadSignature},
		{"ErrExpiryExtended", ring, false, laterExp, paid, "", LinkBadSignature},
		{"ErrPlainAccountID", ring, false, "acct_1", paid, "", LinkUnsigned},
		{"PlainAccountIDWhenUnsignedAllowed", ring, true, "acct_1", paid, "acct_1", LinkAccepted},
		{"SignedStillCheckedWhenUnsignedAllowed", ring, true, tampered, paid, "", LinkBadSignature},
		{"ErrMalformed", ring, true, "jane doe@example.com", paid, "", LinkMalformed},
		{"ErrEmpty", ring, false, "", paid, "", LinkMalformed},
		{"ErrBadHexSignature", ring, false, strings.Replace(signed, signed[5+8+1+10+1:5+8+1+10+1+32], strings.Repeat("Z", 32), 1), paid, "", LinkMalformed},
		{"LegacyInGrace", graced, false, legacySign(newKey, "acct_1"), paid, "acct_1", LinkAccepted},
		{"ErrLegacyAfterGrace", graced, false, legacySign(newKey, "acct_1"), paid.Add(2 * time.Hour), "", LinkLegacy},
		{"ErrLegacyWithoutGrace", ring, false, legacySign(newKey, "acct_1"), paid, "", LinkLegacy},
		{"ErrLegacyUnknownKey", graced, false, legacySign(oldKey, "acct_1"), paid, "", LinkBadSignature},
		{"ErrNoKeys", nil, false, signed, paid, "", LinkUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := NewLinkVerifier(tt.keys, tt.unsigned).Verify(tt.ref, tt.at)
			if got != tt.want || why != tt.why {
				t.Fatalf("Verify = %q, %q; want %q, %q", got, why, tt.want, tt.why)
			}
		})
	}
	t.Run("NilVerifierRefusesAll", func(t *testing.T) {
		var v *LinkVerifier
		if got, why := v.Verify(signed, paid); got != "" || why != LinkUnsigned && why != LinkMalformed {
			t.Fatalf("nil verifier: %q, %q", got, why)
		}
	})
}

// A reference fits Stripe's client_reference_id (200 characters) for the
// longest account ID, carries the key ID, and uses only the Payment Link
// URL alphabet (letters, digits, "-", "_") when the account ID does.
func TestLinkReferenceShape(t *testing.T) {
	t.Parallel()
	key := []byte("link-signing-key-for-tests")
	exp := time.Date(2286, 11, 20, 17, 46, 40, 0, time.UTC) // 11-digit Unix time
	longest := strings.Repeat("a", 64) + "_" + strings.Repeat("Z-9", 21)
	if !ValidAccountID(longest) || len(longest) != 128 {
		t.Fatalf("test account is %d characters", len(longest))
	}
	ref := mustSign(t, key, longest, exp)
	if len(ref) > MaxLinkReferenceLen {
		t.Errorf("reference is %d characters, Stripe allows %d", len(ref), MaxLinkReferenceLen)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(ref) {
		t.Errorf("reference %q leaves the Payment Link alphabet", ref)
	}
	if !strings.Contains(ref, "_"+LinkKeyID(key)+"_") {
		t.Errorf("reference %q does not carry key ID %s", ref, LinkKeyID(key))
	}
	if got, why := NewLinkVerifier([]LinkKey{{Key: key}}, false).Verify(ref, exp); got != longest || why != LinkAccepted {
		t.Errorf("round trip: %q, %q", got, why)
	}
	for _, bad := range []struct {
		name string
		key  []byte
		acct string
		exp  time.Time
	}{
		{"ErrShortKey", []byte("short"), "acct_1", exp},
		{"ErrAccountID", key, "a b", exp},
		{"ErrNoExpiry", key, "acct_1", time.Unix(0, 0)},
	} {
		if _, err := SignLinkReference(bad.key, bad.acct, bad.exp); err == nil {
			t.Errorf("%s: signed", bad.name)
		}
	}
}

func TestKeyRing(t *testing.T) {
	t.Parallel()
	a, b := []byte("first-key-0123456789"), []byte("second-key-0123456789")
	r, err := NewKeyRing(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Writer()) != string(a) || r.Len() != 2 || !r.Contains(KeyFingerprint(b)) || r.Contains(KeyFingerprint([]byte("other-key-0123456789"))) {
		t.Fatalf("ring %v", r.Fingerprints())
	}
	if fp := KeyFingerprint(a); len(fp) != 32 || fp == KeyFingerprint(b) || strings.Contains(fp, string(a)) {
		t.Fatalf("fingerprint %q", fp)
	}
	for name, keys := range map[string][][]byte{"ErrEmpty": nil, "ErrShort": {a, []byte("short")}, "ErrTwice": {a, b, a}} {
		if _, err := NewKeyRing(keys...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzLinkReference: Verify never panics and never accepts something that
// is not an account ID; what SignLinkReference makes always verifies.
func FuzzLinkReference(f *testing.F) {
	key := []byte("link-signing-key-for-fuzzing")
	paid := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Add(mustSign(f, key, "acct_1", paid.Add(time.Hour)), "acct_1")
	f.Add(legacySign(key, "acct.x"), "acct.x")
	f.Add("bdl1_0000000_1_"+strings.Repeat("0", 32)+"_a", "a")
	f.Add("bdl1___", "")
	v := NewLinkVerifier([]LinkKey{{Key: key, LegacyUntil: paid.Add(time.Hour)}}, false)
	f.Fuzz(func(t *testing.T, ref, acct string) {
		if got, why := v.Verify(ref, paid); why == LinkAccepted && !ValidAccountID(got) {
			t.Fatalf("accepted %q for %q", got, ref)
		}
		if !ValidAccountID(acct) {
			return
		}
		signed := mustSign(t, key, acct, paid.Add(time.Minute))
		if got, why := v.Verify(signed, paid); got != acct || why != LinkAccepted {
			t.Fatalf("Verify(SignLinkReference(%q)) = %q, %q", acct, got, why)
		}
	})
}
