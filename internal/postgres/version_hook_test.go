package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/billingd/billingd/billing"
	"github.com/jmoiron/sqlx"
)

// QWriteSubscriptionsForTest is the event path's subscription statement,
// for the external tests that pin its column list.
const QWriteSubscriptionsForTest = qWriteSubscriptions

// VersionKeyForTest is the version key the event path gives a subscription
// delivered at created by event eventID: created at the precision stored
// (versionTime), then billing.SubscriptionVersionKey.
func VersionKeyForTest(s billing.Subscription, created time.Time, eventID string) billing.VersionKey {
	return billing.SubscriptionVersionKey(s, versionTime(created), eventID)
}

// SubscriptionDocNamesForTest returns the JSON names of the store's own
// subscription shape (subscriptionDoc) and of the input row of
// qWriteSubscriptions (subVersionInput, the shape and what it adds).
func SubscriptionDocNamesForTest() (doc, input []string) {
	return jsonNames(reflect.TypeFor[subscriptionDoc]()), jsonNames(reflect.TypeFor[subVersionInput]())
}

func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// WriteVersionForTest runs qWriteSubscriptions in tx for one version of
// one subscription (its newest in the batch, its customer customerRef
// first seen) and returns what the statement reports: whether it inserted
// or replaced current state, and the state it replaced (nil for none),
// decoded as the event path decodes it.
func WriteVersionForTest(ctx context.Context, tx *sqlx.Tx, s billing.Subscription, k billing.VersionKey, customerRef string) (changed bool, prev *billing.Subscription, prevKey *billing.VersionKey, err error) {
	mrr, fixed := billing.SubscriptionMRR(s)
	in := []subVersionInput{{subscriptionDoc: toSubscriptionDoc(s, k), CustomerRef: customerRef, MRR: mrr, Fixed: fixed,
		Newest: true, CusNew: true}}
	doc, err := json.Marshal(in)
	if err != nil {
		return false, nil, nil, err
	}
	var res struct {
		Subs    []byte `db:"subs"`
		History []byte `db:"history"`
	}
	if err := tx.QueryRowxContext(ctx, qWriteSubscriptions, string(doc)).StructScan(&res); err != nil {
		return false, nil, nil, err
	}
	var written []struct {
		Changed bool            `json:"changed"`
		Old     json.RawMessage `json:"old"`
	}
	if err := json.Unmarshal(res.Subs, &written); err != nil {
		return false, nil, nil, err
	}
	if len(written) != 1 {
		return false, nil, nil, fmt.Errorf("%d results for one subscription", len(written))
	}
	w := written[0]
	if len(w.Old) > 0 && string(w.Old) != "null" {
		var o subscriptionDoc
		if err := json.Unmarshal(w.Old, &o); err != nil {
			return false, nil, nil, err
		}
		p, pk := o.toSubscription()
		prev, prevKey = &p, &pk
	}
	return w.Changed, prev, prevKey, nil
}
