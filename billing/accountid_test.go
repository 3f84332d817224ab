package billing

import (
	"strings"
	"testing"
)

// accountIDByHand is the account ID rule written out without a regexp, the
// reference the fuzz target checks ValidAccountID against.
func accountIDByHand(id string) bool {
	if len(id) < 1 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:-", c) >= 0) {
			return false
		}
	}
	return true
}

func TestValidAccountID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"OK", "acct_123", true},
		{"OKAllPunctuation", "org:42.team-7_x", true},
		{"OKOneChar", "a", true},
		{"OKMaxLength", strings.Repeat("a", 128), true},
		{"ErrEmpty", "", false},
		{"ErrTooLong", strings.Repeat("a", 129), false},
		{"ErrSlash", "a/b", false},
		{"ErrSpace", "a b", false},
		{"ErrTrailingNewline", "acct\n", false},
		{"ErrPercent", "acct%20x", false},
		{"ErrEmail", "someone@example.com", false},
		{"ErrNonASCII", "accté", false},
		{"ErrNUL", "acct\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidAccountID(tt.in); got != tt.want {
				t.Errorf("ValidAccountID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzValidAccountID(f *testing.F) {
	for _, s := range []string{"acct_1", "", "a b", strings.Repeat("z", 128), strings.Repeat("z", 129), "x\n", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidAccountID(id), accountIDByHand(id); got != want {
			t.Fatalf("ValidAccountID(%q) = %v, reference says %v", id, got, want)
		}
	})
}

func TestValidCustomerID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"OK", "cus_NffrFeUfNV2Hib", true},
		{"ErrNoPrefix", "NffrFeUfNV2Hib", false},
		{"ErrPrefixOnly", "cus_", false},
		{"ErrSubscriptionID", "sub_123", false},
		{"ErrUnderscoreInBody", "cus_a_b", false},
		{"ErrTooLong", "cus_" + strings.Repeat("a", 251), false},
		{"OKMaxLength", "cus_" + strings.Repeat("a", 250), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidCustomerID(tt.in); got != tt.want {
				t.Errorf("ValidCustomerID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
