package api

import (
	"net/http"
	"testing"
)

// TestNoCache reads the request headers that ask for a fresh answer
// (RFC 9111 5.2.1.4 no-cache, 5.2.1.1 max-age=0, 5.4 Pragma) and nothing
// else.
func TestNoCache(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		hdr  http.Header
		want bool
	}{
		{"None", http.Header{}, false},
		{"NoCache", http.Header{"Cache-Control": {"no-cache"}}, true},
		{"CaseInsensitive", http.Header{"Cache-Control": {"No-Cache"}}, true},
		{"InList", http.Header{"Cache-Control": {"private, no-cache"}}, true},
		{"SecondHeaderLine", http.Header{"Cache-Control": {"max-stale=5", "no-cache"}}, true},
		{"WithFieldNames", http.Header{"Cache-Control": {`no-cache="set-cookie"`}}, true},
		{"MaxAgeZero", http.Header{"Cache-Control": {"max-age=0"}}, true},
		{"MaxAgeOther", http.Header{"Cache-Control": {"max-age=60"}}, false},
		{"MaxAgeZeroPrefix", http.Header{"Cache-Control": {"max-age=05"}}, false},
		{"NoStoreIsNotNoCache", http.Header{"Cache-Control": {"no-store"}}, false},
		{"NoCacheLookalike", http.Header{"Cache-Control": {"no-cachex"}}, false},
		{"Pragma", http.Header{"Pragma": {"no-cache"}}, true},
		{"CacheControlWinsOverPragma", http.Header{"Cache-Control": {"max-age=60"}, "Pragma": {"no-cache"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := noCache(tt.hdr); got != tt.want {
				t.Fatalf("noCache(%v) = %v, want %v", tt.hdr, got, tt.want)
			}
		})
	}
}
