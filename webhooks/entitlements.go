package webhooks

import (
	"encoding/json"
	"fmt"

	"github.com/billingd/billingd/billing"
)

// Stripe Entitlements: entitlements.active_entitlement_summary.updated
// carries a customer's active features, one list page of them. Only each
// entitlement's lookup_key is read (the merchant's feature key); ids and
// feature names are not kept.
const (
	TypeEntitlementSummaryUpdated = "entitlements.active_entitlement_summary.updated"
	objectEntitlementSummary      = "entitlements.active_entitlement_summary"
)

// rawEntitlementList is the summary's "entitlements" list.
type rawEntitlementList struct {
	Data []struct {
		LookupKey string `json:"lookup_key"`
	} `json:"data"`
	HasMore bool `json:"has_more"`
}

// rawSummary is the whitelist of an active entitlement summary.
type rawSummary struct {
	Object       string              `json:"object"`
	Customer     ref                 `json:"customer"`
	Livemode     bool                `json:"livemode"`
	Entitlements *rawEntitlementList `json:"entitlements"`
}

// summaryObject decodes entitlements.active_entitlement_summary.updated.
var summaryObject = objectDecoder{
	union: func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error) {
		return summaryEvent(&rawSummary{Object: o.Object, Customer: o.Customer, Livemode: o.Livemode, Entitlements: o.Entitlements}, in, ev)
	},
	exact: func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error) {
		var rs rawSummary
		if err := json.Unmarshal(raw, &rs); err != nil {
			return ev, fmt.Errorf("%w: entitlement summary: %w", billing.ErrInvalid, err)
		}
		return summaryEvent(&rs, in, ev)
	},
}

// summaryEvent sets the event's summary. Every published shape has the
// list; without it, in a shape billingd does not know, the list may have
// moved, and an empty summary would take every feature away: the event is
// ErrDecodeIncomplete, with its envelope only. (In a known shape a null
// list reads as no entitlements, as Stripe's own fixtures of 2024 give it.)
func summaryEvent(rs *rawSummary, in objectInput, ev billing.Event) (billing.Event, error) {
	if rs.Entitlements == nil && !knownAPIVersion(in.version) {
		return ev, incompleteField("entitlement summary entitlements", in.version)
	}
	sum, err := summaryFromRaw(rs)
	ev.Entitlements = &sum
	return ev, err
}

// summaryFromRaw validates and converts a decoded summary. A list with
// more pages gives an incomplete summary: the store fetches the rest.
func summaryFromRaw(rs *rawSummary) (billing.EntitlementSummary, error) {
	if rs.Object != "" && rs.Object != objectEntitlementSummary {
		return billing.EntitlementSummary{}, invalid("object is not an active entitlement summary")
	}
	if !reCustomerID.MatchString(string(rs.Customer)) {
		return billing.EntitlementSummary{}, invalid("entitlement summary customer")
	}
	sum := billing.EntitlementSummary{CustomerID: string(rs.Customer), Livemode: rs.Livemode, Complete: true, Features: []string{}}
	if rs.Entitlements == nil {
		return sum, nil
	}
	sum.Complete = !rs.Entitlements.HasMore
	keys := make([]string, len(rs.Entitlements.Data))
	for i, d := range rs.Entitlements.Data {
		keys[i] = d.LookupKey
	}
	var err error
	sum.Features, err = EntitlementKeys(keys)
	return sum, err
}

// EntitlementKeys checks the lookup keys of a list of active entitlements
// (an event's page or the API's list) and deduplicates them in order. A
// key outside the feature key alphabet is refused, not dropped: a feature
// must never silently go missing.
func EntitlementKeys(keys []string) ([]string, error) {
	if len(keys) > billing.MaxSummaryFeatures {
		return nil, outOfRange("entitlement summary entitlements")
	}
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !billing.ValidFeatureKey(k) {
			return nil, invalid("entitlement lookup_key")
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// DecodeActiveEntitlement reads the lookup key of one active entitlement
// object (entitlements.active_entitlement, an API list's element).
func DecodeActiveEntitlement(raw []byte) (string, error) {
	var o struct {
		Object    string `json:"object"`
		LookupKey string `json:"lookup_key"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("%w: active entitlement: %w", billing.ErrInvalid, err)
	}
	if o.Object != "" && o.Object != "entitlements.active_entitlement" {
		return "", invalid("object is not an active entitlement")
	}
	return o.LookupKey, nil
}
