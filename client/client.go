package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client calls one billingd. It is safe for concurrent use.
type Client struct {
	base       string
	token      string
	http       *http.Client
	retries    int
	maxBackoff time.Duration

	mu    sync.Mutex
	etags map[string]tagged // GET path → last answer and its ETag
}

type tagged struct {
	etag string
	body []byte
}

// maxTagged bounds the ETag memory: past it the oldest half is dropped at
// random (a map), costing only a full answer on the next read.
const maxTagged = 10_000

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the http.Client (timeouts, transport); the default
// has a 10 s timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRetries sets how many times a 503 (or a connection error) is retried
// (default 3); 0 turns retries off.
func WithRetries(n int) Option { return func(c *Client) { c.retries = n } }

// WithMaxBackoff caps the wait between retries, Retry-After included
// (default 10 s).
func WithMaxBackoff(d time.Duration) Option { return func(c *Client) { c.maxBackoff = d } }

// New returns a client of the billingd at baseURL (e.g.
// "http://billingd:8080") authenticating with token (scope app).
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("billingd client: base URL must be http(s)://host[:port], not %q", baseURL)
	}
	if token == "" {
		return nil, errors.New("billingd client: token is empty")
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), token: token,
		http: &http.Client{Timeout: 10 * time.Second}, retries: 3, maxBackoff: 10 * time.Second,
		etags: map[string]tagged{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// call sends one request, retrying 503s and connection errors, and
// decodes a 2xx JSON answer into out (when out is not nil). It returns the
// final status.
func (c *Client) call(ctx context.Context, method, path string, hdr http.Header, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("billingd client: encode request: %w", err)
		}
	}
	for attempt := 0; ; attempt++ {
		status, retryAfter, err := c.once(ctx, method, path, hdr, body, out)
		if err == nil {
			return status, nil
		}
		var be *Error
		var te *transportError
		// A 503 is billingd's "a retry can succeed"; a failed connection
		// got no answer at all. Everything else is final.
		retryable := (errors.As(err, &be) && be.Status == http.StatusServiceUnavailable) ||
			(errors.As(err, &te) && ctx.Err() == nil)
		if !retryable || attempt >= c.retries {
			return status, err
		}
		wait := retryAfter
		if wait <= 0 {
			wait = time.Duration(100<<attempt) * time.Millisecond
		}
		wait = min(wait, c.maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, fmt.Errorf("billingd client: %s %s: %w (last answer: %w)", method, path, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, method, path string, hdr http.Header, body []byte, out any) (int, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, 0, fmt.Errorf("billingd client: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, &transportError{fmt.Errorf("billingd client: %s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, 0, fmt.Errorf("billingd client: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
		var env struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &env) == nil && env.Error.Code != "" {
			e.Code, e.Message = env.Error.Code, env.Error.Message
		} else {
			e.Code, e.Message = "http_"+strconv.Itoa(resp.StatusCode), http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, e.RetryAfter, e
	}
	if resp.StatusCode == http.StatusNotModified {
		return resp.StatusCode, 0, nil
	}
	if out != nil {
		if rb, ok := out.(*rawBody); ok {
			rb.body, rb.etag = raw, resp.Header.Get("ETag")
			return resp.StatusCode, 0, nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, 0, fmt.Errorf("billingd client: %s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, 0, nil
}

// transportError: the request got no answer (connection refused, reset,
// timed out).
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// rawBody asks once for the undecoded body and its ETag.
type rawBody struct {
	body []byte
	etag string
}

// getTagged GETs path, sending the ETag of the last answer for it and
// reusing that answer on 304.
func (c *Client) getTagged(ctx context.Context, path string, out any) error {
	c.mu.Lock()
	prev, have := c.etags[path]
	c.mu.Unlock()
	hdr := http.Header{}
	if have {
		hdr.Set("If-None-Match", prev.etag)
	}
	var rb rawBody
	status, err := c.call(ctx, http.MethodGet, path, hdr, nil, &rb)
	if err != nil {
		return err
	}
	body := rb.body
	if status == http.StatusNotModified && have {
		body = prev.body
	} else if rb.etag != "" {
		c.mu.Lock()
		if len(c.etags) >= maxTagged {
			n := 0
			for k := range c.etags {
				delete(c.etags, k)
				if n++; n >= maxTagged/2 {
					break
				}
			}
		}
		c.etags[path] = tagged{etag: rb.etag, body: rb.body}
		c.mu.Unlock()
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("billingd client: GET %s: decode answer: %w", path, err)
	}
	return nil
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// accountPath is /v1/accounts/{id}{suffix}, the ID escaped.
func accountPath(accountID, suffix string) string {
	return "/v1/accounts/" + url.PathEscape(accountID) + suffix
}

// newIdempotencyKey is a random key for a call that creates something in
// Stripe, so the client's own retries never create it twice.
func newIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "bdc_" + hex.EncodeToString(b[:])
}
