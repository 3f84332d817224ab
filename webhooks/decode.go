// Package webhooks receives Stripe webhook events: it verifies their
// signature, decodes the few whitelisted fields billingd keeps into billing
// values, and hands them to the one-transaction-per-event apply path.
// Stripe types and payloads stop here: nothing past this package sees them.
package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/billingd/billingd/billing"
)

// The handled event types. Anything else is acknowledged and counted only.
const (
	TypeCustomerCreated              = "customer.created"
	TypeCustomerUpdated              = "customer.updated"
	TypeCustomerDeleted              = "customer.deleted"
	TypeSubscriptionCreated          = "customer.subscription.created"
	TypeSubscriptionUpdated          = "customer.subscription.updated"
	TypeSubscriptionDeleted          = "customer.subscription.deleted"
	TypeSubscriptionPaused           = "customer.subscription.paused"
	TypeSubscriptionResumed          = "customer.subscription.resumed"
	TypeSubscriptionTrialWillEnd     = "customer.subscription.trial_will_end"
	TypeSubscriptionPendingApplied   = "customer.subscription.pending_update_applied"
	TypeInvoicePaid                  = "invoice.paid"
	TypeInvoicePaymentFailed         = "invoice.payment_failed"
	TypeCheckoutSessionCompleted     = "checkout.session.completed"
	TypeTestClockCreated             = "test_helpers.test_clock.created"
	TypeTestClockAdvancing           = "test_helpers.test_clock.advancing"
	TypeTestClockReady               = "test_helpers.test_clock.ready"
	TypeTestClockInternalFailure     = "test_helpers.test_clock.internal_failure"
	TypeTestClockDeleted             = "test_helpers.test_clock.deleted"
	typeOther                        = "other"
	maxEventTypeLen                  = 100
	maxIDLen                         = 255
	maxDecimalLen                    = 40
	objectCustomer, objectSub        = "customer", "subscription"
	objectInvoice, objectCheckoutSes = "invoice", "checkout.session"
)

// eventTypes is the table of the event types billingd reads: each names
// the decoder of its data.object, which fills the matching field of
// billing.Event. Everything else about an event follows from that object:
// the IDs it touches (billing.EventObject.Subjects) and how the store
// applies it. Adding an event type of a kind already read is one line
// here; a new kind of object is a decoder (an objectDecoder in a file of
// its own, like invoice.go), a billing type implementing
// billing.EventObject, and its apply function in internal/postgres (see
// that package's comment).
var eventTypes = map[string]objectDecoder{
	TypeCustomerCreated:            customerObject,
	TypeCustomerUpdated:            customerObject,
	TypeCustomerDeleted:            customerObject,
	TypeSubscriptionCreated:        subscriptionObject,
	TypeSubscriptionUpdated:        subscriptionObject,
	TypeSubscriptionDeleted:        subscriptionObject,
	TypeSubscriptionPaused:         subscriptionObject,
	TypeSubscriptionResumed:        subscriptionObject,
	TypeSubscriptionTrialWillEnd:   subscriptionObject,
	TypeSubscriptionPendingApplied: subscriptionObject,
	TypeInvoicePaid:                invoiceObject,
	TypeInvoicePaymentFailed:       invoiceObject,
	TypeCheckoutSessionCompleted:   checkoutObject,
	TypeScheduleCreated:            scheduleObject,
	TypeScheduleUpdated:            scheduleObject,
	TypeScheduleReleased:           scheduleObject,
	TypeScheduleCanceled:           scheduleObject,
	TypeScheduleCompleted:          scheduleObject,
	TypeScheduleAborted:            scheduleObject,
	TypeScheduleExpiring:           scheduleObject,
	TypeEntitlementSummaryUpdated:  summaryObject,
	TypeTestClockCreated:           testClockObject,
	TypeTestClockAdvancing:         testClockObject,
	TypeTestClockReady:             testClockObject,
	TypeTestClockInternalFailure:   testClockObject,
	TypeTestClockDeleted:           testClockObject,
	TypeCustomerDiscountCreated:    discountObject,
	TypeCustomerDiscountUpdated:    discountObject,
	TypeCustomerDiscountDeleted:    discountObject,
	TypeProductCreated:             productObject,
	TypeProductUpdated:             productObject,
	TypeProductDeleted:             productObject,
	TypePriceCreated:               priceObject,
	TypePriceUpdated:               priceObject,
	TypePriceDeleted:               priceObject,
}

// objectDecoder reads one kind of data.object into a billing.Event (the
// Customer, Subscription, Invoice or Checkout field), reading whitelisted
// fields only. Errors wrap billing.ErrInvalid.
type objectDecoder struct {
	// union converts the kind's fields of the one-pass decode of the
	// whole event: a new kind adds its whitelisted fields to rawObject
	// (their JSON names must not clash with another kind's of a different
	// type, or every event of either takes the second pass).
	union func(o *rawObject, in objectInput, ev billing.Event) (billing.Event, error)
	// exact decodes the object's own bytes with its kind's whitelist
	// alone: the second pass, taken when a field that only another kind
	// reads had an unexpected type.
	exact func(raw []byte, in objectInput, ev billing.Event) (billing.Event, error)
}

// objectInput is what a decoder may read besides the object: the event's
// type, creation and API version, and the verifier of signed client
// references.
type objectInput struct {
	eventType string
	created   time.Time
	links     *billing.LinkVerifier
	version   string
}

// Handled reports whether billingd reads events of this type.
func Handled(eventType string) bool { _, ok := eventTypes[eventType]; return ok }

// HandledTypes lists the event types billingd reads, for documentation and
// for the Stripe endpoint's enabled_events.
func HandledTypes() []string {
	out := make([]string, 0, len(eventTypes))
	for t := range eventTypes {
		out = append(out, t)
	}
	return out
}

var (
	reEventID        = regexp.MustCompile(`^evt_[A-Za-z0-9_]{1,250}$`)
	reCustomerID     = regexp.MustCompile(`^cus_[A-Za-z0-9]{1,250}$`)
	reSubscriptionID = regexp.MustCompile(`^sub_[A-Za-z0-9]{1,250}$`)
	reCurrency       = regexp.MustCompile(`^[a-z]{3}$`)
	// Price and product IDs are generated (price_..., prod_...) or, for
	// legacy plans, chosen by the merchant; anything outside this alphabet
	// is dropped rather than stored.
	reObjectID = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,255}$`)
	reDecimal  = regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{1,12})?$`)
	// Discount IDs are generated (di_...); they are kept only while a
	// discount's amounts wait to be fetched.
	reDiscountID = regexp.MustCompile(`^di_[A-Za-z0-9]{1,250}$`)
)

// ErrUnhandled is returned by DecodeEvent for an event type billingd does
// not read; the returned Event still carries ID, Type and Created.
var ErrUnhandled = errors.New("unhandled event type")

// ErrDecodeIncomplete is returned by DecodeEvent when a field billingd
// needs decodes as absent from an event of an API version whose shapes it
// does not know (versions.go): a shape it cannot read, not a payload to
// store with nulls. The returned Event carries ID, Type and Created; the
// caller counts it, logs the event ID and applies nothing.
var ErrDecodeIncomplete = errors.New("a needed field is absent in an API shape billingd does not know")

// invalid marks a payload that can never be stored. Messages name the
// field, never its value: values may be personal data.
func invalid(what string) error { return fmt.Errorf("%w: %s", billing.ErrInvalid, what) }

// rawEnvelope is the envelope of a Stripe event. data.previous_attributes
// and request are never read.
type rawEnvelope struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Type     string `json:"type"`
	Created  int64  `json:"created"`
	Livemode bool   `json:"livemode"`
	Account  string `json:"account"`
	// APIVersion names the shapes of the object (versions.go).
	APIVersion string `json:"api_version"`
}

// rawObject is the union of the whitelisted fields of every object kind
// billingd reads (their JSON names do not clash), so that an event and its
// object decode in one pass over the payload (objectDecoder.union).
type rawObject struct {
	rawSubscription
	Deleted            bool       `json:"deleted"`              // customer
	Subscription       ref        `json:"subscription"`         // invoice up to 2025-02-24, checkout session
	AttemptCount       int64      `json:"attempt_count"`        // invoice
	NextPaymentAttempt *int64     `json:"next_payment_attempt"` // invoice
	Parent             *rawParent `json:"parent"`               // invoice from 2025-03-31
	Lines              *rawLines  `json:"lines"`                // invoice
	ClientReferenceID  string     `json:"client_reference_id"`  // checkout session
	EndBehavior        string     `json:"end_behavior"`         // subscription schedule
	Phases             []rawPhase `json:"phases"`               // subscription schedule
	// entitlements.active_entitlement_summary
	Entitlements *rawEntitlementList `json:"entitlements"`
	FrozenTime   *int64              `json:"frozen_time"` // test clock
	Coupon       *rawCoupon          `json:"coupon"`      // discount up to 2025-02-24
	Source       *struct {
		Coupon couponRef `json:"coupon"`
	} `json:"source"` // discount from 2025-03-31
	Start            *int64        `json:"start"`             // discount
	End              *int64        `json:"end"`               // discount
	SubscriptionItem *string       `json:"subscription_item"` // discount
	InvoiceID        *string       `json:"invoice"`           // discount
	Active           bool          `json:"active"`            // product, price
	Name             *string       `json:"name"`              // product
	Nickname         *string       `json:"nickname"`          // price
	Product          ref           `json:"product"`           // price
	UnitAmount       *int64        `json:"unit_amount"`       // price
	BillingScheme    string        `json:"billing_scheme"`    // price
	TaxBehavior      string        `json:"tax_behavior"`      // price
	Recurring        *rawRecurring `json:"recurring"`         // price
}

// rawEvent is an event decoded in one pass.
type rawEvent struct {
	rawEnvelope
	Data struct {
		Object *rawObject `json:"object"`
	} `json:"data"`
}

// rawEventExact keeps the object's bytes for a decoder of its own kind.
type rawEventExact struct {
	rawEnvelope
	Data struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// DecodeOptions configures DecodeEvent.
type DecodeOptions struct {
	// Links checks client_reference_id on checkout sessions (signature,
	// key, expiry as of the event's creation); nil refuses every reference.
	Links *billing.LinkVerifier
}

// DecodeEvent turns a verified Stripe event payload into a billing.Event,
// reading whitelisted fields only and accepting the object shapes of every
// API version from 2023-10-16 to NewestKnownAPIVersion (versions.go); an
// event of a newer version lacking a needed field is ErrDecodeIncomplete,
// returned with its envelope. For an unhandled type it returns the
// envelope with ErrUnhandled; for a Connect event (top-level "account") it
// returns the envelope with Connect set and no object. Errors wrap
// billing.ErrInvalid.
func DecodeEvent(raw []byte, opt DecodeOptions) (billing.Event, error) {
	var re rawEvent
	if err := json.Unmarshal(raw, &re); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// A field had an unexpected type: maybe one that only another
			// object kind reads. Decode again, reading only this kind's.
			return decodeEventExact(raw, opt)
		}
		return billing.Event{}, fmt.Errorf("%w: event is not valid JSON: %w", billing.ErrInvalid, err)
	}
	ev, dec, err := envelope(&re.rawEnvelope)
	if err != nil || ev.Connect {
		return ev, err
	}
	obj := re.Data.Object
	if obj == nil {
		return ev, invalid("event data.object missing")
	}
	ev, err = dec.union(obj, objectInput{eventType: re.Type, created: ev.Created, links: opt.Links, version: re.APIVersion}, ev)
	if err != nil {
		return ev, fmt.Errorf("decode %s: %w", re.Type, err)
	}
	return checkComplete(ev, re.APIVersion)
}

// checkComplete refuses a decoded event of an unknown API version that
// lacks a needed field (versions.go), returning its envelope only, so
// nothing of it can be applied.
func checkComplete(ev billing.Event, version string) (billing.Event, error) {
	if err := incomplete(ev, version); err != nil {
		return billing.Event{ID: ev.ID, Type: ev.Type, Created: ev.Created, Livemode: ev.Livemode}, fmt.Errorf("decode %s: %w", ev.Type, err)
	}
	return ev, nil
}

// envelope validates the envelope of an event and returns it with the
// decoder of its object (eventTypes); ErrUnhandled for types billingd does
// not read.
func envelope(re *rawEnvelope) (billing.Event, objectDecoder, error) {
	if re.Type == "" || len(re.Type) > maxEventTypeLen {
		return billing.Event{}, objectDecoder{}, invalid("event type missing or too long")
	}
	ev := billing.Event{ID: re.ID, Type: re.Type, Livemode: re.Livemode, Connect: re.Account != ""}
	if re.Created > 0 && re.Created <= maxUnix {
		ev.Created = time.Unix(re.Created, 0).UTC()
	}
	dec, ok := eventTypes[re.Type]
	if !ok {
		return ev, objectDecoder{}, ErrUnhandled
	}
	if !reEventID.MatchString(re.ID) {
		return ev, objectDecoder{}, invalid("event id")
	}
	if ev.Created.IsZero() {
		return ev, objectDecoder{}, invalid("event created")
	}
	return ev, dec, nil
}

// decodeEventExact decodes the envelope, then the object with the decoder
// of its kind, which reads that kind's fields only.
func decodeEventExact(raw []byte, opt DecodeOptions) (billing.Event, error) {
	var re rawEventExact
	if err := json.Unmarshal(raw, &re); err != nil {
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || te.Field == "" || strings.HasPrefix(te.Field, "data") {
			return billing.Event{}, fmt.Errorf("%w: event is not valid JSON: %w", billing.ErrInvalid, err)
		}
		// An envelope field of the wrong type: reported below if it
		// matters (type, id, created), ignored if not.
	}
	ev, dec, err := envelope(&re.rawEnvelope)
	if err != nil || ev.Connect {
		return ev, err
	}
	obj := re.Data.Object
	if len(obj) == 0 || bytes.Equal(obj, []byte("null")) {
		return ev, invalid("event data.object missing")
	}
	ev, err = dec.exact(obj, objectInput{eventType: re.Type, created: ev.Created, links: opt.Links, version: re.APIVersion}, ev)
	if err != nil {
		return ev, fmt.Errorf("decode %s: %w", re.Type, err)
	}
	return checkComplete(ev, re.APIVersion)
}

// ref is an expandable Stripe reference: an ID string, an expanded object
// with an "id", or null. Only the ID is kept.
type ref string

// UnmarshalJSON implements json.Unmarshaler.
func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*r = ""
		return nil
	case b[0] == '"':
		// IDs never hold escapes; take the fast path when there are none.
		if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
			*r = ref(b[1 : len(b)-1])
			return nil
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = ref(s)
		return nil
	case b[0] == '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = ref(o.ID)
		return nil
	}
	return errors.New("reference is neither an ID nor an object")
}

// metadata reads metadata.account_id and nothing else: every other key is
// merchant free text. Its own decoder (UnmarshalJSON) takes the key
// exactly: encoding/json matches struct fields case-insensitively, so a
// plain field would link "ACCOUNT_ID" or "Account_Id" too, keys a merchant
// may use for something else; and it links nothing when the key appears
// more than once (encoding/json keeps the last), since a link must not
// depend on which duplicate a parser happens to keep.
type metadata struct {
	AccountID string
}

// UnmarshalJSON implements json.Unmarshaler: null is no metadata, an
// object is read as above, and any other value is a type error, as for a
// plain field (the event decoder then reads the object by its kind alone).
func (m *metadata) UnmarshalJSON(b []byte) error {
	m.AccountID = ""
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) == 0 || b[0] != '{':
		return &json.UnmarshalTypeError{Value: "non-object", Type: reflect.TypeFor[metadata]()}
	case bytes.IndexByte(b, '\\') < 0 && !bytes.Contains(b, []byte(`"account_id"`)):
		// No key can read account_id without an escape: the common case,
		// answered without tokenising.
		return nil
	}
	value, found := scanAccountID(b)
	if found == 1 {
		m.AccountID = value
	}
	return nil
}

// hint returns the account hint if it is a well-formed account ID.
func (m *metadata) hint() string {
	if m == nil || !billing.ValidAccountID(m.AccountID) {
		return ""
	}
	return m.AccountID
}

// scanAccountID walks the members of a metadata object and returns the
// string value of the key account_id and how many times that key appears.
// b is one JSON object already validated by encoding/json (an Unmarshaler
// is only handed well-formed input), so the walk needs no error paths; it
// allocates only for the value it returns and for keys written with
// escapes, where json.Decoder's tokens cost about 40 allocations per event.
func scanAccountID(b []byte) (value string, found int) {
	i := 1 // past '{'
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return value, found
		}
		if b[i] == ',' {
			i++
			continue
		}
		ks, ke := i, stringEnd(b, i) // the key, quotes included
		i = skipSpace(b, ke)
		i = skipSpace(b, i+1) // past ':'
		ve := valueEnd(b, i)
		if isAccountIDKey(b[ks:ke]) {
			found++
			value = ""
			if b[i] == '"' {
				value = jsonString(b[i:ve])
			}
		}
		i = ve
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] ('"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++ // number, true, false, null
	}
	return i
}

// isAccountIDKey reports whether the JSON string literal q (quotes
// included) is exactly account_id once decoded.
func isAccountIDKey(q []byte) bool {
	if bytes.IndexByte(q, '\\') < 0 {
		return string(q) == `"account_id"` // compared in place: no allocation
	}
	return jsonString(q) == "account_id"
}

// jsonString decodes a JSON string literal (quotes included), without an
// allocation beyond the result when it holds no escape and is valid UTF-8
// (encoding/json replaces invalid bytes with U+FFFD; so does this).
func jsonString(q []byte) string {
	if len(q) < 2 {
		return ""
	}
	if bytes.IndexByte(q, '\\') < 0 && utf8.Valid(q) {
		return string(q[1 : len(q)-1])
	}
	var s string
	_ = json.Unmarshal(q, &s)
	return s
}

// maxUnix is 9999-12-31T23:59:59Z: later "dates" are garbage, and would
// not fit a timestamptz column.
const maxUnix = 253402300799

// unixPtr converts a Stripe timestamp; absent, zero and absurd values are nil.
func unixPtr(v *int64) *time.Time {
	if v == nil || *v <= 0 || *v > maxUnix {
		return nil
	}
	t := time.Unix(*v, 0).UTC()
	return &t
}
