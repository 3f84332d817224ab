package stripeapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

type bodyOf string

func (b bodyOf) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(b))), Request: r}, nil
}

// A list page is read into memory up to maxPageBytes: a longer answer is
// the request's error, as a cut connection would be, not a page.
func TestPageTransportBoundsThePage(t *testing.T) {
	defer func(n int) { maxPageBytes = n }(maxPageBytes)
	maxPageBytes = 16
	for _, tc := range []struct {
		body string
		ok   bool
	}{{`{"data": []}`, true}, {`{"data": [], "has_more": false}`, false}} {
		fetch := &pageFetch{}
		req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), pageFetchKey{}, fetch), http.MethodGet, "https://api.stripe.test/v1/customers", nil)
		resp, err := (&pageTransport{next: bodyOf(tc.body)}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.StatusCode == http.StatusOK && fetch.err == nil && string(fetch.body) == tc.body; got != tc.ok {
			t.Errorf("%d bytes: read %v (status %d, error %v), want %v", len(tc.body), got, resp.StatusCode, fetch.err, tc.ok)
		}
		if !tc.ok && (fetch.err == nil || !strings.Contains(fetch.err.Error(), "larger than")) {
			t.Errorf("%d bytes: error %v, want the page's bound named", len(tc.body), fetch.err)
		}
	}
}
