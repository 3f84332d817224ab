package api

import (
	"context"
	"net/http"

	"github.com/billingd/billingd/billing"
	"github.com/gorilla/mux"
)

// AccountExporter gathers everything billingd holds about one account.
type AccountExporter interface {
	AccountExport(ctx context.Context, accountID string) (billing.AccountExport, error)
}

// handleAccountExport answers a subject access request (GDPR Art. 15):
// GET /v1/accounts/{account_id}/export, scope app. An account billingd does
// not know gets 200 with an empty export: "we hold nothing" is the answer,
// and a 404 would only tell a caller which accounts exist.
func (s *Server) handleAccountExport(w http.ResponseWriter, r *http.Request) {
	accountID := mux.Vars(r)["account_id"]
	if !billing.ValidAccountID(accountID) {
		writeError(w, http.StatusBadRequest, "invalid_account_id", "account_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
		return
	}
	if s.Exporter == nil {
		writeError(w, http.StatusServiceUnavailable, "export_unavailable", "account export is not configured")
		return
	}
	exp, err := s.Exporter.AccountExport(r.Context(), accountID)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// The export names the account's Stripe IDs: no cache may keep a copy.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, exp)
}
