package stripefake

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Stripe Entitlements in the fake: each customer's active features by
// lookup key, listed by GET /v1/entitlements/active_entitlements
// ?customer=... (paginated like every list), and the summary object the
// entitlements.active_entitlement_summary.updated event carries, in
// Stripe's (and stripe-mock's) shapes.

// PutEntitlements sets a customer's active features (lookup keys).
func (s *Server) PutEntitlements(customerID string, lookupKeys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entitlements == nil {
		s.entitlements = map[string][]string{}
	}
	s.entitlements[customerID] = slices.Clone(lookupKeys)
}

// activeEntitlement is one entitlements.active_entitlement object; its ID
// is derived from the customer and the key so that pages are stable.
func activeEntitlement(customerID string, i int, key string, livemode bool) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("ent_%s%04d", customerID[len("cus_"):], i), "object": "entitlements.active_entitlement",
		"feature": fmt.Sprintf("feat_%04d", i), "livemode": livemode, "lookup_key": key,
	}
}

// SummaryObject is the data.object of an
// entitlements.active_entitlement_summary.updated event for the customer:
// its first pageSize active entitlements, with has_more when there are
// more, as Stripe sends it.
func (s *Server) SummaryObject(customerID string, livemode bool, pageSize int) map[string]any {
	s.mu.Lock()
	keys := slices.Clone(s.entitlements[customerID])
	s.mu.Unlock()
	data := []any{}
	for i, k := range keys {
		if i == pageSize {
			break
		}
		data = append(data, activeEntitlement(customerID, i, k, livemode))
	}
	return map[string]any{
		"object": "entitlements.active_entitlement_summary", "customer": customerID, "livemode": livemode,
		"entitlements": map[string]any{"object": "list", "data": data, "has_more": len(keys) > pageSize,
			"url": "/v1/customer/" + customerID + "/entitlements"},
	}
}

// listActiveEntitlements answers GET /v1/entitlements/active_entitlements.
func (s *Server) listActiveEntitlements(w http.ResponseWriter, q url.Values) int {
	p, err := parsePage(q)
	if err != nil {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", err.Error())
	}
	cus := q.Get("customer")
	if cus == "" {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing required param: customer.")
	}
	c, known := s.customers[cus]
	keys, has := s.entitlements[cus]
	if !known && !has {
		return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such customer: '"+cus+"'")
	}
	live := c != nil && c.Livemode
	all := make([]listed, 0, len(keys))
	for i, k := range keys {
		o := activeEntitlement(cus, i, k, live)
		// One creation time for all: the list is ordered by ID, newest
		// (highest) first, as the fake lists everything.
		all = append(all, listed{id: o["id"].(string), created: time.Unix(0, 0), obj: o})
	}
	return p.window(w, "/v1/entitlements/active_entitlements", all)
}
