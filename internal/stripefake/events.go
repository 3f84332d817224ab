package stripefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// storedEvent is one event the Events API lists, kept as the bytes
// Stripe would serve (an event keeps the API version it was created
// with).
type storedEvent struct {
	id      string
	typ     string
	created time.Time
	raw     json.RawMessage
}

// PutEvent adds an event (a rendered envelope, e.g. from Event or
// EventVersion) to the Events API, as Stripe records every event whether
// or not a webhook endpoint ever received it. Its id, type and created
// are read from the bytes.
func (s *Server) PutEvent(raw []byte) error {
	var e struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Created int64  `json:"created"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.ID == "" || e.Type == "" || e.Created <= 0 {
		return fmt.Errorf("stripefake: event needs id, type and created: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = slices.DeleteFunc(s.events, func(o storedEvent) bool { return o.id == e.ID })
	s.events = append(s.events, storedEvent{id: e.ID, typ: e.Type, created: time.Unix(e.Created, 0).UTC(), raw: slices.Clone(raw)})
	return nil
}

// listEvents answers GET /v1/events as Stripe does: newest first,
// filtered by type or types[] (at most 20) and created, paginated forward
// with starting_after or backward (towards newer events) with
// ending_before, whose page is the limit events just newer than the
// named one, still newest first.
func (s *Server) listEvents(w http.ResponseWriter, q url.Values) int {
	p, err := parsePage(q)
	if err != nil {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", err.Error())
	}
	types, err := eventTypes(q)
	if err != nil {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", err.Error())
	}
	for _, f := range []struct {
		name string
		fn   func(c, v int64) bool
	}{{"created[gt]", func(c, v int64) bool { return c > v }}, {"created[lt]", func(c, v int64) bool { return c < v }}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", f.name+" must be a unix time")
			}
			types = andCreated(types, f.fn, n)
		}
	}
	var all []listed
	for _, e := range s.events {
		if !p.inRange(e.created) || !types(e) {
			continue
		}
		all = append(all, listed{id: e.id, created: e.created, obj: map[string]any{"raw": e.raw}})
	}
	before := q.Get("ending_before")
	if before == "" {
		return p.window(w, "/v1/events", all, rawEvent)
	}
	sortListed(all)
	i := slices.IndexFunc(s.events, func(e storedEvent) bool { return e.id == before })
	if i < 0 {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such event: '"+before+"'")
	}
	anchor := listed{id: before, created: s.events[i].created}
	// The events newer than the anchor, in list order (newest first).
	end := slices.IndexFunc(all, func(l listed) bool { return !newer(l, anchor) })
	if end < 0 {
		end = len(all)
	}
	start := max(0, end-p.limit)
	data := make([]any, 0, end-start)
	for _, l := range all[start:end] {
		data = append(data, rawEvent(l))
	}
	return writeObject(w, map[string]any{"object": "list", "url": "/v1/events", "has_more": start > 0, "data": data})
}

// newer reports whether a comes before b in list order (newest first).
func newer(a, b listed) bool {
	if c := a.created.Compare(b.created); c != 0 {
		return c > 0
	}
	return a.id > b.id
}

func rawEvent(l listed) any { return l.obj["raw"] }

// eventTypes reads type or types[] into a filter.
func eventTypes(q url.Values) (func(storedEvent) bool, error) {
	var types []string
	for k, vs := range q {
		if k == "types" || strings.HasPrefix(k, "types[") {
			types = append(types, vs...)
		}
	}
	one := q.Get("type")
	switch {
	case one != "" && len(types) > 0:
		return nil, fmt.Errorf("pass either type or types, not both")
	case len(types) > 20:
		return nil, fmt.Errorf("types may name at most 20 event types")
	case one != "":
		prefix, wild := strings.CutSuffix(one, "*")
		return func(e storedEvent) bool { return e.typ == one || wild && strings.HasPrefix(e.typ, prefix) }, nil
	case len(types) > 0:
		return func(e storedEvent) bool { return slices.Contains(types, e.typ) }, nil
	}
	return func(storedEvent) bool { return true }, nil
}

func andCreated(f func(storedEvent) bool, cmp func(c, v int64) bool, v int64) func(storedEvent) bool {
	return func(e storedEvent) bool { return f(e) && cmp(e.created.Unix(), v) }
}

// EventVersion renders a Stripe event envelope of the given API version
// around obj, as the Events API and a webhook endpoint of that version
// serve it.
func EventVersion(id, typ, apiVersion string, created time.Time, livemode bool, obj map[string]any) ([]byte, error) {
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "created": created.Unix(), "livemode": livemode,
		"api_version": apiVersion, "pending_webhooks": 1,
		"request": map[string]any{"id": "req_" + strings.TrimPrefix(id, "evt_"), "idempotency_key": PersonalEmail},
		"data":    map[string]any{"object": obj, "previous_attributes": map[string]any{"description": PersonalDescription}},
	})
	if err != nil {
		return nil, fmt.Errorf("render event: %w", err)
	}
	return b, nil
}
