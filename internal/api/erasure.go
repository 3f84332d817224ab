package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/billingd/billingd/billing"
	"github.com/gorilla/mux"
)

// AccountEraser erases every link between an account and Stripe.
type AccountEraser interface {
	EraseAccount(ctx context.Context, req billing.ErasureRequest) (billing.ErasureResult, error)
}

// erasureFlags are the query parameters DELETE /v1/accounts/{account_id}
// accepts, each "true" or "false".
var erasureFlags = []string{"cancel_subscriptions", "delete_customer", "erase_profitwell"}

// handleAccountErase erases an account's billing links:
// DELETE /v1/accounts/{account_id}, scope app. Always 204 for a well-formed
// request, whether the account existed, was erased before, or was never
// known, so the endpoint does not reveal which accounts exist. Flags:
// cancel_subscriptions, delete_customer (Stripe calls made by a durable job
// after commit) and erase_profitwell.
func (s *Server) handleAccountErase(w http.ResponseWriter, r *http.Request) {
	accountID := mux.Vars(r)["account_id"]
	if !billing.ValidAccountID(accountID) {
		writeError(w, http.StatusBadRequest, "invalid_account_id", "account_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
		return
	}
	flags, code, msg := parseErasureFlags(r.URL.Query())
	if code != "" {
		writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	if s.Eraser == nil {
		writeError(w, http.StatusServiceUnavailable, "erasure_unavailable", "account erasure is not configured")
		return
	}
	actor := TokenName(r.Context())
	if actor == "" {
		actor = "api"
	}
	req := billing.ErasureRequest{
		AccountID:           accountID,
		Actor:               actor,
		CancelSubscriptions: flags["cancel_subscriptions"],
		DeleteCustomer:      flags["delete_customer"],
		EraseProfitWell:     flags["erase_profitwell"],
	}
	res, err := s.Eraser.EraseAccount(r.Context(), req)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// Counts only: the account ID is personal data of a person who just
	// asked to be forgotten.
	s.Log.Info("account erased", "request_id", RequestID(r.Context()), "actor", actor,
		"customers", res.Customers, "subscriptions", res.Subscriptions, "stripe_jobs", res.StripeJobs,
		"profitwell_churns", res.ProfitWellChurn, "profitwell_erasures", res.ProfitWellErase)
	w.WriteHeader(http.StatusNoContent)
}

// parseErasureFlags reads the boolean flags strictly: only "true" and
// "false", each at most once, and no other parameter. A typo must not
// silently skip deleting the customer in Stripe. It returns an error code
// and message when the query is refused.
func parseErasureFlags(q url.Values) (map[string]bool, string, string) {
	out := make(map[string]bool, len(erasureFlags))
	known := make(map[string]bool, len(erasureFlags))
	for _, f := range erasureFlags {
		known[f] = true
	}
	for name, vals := range q {
		if !known[name] {
			return nil, "unknown_parameter", "unknown query parameter " + quoteParam(name) + "; accepted: cancel_subscriptions, delete_customer, erase_profitwell"
		}
		if len(vals) != 1 {
			return nil, "invalid_flag", name + " may be given once"
		}
		switch vals[0] {
		case "true":
			out[name] = true
		case "false":
			out[name] = false
		default:
			return nil, "invalid_flag", name + " must be true or false"
		}
	}
	return out, "", ""
}

// quoteParam quotes a caller's parameter name for an error message, cut
// short so a long name cannot bloat the response.
func quoteParam(name string) string {
	if len(name) > 40 {
		name = name[:40] + "..."
	}
	return `"` + url.QueryEscape(name) + `"`
}
