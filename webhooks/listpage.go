package webhooks

import (
	"encoding/json"
	"fmt"

	"github.com/billingd/billingd/billing"
)

// Listed is one object of a list page: the decoded object, or the error
// that object alone failed with, plus its ID and creation time (unix
// seconds; 0 when absent or beyond year 9999) as listed, which paging and
// failure reports need whether or not it decoded.
type Listed[T any] struct {
	Object  T
	ID      string
	Created int64
	Err     error
}

// ListPage is a Stripe list page ({"data": [...], "has_more": ...}).
type ListPage[T any] struct {
	Objects []Listed[T]
	HasMore bool
}

// DecodeSubscriptionPage decodes a page of the subscription list in one
// json.Unmarshal of the whole body: a backfill's CPU goes mostly to
// reading JSON, and each object read on its own costs another validation
// and decode of its bytes. Each object is then converted as
// DecodeSubscription would, its error its own. Only when the page itself
// does not decode (one object holds a field of the wrong type or a number
// beyond its field) is each object decoded alone, so that the bad one
// fails with DecodeSubscription's error and the others still apply. The
// error is for a body that is no list at all.
func DecodeSubscriptionPage(body []byte) (ListPage[billing.Subscription], error) {
	return decodePage(body, listedSubscriptionFromRaw, listedSubscription)
}

// DecodeCustomerPage is DecodeSubscriptionPage for the customer list,
// each object read as DecodeCustomer would, with its creation time.
func DecodeCustomerPage(body []byte) (ListPage[billing.Customer], error) {
	return decodePage(body, listedCustomerFromRaw, listedCustomer)
}

// decodePage decodes a page of raw wire objects (R) in one pass and
// converts each (fromRaw); when the page does not decode, each object is
// decoded alone (alone).
func decodePage[R, T any](body []byte, fromRaw func(*R) Listed[T], alone func([]byte) Listed[T]) (ListPage[T], error) {
	var page struct {
		Data    []R  `json:"data"`
		HasMore bool `json:"has_more"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return decodeEachAlone(body, alone)
	}
	out := ListPage[T]{Objects: make([]Listed[T], len(page.Data)), HasMore: page.HasMore}
	for i := range page.Data {
		out.Objects[i] = fromRaw(&page.Data[i])
	}
	return out, nil
}

// decodeEachAlone is the page decoders' fallback: the page split into its
// objects' bytes, each decoded by itself.
func decodeEachAlone[T any](body []byte, decode func([]byte) Listed[T]) (ListPage[T], error) {
	var page struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return ListPage[T]{}, fmt.Errorf("read list page: %w", err)
	}
	out := ListPage[T]{Objects: make([]Listed[T], len(page.Data)), HasMore: page.HasMore}
	for i, raw := range page.Data {
		out.Objects[i] = decode(raw)
	}
	return out, nil
}

func listedSubscription(raw []byte) Listed[billing.Subscription] {
	var rs rawSubscription
	if err := json.Unmarshal(raw, &rs); err != nil {
		return failedListed[billing.Subscription](raw, subscriptionJSONError(err))
	}
	return listedSubscriptionFromRaw(&rs)
}

func listedSubscriptionFromRaw(rs *rawSubscription) Listed[billing.Subscription] {
	o := Listed[billing.Subscription]{ID: rs.ID}
	if rs.Created != nil {
		o.Created = listedCreated(*rs.Created)
	}
	o.Object, o.Err = subscriptionFromRaw(rs)
	return o
}

func listedCustomer(raw []byte) Listed[billing.Customer] {
	var rc rawCustomer
	if err := json.Unmarshal(raw, &rc); err != nil {
		return failedListed[billing.Customer](raw, customerJSONError(err))
	}
	return listedCustomerFromRaw(&rc)
}

func listedCustomerFromRaw(rc *rawCustomer) Listed[billing.Customer] {
	o := Listed[billing.Customer]{ID: rc.ID, Created: listedCreated(rc.Created)}
	o.Object, o.Err = customerFromRaw(rc)
	return o
}

// failedListed is an object whose bytes did not decode: its ID and
// creation read once more on their own, since a decode error may have
// stopped the full decode before reaching them.
func failedListed[T any](raw []byte, err error) Listed[T] {
	var h struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
	}
	_ = json.Unmarshal(raw, &h)
	return Listed[T]{ID: h.ID, Created: listedCreated(h.Created), Err: err}
}

// listedCreated drops a creation time no Stripe object has: paging would
// carry it into a cursor no timestamptz column holds.
func listedCreated(unix int64) int64 {
	if unix > maxUnix {
		return 0
	}
	return unix
}
