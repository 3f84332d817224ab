package api

import (
	"net/http"

	"github.com/billingd/billingd/billing"
)

// handlePlanNames serves GET /v1/catalog/plans?livemode= (scope finance):
// every price of the mode with the name screens show for it ("Pro
// (yearly)"), from the merchant's catalog; reports and the dashboard join
// it on price_id. Served when the revenue store reads the catalog
// (billing.CatalogReader).
func (s *Server) handlePlanNames(w http.ResponseWriter, r *http.Request) {
	cr, ok := s.Revenue.(billing.CatalogReader)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "catalog_unavailable", "the catalog is not configured")
		return
	}
	live, perr := parseLivemode(r.URL.Query().Get("livemode"))
	if perr != nil {
		writeError(w, http.StatusBadRequest, perr.Code, perr.Message)
		return
	}
	plans, err := cr.PlanNames(r.Context(), live)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, map[string]any{"livemode": live, "plans": plans})
}
