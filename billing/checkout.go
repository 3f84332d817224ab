package billing

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Checkout and portal sessions: the app sends a user to Stripe Checkout or
// the Billing Portal through billingd, which picks the customer, signs the
// link reference and sets the metadata, so the app needs no Stripe SDK and
// no key. Nothing the app sends here is stored: the e-mail it may pass for
// prefill goes to Stripe and nowhere else.

// Refusals of checkout and portal requests.
var (
	// ErrAlreadySubscribed: the account already has an entitled
	// subscription to the price's product (409 already_subscribed).
	ErrAlreadySubscribed = fmt.Errorf("%w: account already subscribed to this product", ErrConflict)
	// ErrNoCustomer: the account has no Stripe customer in the key's mode,
	// so there is no portal to open (404 no_customer).
	ErrNoCustomer = fmt.Errorf("%w: account has no customer in this mode", ErrNotFound)
	// ErrNoSubscription: a portal flow about a subscription, and the
	// account has no entitled subscription it could be about (409).
	ErrNoSubscription = fmt.Errorf("%w: no subscription for this flow", ErrConflict)
	// ErrLivemodeMismatch: the request asks for the mode STRIPE_API_KEY
	// is not of (409 livemode_mismatch).
	ErrLivemodeMismatch = fmt.Errorf("%w: STRIPE_API_KEY is of the other mode", ErrConflict)
	// ErrPriceNotFound: Stripe does not know the price in the key's mode.
	ErrPriceNotFound = fmt.Errorf("%w: no such price", ErrInvalid)
	// ErrPriceNotRecurring: a one-time price cannot start a subscription.
	ErrPriceNotRecurring = fmt.Errorf("%w: price is not recurring", ErrInvalid)
	// ErrPriceInactive: the price is archived in Stripe.
	ErrPriceInactive = fmt.Errorf("%w: price is not active", ErrInvalid)
	// ErrConfigurationNotFound: Stripe does not know the portal
	// configuration (bpc_...).
	ErrConfigurationNotFound = fmt.Errorf("%w: no such portal configuration", ErrInvalid)
	// ErrIdempotencyKeyReused: Stripe saw this Idempotency-Key with other
	// parameters (409 idempotency_key_reused).
	ErrIdempotencyKeyReused = fmt.Errorf("%w: idempotency key used with other parameters", ErrConflict)
	// ErrStripeUnavailable: Stripe could not be reached or answered with a
	// failure a retry can fix (network, 429, 409 lock, 5xx): 503.
	ErrStripeUnavailable = fmt.Errorf("%w: Stripe unavailable", ErrUnavailable)
	// ErrStripeRejected: Stripe refused the request for a reason neither a
	// retry nor the app can fix (the key, a parameter billingd chose): 502.
	ErrStripeRejected = fmt.Errorf("%w: Stripe refused the request", ErrInternal)
)

// CheckoutRequest is what the app asks of POST
// /v1/accounts/{account_id}/checkout-sessions, validated (Validate).
type CheckoutRequest struct {
	AccountID           string
	Price               string
	Quantity            int64
	SuccessURL          string
	CancelURL           string
	TrialPeriodDays     int64 // 0: none
	AllowPromotionCodes bool
	AllowMultiple       bool
	// CustomerEmail prefills Checkout when no customer is reused. Personal
	// data: forwarded to Stripe, never stored, logged or echoed.
	CustomerEmail string
	// IdempotencyKey is the app's Idempotency-Key header, passed to Stripe;
	// empty: one is generated for this request.
	IdempotencyKey string
	// Livemode is the mode the app asked for; nil: the key's mode.
	Livemode *bool
}

// CheckoutRedirect is Stripe's answer, as the app needs it.
type CheckoutRedirect struct {
	ID        string
	URL       string
	ExpiresAt time.Time
	Livemode  bool
}

// PortalFlow is a Billing Portal deep link.
type PortalFlow string

// The flows billingd opens. subscription_cancel and subscription_update
// are about one subscription, which billingd picks (PortalSubscription).
const (
	FlowNone                PortalFlow = ""
	FlowPaymentMethodUpdate PortalFlow = "payment_method_update"
	FlowSubscriptionCancel  PortalFlow = "subscription_cancel"
	FlowSubscriptionUpdate  PortalFlow = "subscription_update"
)

// Valid reports whether f is a flow billingd opens.
func (f PortalFlow) Valid() bool {
	switch f {
	case FlowNone, FlowPaymentMethodUpdate, FlowSubscriptionCancel, FlowSubscriptionUpdate:
		return true
	}
	return false
}

// NeedsSubscription reports whether Stripe needs a subscription ID for f.
func (f PortalFlow) NeedsSubscription() bool {
	return f == FlowSubscriptionCancel || f == FlowSubscriptionUpdate
}

// PortalRequest is what the app asks of POST
// /v1/accounts/{account_id}/portal-sessions, validated.
type PortalRequest struct {
	AccountID     string
	ReturnURL     string
	Configuration string // bpc_...; empty: the account's default
	Flow          PortalFlow
	// Subscription names the subscription a flow is about; empty: the
	// account's entitled one (PortalSubscription). It must be the
	// account's: an ID alone never reaches another account's customer.
	Subscription   string
	IdempotencyKey string
	Livemode       *bool
}

// PortalRedirect is Stripe's answer.
type PortalRedirect struct {
	URL      string
	Livemode bool
}

// Limits of what the app may send.
const (
	MaxCheckoutQuantity       = 999_999
	MaxTrialPeriodDays        = 730 // Stripe's limit
	MaxRedirectURLLen         = 2048
	MaxCustomerEmailLen       = 512 // Stripe's limit on customer_email
	MaxIdempotencyKeyLen      = 255 // Stripe's limit
	MaxUnknownCustomerLookups = 3   // customers of unknown mode asked of Stripe at most
)

var (
	validPriceID  = regexp.MustCompile(`^(price|plan)_[A-Za-z0-9_]{1,250}$`)
	validConfigID = regexp.MustCompile(`^bpc_[A-Za-z0-9]{1,250}$`)
	validSubID    = regexp.MustCompile(`^sub_[A-Za-z0-9]{1,250}$`)
)

// ValidPriceID reports whether id has the shape of a Stripe price ID.
func ValidPriceID(id string) bool { return validPriceID.MatchString(id) }

// ValidPortalConfigurationID reports whether id has the shape of a
// Billing Portal configuration ID.
func ValidPortalConfigurationID(id string) bool { return validConfigID.MatchString(id) }

// ValidSubscriptionID reports whether id has the shape of a subscription ID.
func ValidSubscriptionID(id string) bool { return validSubID.MatchString(id) }

// ValidIdempotencyKey reports whether k may be passed to Stripe as an
// Idempotency-Key: 1 to 255 printable ASCII characters.
func ValidIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// ValidCustomerEmail reports whether e looks like an e-mail address Stripe
// would accept: a local part, one "@", a dotted domain, no spaces or
// control characters. Stripe checks it properly; this only keeps
// obviously broken values from costing a call.
func ValidCustomerEmail(e string) bool {
	if len(e) < 3 || len(e) > MaxCustomerEmailLen {
		return false
	}
	at := strings.IndexByte(e, '@')
	if at < 1 || at != strings.LastIndexByte(e, '@') || at == len(e)-1 {
		return false
	}
	for _, r := range e {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	dom := e[at+1:]
	return strings.Contains(dom, ".") && !strings.HasPrefix(dom, ".") && !strings.HasSuffix(dom, ".")
}

// URLAllowlist is APP_URL_ALLOWLIST: the URL prefixes Checkout and the
// portal may send a user back to. A URL matches a prefix when its scheme
// and host (with port) are the prefix's and its path starts with the
// prefix's path at a segment boundary: "https://app.example.com" allows
// "https://app.example.com/billing/done" but neither
// "https://app.example.com.evil.test/" nor "https://app.example.comx/",
// and "https://example.com/app" does not allow "https://example.com/apple".
// Matching parsed parts, not strings, is what closes the open redirect.
type URLAllowlist struct {
	prefixes []*url.URL
}

// ParseURLAllowlist parses comma-separated prefixes. Each is an absolute
// https URL (http only for a loopback host, for development) with a host,
// no user information, query or fragment.
func ParseURLAllowlist(s string) (URLAllowlist, error) {
	var a URLAllowlist
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		u, err := url.Parse(p)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
			strings.HasSuffix(u.Host, ":") {
			return URLAllowlist{}, fmt.Errorf("%w: %q is not an absolute URL prefix without user, query or fragment", ErrInvalid, p)
		}
		u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && loopbackHost(u.Hostname()):
		default:
			return URLAllowlist{}, fmt.Errorf("%w: %q must be https (http only for localhost)", ErrInvalid, p)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		a.prefixes = append(a.prefixes, u)
	}
	if len(a.prefixes) == 0 {
		return URLAllowlist{}, fmt.Errorf("%w: no URL prefix", ErrInvalid)
	}
	return a, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Empty reports whether no prefix is configured (the endpoints are off).
func (a URLAllowlist) Empty() bool { return len(a.prefixes) == 0 }

// String lists the prefixes, comma-separated.
func (a URLAllowlist) String() string {
	s := make([]string, len(a.prefixes))
	for i, p := range a.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// URLProblem says why a redirect URL is refused ("" when it is allowed).
type URLProblem string

// The reasons; each is the error code the API answers with.
const (
	URLAllowed    URLProblem = ""
	URLMalformed  URLProblem = "invalid_url"
	URLNotAllowed URLProblem = "url_not_allowed"
)

// Check judges a success, cancel or return URL.
func (a URLAllowlist) Check(raw string) URLProblem {
	if raw == "" || len(raw) > MaxRedirectURLLen || strings.ContainsAny(raw, "\\\t\r\n ") {
		return URLMalformed
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f {
			return URLMalformed
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return URLMalformed
	}
	if u.User != nil {
		return URLNotAllowed // https://app.example.com@evil.test/ is a trick, never a need
	}
	host := strings.ToLower(u.Host)
	for _, p := range a.prefixes {
		if u.Scheme != p.Scheme || host != p.Host {
			continue
		}
		if p.Path == "" || u.Path == p.Path || strings.HasPrefix(u.Path, p.Path+"/") {
			return URLAllowed
		}
	}
	return URLNotAllowed
}

// CheckoutCustomer is one customer linked to an account, as customer reuse
// sees it.
type CheckoutCustomer struct {
	ID string
	// Livemode is nil until Stripe has sent an event about the customer.
	Livemode *bool
	Deleted  bool
	LinkedAt time.Time
}

// ReusableCustomers returns the account's customers that Checkout and the
// portal may use in mode livemode: known, those Stripe has said are of the
// mode, most recently linked first; unknown, those of no known mode yet
// (linked through the API before any event), to be asked of Stripe. A
// customer Stripe deleted is never reused.
func ReusableCustomers(cs []CheckoutCustomer, livemode bool) (known, unknown []string) {
	cs = append([]CheckoutCustomer(nil), cs...)
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].LinkedAt.Equal(cs[j].LinkedAt) {
			return cs[i].LinkedAt.After(cs[j].LinkedAt)
		}
		return cs[i].ID < cs[j].ID
	})
	for _, c := range cs {
		switch {
		case c.Deleted:
		case c.Livemode == nil:
			unknown = append(unknown, c.ID)
		case *c.Livemode == livemode:
			known = append(known, c.ID)
		}
	}
	return known, unknown
}

// SubscribedToProduct reports whether any of the account's subscriptions
// in mode livemode is entitled at now and has an item of productID (or,
// when the stored item has no product ID, of priceID itself): a second
// checkout for it would charge the user twice for one product.
func SubscribedToProduct(subs []AccountSubscription, livemode bool, productID, priceID string, now time.Time, grace time.Duration) bool {
	for _, as := range subs {
		s := as.Subscription
		if s.Livemode != livemode || as.CustomerDeleted || !SubscriptionEntitlement(s, now, grace).Entitled {
			continue
		}
		for _, it := range s.Items {
			if it.PriceID == priceID || (productID != "" && it.ProductID == productID) {
				return true
			}
		}
	}
	return false
}

// PortalSubscription picks the subscription a portal flow is about: want
// when the app named one (it must be the account's, in the mode, of a
// customer not deleted, and entitled: Stripe's cancel and update flows
// need a live subscription), else the one that decides the account's
// entitlement. ok is false when there is none.
func PortalSubscription(subs []AccountSubscription, livemode bool, want string, now time.Time, grace time.Duration) (Subscription, bool) {
	var best Subscription
	var bestE Entitlement
	found := false
	for _, as := range subs {
		s := as.Subscription
		if s.Livemode != livemode || as.CustomerDeleted || (want != "" && s.ID != want) {
			continue
		}
		e := SubscriptionEntitlement(s, now, grace)
		if !e.Entitled {
			continue
		}
		if !found || better(e, s.ID, bestE, best.ID) {
			best, bestE, found = s, e, true
		}
	}
	return best, found
}

// LinkReferenceExpiry is the expiry of the reference put on a Checkout
// Session created at now: the start of now's UTC day plus 3 days, so
// between 48 and 72 hours away, outliving the session (24 h at most).
// It is the same all day on purpose: Stripe compares a retried request's
// parameters with the first one's, so a retry with the same
// Idempotency-Key must sign the very same reference. A retry on the next
// day is retried once more with the previous day's expiry (daysBack 1):
// Stripe keeps idempotency keys for 24 hours.
func LinkReferenceExpiry(now time.Time, daysBack int) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d-daysBack, 0, 0, 0, 0, time.UTC).Add(3 * 24 * time.Hour)
}

// CheckoutAccount is what checkout and portal sessions read of an account:
// its customers (every mode) and its subscriptions in one mode.
type CheckoutAccount struct {
	Customers     []CheckoutCustomer
	Subscriptions []AccountSubscription
}
