package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Change is one change of an account's entitlement answer.
type Change struct {
	Cursor      string      `json:"cursor"`
	AccountID   string      `json:"account_id"`
	Livemode    bool        `json:"livemode"`
	At          time.Time   `json:"at"`
	Entitlement Entitlement `json:"entitlement"`
}

// ChangesPage is one page of the change feed; pass NextCursor as after to
// read on.
type ChangesPage struct {
	Changes    []Change `json:"changes"`
	NextCursor string   `json:"next_cursor"`
}

// Changes reads the change feed after a cursor ("" from its start), at
// most limit entries (0: billingd's default, 100). ErrCursorExpired means
// the cursor is older than billingd keeps: read every account's
// entitlement again, then follow the feed from its start.
func (c *Client) Changes(ctx context.Context, after string, limit int) (*ChangesPage, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/changes"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p ChangesPage
	if _, err := c.call(ctx, http.MethodGet, path, nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
