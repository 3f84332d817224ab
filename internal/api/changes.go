package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/billingd/billingd/billing"
)

// ChangeFeed reads the change feed (*postgres.Store.Changes): up to limit
// entries after the position after, or billing.ErrCursorExpired.
type ChangeFeed interface {
	Changes(ctx context.Context, after int64, limit int) ([]billing.Change, error)
}

// Limits of GET /v1/changes's limit parameter.
const (
	defaultChangesLimit = 100
	maxChangesLimit     = 1000
)

// changeJSON is one entry of GET /v1/changes.
type changeJSON struct {
	Cursor      string          `json:"cursor"`
	AccountID   string          `json:"account_id"`
	Livemode    bool            `json:"livemode"`
	At          string          `json:"at"`
	Entitlement json.RawMessage `json:"entitlement"`
}

type changesJSON struct {
	Changes    []changeJSON `json:"changes"`
	NextCursor string       `json:"next_cursor"`
}

// handleChanges: GET /v1/changes?after=<cursor>&limit=<n>. Entries come in
// feed order; next_cursor is the last entry's cursor (or after itself when
// there is none yet), to pass as after on the next call. A cursor older
// than CHANGES_RETENTION answers 410 cursor_expired: entries after it are
// gone, and the consumer must resynchronise.
func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "after" && k != "limit" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter; use after and limit")
			return
		}
	}
	if len(q["after"]) > 1 || len(q["limit"]) > 1 {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "after and limit may be given once each")
		return
	}
	after, err := billing.ParseCursor(q.Get("after"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_cursor", "after must be a cursor this feed returned")
		return
	}
	limit := defaultChangesLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChangesLimit {
			writeError(w, http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	if s.Changes == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the change feed is off: set CHANGE_FEED=true (or APP_WEBHOOK_URL)")
		return
	}
	changes, err := s.Changes.Changes(r.Context(), after, limit)
	if errors.Is(err, billing.ErrCursorExpired) {
		writeError(w, http.StatusGone, "cursor_expired",
			"entries after this cursor were purged (CHANGES_RETENTION): read every account's entitlement again, then follow the feed without a cursor")
		return
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := changesJSON{Changes: make([]changeJSON, len(changes)), NextCursor: q.Get("after")}
	for i, c := range changes {
		out.Changes[i] = changeJSON{Cursor: c.Cursor(), AccountID: c.AccountID, Livemode: c.Livemode,
			At: c.At.UTC().Format(time.RFC3339Nano), Entitlement: c.Entitlement}
		out.NextCursor = c.Cursor()
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
