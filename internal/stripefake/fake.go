// Package stripefake holds billingd's fakes of Stripe: a stateful fake of
// the few Stripe API endpoints billingd calls (customers and
// subscriptions: list and retrieve; the Events API list, events.go; delete
// a customer, cancel a subscription; retrieve a price; create Checkout and
// Billing Portal sessions, recording every parameter: sessions.go), the
// launcher of Stripe's own stateless stripe-mock
// (StartStripeMock), and the simulated life cycle `billingd simulate`
// sends (Lifecycle).
//
// Unlike stripe-mock the fake keeps state, paginates (limit,
// starting_after, has_more, created[gte|lte]), honours the subscription
// status filter (default: everything but canceled; "all"), answers
// 400/401/404/429/503 when told to, records every request, and fills every
// object with fake personal data in more than one API-version shape.
package stripefake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Key is the API key the fake accepts unless Server.Key is changed.
const Key = "sk_test_fake"

// Request is one recorded API request.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Status int
	// At is when the answer was ready; Objects how many objects a list
	// page held (the bench reads how full a backfill's pages were).
	At      time.Time
	Objects int
	// Form is a POST's form body (checkout and portal sessions), and
	// IdempotencyKey its Idempotency-Key header.
	Form           url.Values
	IdempotencyKey string
}

// Server is the fake API. Create it with New; its zero value is not usable.
type Server struct {
	// URL is the base URL to pass as STRIPE_API_BASE.
	URL string

	mu        sync.Mutex
	key       string
	customers map[string]*Customer
	subs      map[string]*Subscription
	// entitlements are customers' active features (entitlements.go).
	entitlements map[string][]string
	coupons      map[string]Coupon
	catalog      map[string]map[string]any // products and prices by ID, as Stripe renders them
	requests     []Request
	listed       int             // objects on the list page being answered
	limit429     int             // answer the next n requests with 429 rate_limit
	failAfter    int             // answer requests after this many with 400 (0: off)
	gone         map[string]bool // IDs that answer 404 as if they never existed
	refused      map[string]bool // IDs whose requests answer 400, as a request Stripe never accepts
	down         bool            // answer everything 503, as during an outage
	offset       time.Duration   // added to the clock behind the Date header
	srv          *httptest.Server
	events       []storedEvent // the Events API's (events.go)
	latency      time.Duration // every list request takes this long (SetLatency)
	limit        *bucket       // requests per second allowed (SetRateLimit); nil: no limit
	retryHint    string        // Retry-After sent with injected 429s (RateLimit)
	subIdx       *index        // subscriptions in list order, nil after a change
	custIdx      *index        // customers in list order, nil after a change

	// Checkout and portal sessions (sessions.go).
	prices    map[string]*Price
	configs   map[string]bool
	idem      map[string]idempotent
	checkouts int
	portals   int
}

// bucket is a token bucket: rate tokens a second, at most burst saved.
type bucket struct {
	rate, burst, tokens float64
	at                  time.Time
}

// take reports whether a request may go now, and if not, how long until
// it may.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// SetLatency makes every list request take d before it is answered, as
// Stripe's pages take 100-300 ms; requests wait in parallel.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRateLimit allows perSecond requests a second (bursts of up to burst)
// and answers the others 429 rate_limit with a Retry-After of the seconds
// until one would be allowed, as Stripe's limiter does. 0 removes it.
func (s *Server) SetRateLimit(perSecond, burst float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.limit = nil
		return
	}
	s.limit = &bucket{rate: perSecond, burst: max(burst, 1), tokens: max(burst, 1), at: time.Now()}
}

// RetryAfter sets the Retry-After header of the 429s RateLimit injects
// ("" sends none, the default).
func (s *Server) RetryAfter(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryHint = v
}

// New starts a fake API server; it stops when Close is called.
func New() *Server {
	s := &Server{key: Key, customers: map[string]*Customer{}, subs: map[string]*Subscription{}, coupons: map[string]Coupon{},
		catalog: map[string]map[string]any{},
		gone:    map[string]bool{}, refused: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// PutCatalog adds or replaces a product or price object (its "id" and
// "object" say which), listed by GET /v1/products and /v1/prices.
func (s *Server) PutCatalog(obj map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catalog[fmt.Sprint(obj["id"])] = obj
}

// PutCoupon adds or replaces a coupon.
func (s *Server) PutCoupon(c Coupon) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.coupons[c.ID] = c
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// PutCustomer adds or replaces a customer.
func (s *Server) PutCustomer(c Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers[c.ID] = &c
	s.subIdx, s.custIdx = nil, nil
	delete(s.gone, c.ID)
}

// PutSubscription adds or replaces a subscription.
func (s *Server) PutSubscription(sub Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[sub.ID] = &sub
	s.subIdx, s.custIdx = nil, nil
	delete(s.gone, sub.ID)
}

// UpdateSubscription changes a stored subscription in place.
func (s *Server) UpdateSubscription(id string, fn func(*Subscription)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub, ok := s.subs[id]; ok {
		fn(sub)
		s.subIdx, s.custIdx = nil, nil
	}
}

// Forget makes a customer or subscription answer 404 and leave lists, as
// if Stripe had never had it.
func (s *Server) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.customers, id)
	delete(s.subs, id)
	s.subIdx, s.custIdx = nil, nil
	s.gone[id] = true
}

// Advance moves the fake's clock (its Date header, which versions every
// object it serves) forward by d, as if the next answer came later.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// RateLimit makes the next n requests answer 429 (rate_limit).
func (s *Server) RateLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit429 = n
}

// FailAfter makes every request after the next n answer 400, as if the
// run were cut off; FailAfter(-1) turns it off.
func (s *Server) FailAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		s.failAfter = 0
		return
	}
	s.failAfter = len(s.requests) + n + 1
}

// Down makes every request answer 503 (api_error) while on, as Stripe
// during an outage.
func (s *Server) Down(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = on
}

// Refuse makes requests about the object id answer 400
// (parameter_invalid) while on: a request Stripe will never accept.
func (s *Server) Refuse(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[id] = on
}

// Count is how many recorded requests had this method and path.
func (s *Server) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// Requests returns the recorded requests.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.failAfter = 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 && r.Method == http.MethodGet && strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 1 {
		time.Sleep(latency)
	}
	var form url.Values
	if r.Method == http.MethodPost {
		_ = r.ParseForm()
		form = r.PostForm
	}
	q := r.URL.Query()
	// The answer is built under the lock and sent after it: Stripe serves
	// pages in parallel, and a fake that wrote a 300 kB page to a slow
	// reader while holding its one lock would serialise every walker.
	out := &buffered{h: w.Header()}
	s.mu.Lock()
	w.Header().Set("Date", time.Now().Add(s.offset).UTC().Format(http.TimeFormat))
	s.listed = 0
	status := s.handle(out, r, q)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: q, Status: status,
		At: time.Now(), Objects: s.listed, Form: form, IdempotencyKey: r.Header.Get("Idempotency-Key")})
	s.mu.Unlock()
	if out.status != 0 {
		w.WriteHeader(out.status)
	}
	_, _ = w.Write(out.body.Bytes())
}

// buffered is a response written under the fake's lock and sent after it.
type buffered struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (b *buffered) Header() http.Header { return b.h }

func (b *buffered) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *buffered) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

// apiError writes Stripe's error envelope.
func apiError(w http.ResponseWriter, status int, typ, code, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "code": code, "message": msg}})
	return status
}

func writeObject(w http.ResponseWriter, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	_ = json.NewEncoder(w).Encode(v)
	return http.StatusOK
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, q url.Values) int {
	if s.down {
		return apiError(w, http.StatusServiceUnavailable, "api_error", "", "the fake was told Stripe is down")
	}
	if s.failAfter > 0 && len(s.requests)+1 >= s.failAfter {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "", "the fake was told to fail from here on")
	}
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if key != s.key {
		return apiError(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided")
	}
	if s.limit429 > 0 {
		s.limit429--
		if s.retryHint != "" {
			w.Header().Set("Retry-After", s.retryHint)
		}
		return apiError(w, http.StatusTooManyRequests, "invalid_request_error", "rate_limit",
			"Too many requests hit the API too quickly.")
	}
	if s.limit != nil {
		if ok, wait := s.limit.take(time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.FormatFloat(wait.Seconds(), 'f', 3, 64))
			return apiError(w, http.StatusTooManyRequests, "invalid_request_error", "rate_limit",
				"Too many requests hit the API too quickly.")
		}
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) == 3 && s.refused[parts[2]] {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "the fake was told to refuse '"+parts[2]+"'")
	}
	if status, ok := s.sessionsRoute(w, r, parts); ok {
		return status
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodDelete:
		return s.delete(w, parts)
	default:
		return apiError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "the fake only reads, deletes customers and cancels subscriptions")
	}
	switch {
	case len(parts) == 2 && parts[0] == "v1" && parts[1] == "customers":
		return s.listCustomers(w, q)
	case len(parts) == 2 && parts[0] == "v1" && parts[1] == "subscriptions":
		return s.listSubscriptions(w, q)
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "entitlements" && parts[2] == "active_entitlements":
		return s.listActiveEntitlements(w, q)
	case len(parts) == 2 && parts[0] == "v1" && parts[1] == "events":
		return s.listEvents(w, q)
	case len(parts) == 2 && parts[0] == "v1" && (parts[1] == "products" || parts[1] == "prices"):
		return s.listCatalog(w, q, strings.TrimSuffix(parts[1], "s"))
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "customers":
		c, ok := s.customers[parts[2]]
		if !ok {
			return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such customer: '"+parts[2]+"'")
		}
		return writeObject(w, c.JSON())
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "subscriptions":
		sub, ok := s.subs[parts[2]]
		if !ok {
			return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such subscription: '"+parts[2]+"'")
		}
		if expands(q, "discounts") {
			return writeObject(w, sub.ExpandedJSON(s.customers[sub.CustomerID]))
		}
		return writeObject(w, sub.JSON(s.customers[sub.CustomerID]))
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "coupons":
		c, ok := s.coupons[parts[2]]
		if !ok {
			return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such coupon: '"+parts[2]+"'")
		}
		return writeObject(w, c.JSON())
	}
	return apiError(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL")
}

// delete answers DELETE /v1/customers/{id} (the customer is deleted: it
// answers GET with "deleted": true and leaves lists) and DELETE
// /v1/subscriptions/{id} (the subscription is canceled now). An unknown
// ID, or a customer deleted already, is 404 resource_missing, as Stripe
// answers.
func (s *Server) delete(w http.ResponseWriter, parts []string) int {
	if len(parts) != 3 || parts[0] != "v1" {
		return apiError(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL")
	}
	id := parts[2]
	switch parts[1] {
	case "customers":
		c, ok := s.customers[id]
		if !ok || c.Deleted {
			return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such customer: '"+id+"'")
		}
		c.Deleted = true
		s.subIdx, s.custIdx = nil, nil
		return writeObject(w, map[string]any{"id": id, "object": "customer", "deleted": true})
	case "subscriptions":
		sub, ok := s.subs[id]
		if !ok {
			return apiError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such subscription: '"+id+"'")
		}
		if sub.Status != "canceled" {
			now := time.Now().Add(s.offset).UTC().Truncate(time.Second)
			sub.Status, sub.CanceledAt, sub.EndedAt = "canceled", &now, &now
			s.subIdx = nil
		}
		return writeObject(w, sub.JSON(s.customers[sub.CustomerID]))
	}
	return apiError(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL")
}

// page is one list request's window: created range, limit and cursor.
type page struct {
	limit         int
	startingAfter string
	gte, lte      int64
	hasGTE        bool
	hasLTE        bool
}

func parsePage(q url.Values) (page, error) {
	p := page{limit: 10}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return p, fmt.Errorf("limit must be 1 to 100")
		}
		p.limit = n
	}
	p.startingAfter = q.Get("starting_after")
	for _, f := range []struct {
		name string
		v    *int64
		has  *bool
	}{{"created[gte]", &p.gte, &p.hasGTE}, {"created[lte]", &p.lte, &p.hasLTE}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return p, fmt.Errorf("%s must be a unix time", f.name)
			}
			*f.v, *f.has = n, true
		}
	}
	return p, nil
}

func (p page) inRange(created time.Time) bool {
	c := created.Unix()
	return (!p.hasGTE || c >= p.gte) && (!p.hasLTE || c <= p.lte)
}

// listed is one object in list order: newest first, then by ID, as
// Stripe lists (its order within one second is its own; any fixed one
// will do for cursors).
type listed struct {
	id      string
	created time.Time
	obj     map[string]any
}

func sortListed(l []listed) {
	slices.SortFunc(l, func(a, b listed) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
}

// window cuts one page out of the sorted objects.
func (p page) window(w http.ResponseWriter, url string, all []listed, render ...func(listed) any) int {
	sortListed(all)
	start := 0
	if p.startingAfter != "" {
		i := slices.IndexFunc(all, func(l listed) bool { return l.id == p.startingAfter })
		if i < 0 {
			return apiError(w, http.StatusBadRequest, "invalid_request_error", "resource_missing",
				"starting_after names no object in this list")
		}
		start = i + 1
	}
	end := min(start+p.limit, len(all))
	data := make([]any, 0, end-start)
	for _, l := range all[start:end] {
		if len(render) > 0 {
			data = append(data, render[0](l))
			continue
		}
		data = append(data, l.obj)
	}
	return writeObject(w, map[string]any{"object": "list", "url": url, "has_more": end < len(all), "data": data})
}

func (s *Server) listCustomers(w http.ResponseWriter, q url.Values) int {
	p, err := parsePage(q)
	if err != nil {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", err.Error())
	}
	return s.customerIndex().serve(w, p, "/v1/customers", func(id string) bool { return !s.customers[id].Deleted },
		s.renderCustomer, &s.listed)
}

func (s *Server) customerIndex() *index {
	if s.custIdx == nil {
		s.custIdx = newIndex(len(s.customers), func(add func(string, time.Time)) {
			for _, c := range s.customers {
				add(c.ID, c.Created)
			}
		})
	}
	return s.custIdx
}

func (s *Server) renderCustomer(id string) map[string]any { return s.customers[id].JSON() }

func (s *Server) subscriptionIndex() *index {
	if s.subIdx == nil {
		s.subIdx = newIndex(len(s.subs), func(add func(string, time.Time)) {
			for _, sub := range s.subs {
				add(sub.ID, sub.Created)
			}
		})
	}
	return s.subIdx
}

func (s *Server) renderSubscription(id string) map[string]any {
	sub := s.subs[id]
	return sub.JSON(s.customers[sub.CustomerID])
}

// Prerender renders every customer and subscription now, as the lists
// serve them: a bench then measures its client against a Stripe whose
// rendering is not billed to the same cores (Stripe's own machines do
// that work), not against the fake's first json.Marshal of each object.
// A later change renders the changed lists again on demand.
func (s *Server) Prerender() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range []struct {
		ix     *index
		render func(string) map[string]any
	}{{s.customerIndex(), s.renderCustomer}, {s.subscriptionIndex(), s.renderSubscription}} {
		for i := range l.ix.ids {
			if err := l.ix.render(i, l.render); err != nil {
				return err
			}
		}
	}
	return nil
}

// index is one list's objects in list order (newest first, then by ID),
// built once per change, with each object's JSON rendered once: the fake
// serves lists of 100,000 objects at 100 pages a second in a bench, under
// its one lock, so a request looks at its page only and copies bytes.
type index struct {
	ids     []string
	created []int64
	pos     map[string]int
	raw     []json.RawMessage // rendered objects, by position; nil until asked for
}

func newIndex(n int, each func(add func(string, time.Time))) *index {
	ix := &index{ids: make([]string, 0, n), created: make([]int64, 0, n), pos: make(map[string]int, n), raw: make([]json.RawMessage, n)}
	type entry struct {
		id string
		at int64
	}
	all := make([]entry, 0, n)
	each(func(id string, at time.Time) { all = append(all, entry{id, at.Unix()}) })
	slices.SortFunc(all, func(a, b entry) int {
		if c := cmp.Compare(b.at, a.at); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
	for i, e := range all {
		ix.ids, ix.created = append(ix.ids, e.id), append(ix.created, e.at)
		ix.pos[e.id] = i
	}
	return ix
}

// serve writes the page of p: objects in its created window, after its
// starting_after, that keep admits, rendered by render (once per change).
func (ix *index) serve(w http.ResponseWriter, p page, url string, keep func(id string) bool, render func(id string) map[string]any, listed *int) int {
	lo, hi := 0, len(ix.ids)
	if p.hasLTE {
		lo = sort.Search(len(ix.ids), func(i int) bool { return ix.created[i] <= p.lte })
	}
	if p.hasGTE {
		hi = sort.Search(len(ix.ids), func(i int) bool { return ix.created[i] < p.gte })
	}
	start := lo
	if p.startingAfter != "" {
		i, ok := ix.pos[p.startingAfter]
		if !ok || i < lo || i >= hi || !keep(p.startingAfter) {
			return apiError(w, http.StatusBadRequest, "invalid_request_error", "resource_missing",
				"starting_after names no object in this list")
		}
		start = i + 1
	}
	data := make([]json.RawMessage, 0, p.limit)
	more := false
	for i := start; i < hi; i++ {
		if !keep(ix.ids[i]) {
			continue
		}
		if len(data) == p.limit {
			more = true
			break
		}
		if err := ix.render(i, render); err != nil {
			return apiError(w, http.StatusInternalServerError, "api_error", "", err.Error())
		}
		data = append(data, ix.raw[i])
	}
	// The page is the rendered objects' bytes joined: encoding them again
	// would re-validate every byte of every page.
	var b bytes.Buffer
	u, _ := json.Marshal(url)
	fmt.Fprintf(&b, `{"object":"list","url":%s,"has_more":%t,"data":[`, u, more)
	for i, raw := range data {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
	}
	b.WriteString("]}\n")
	*listed = len(data)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	_, _ = w.Write(b.Bytes())
	return http.StatusOK
}

// render renders object i once.
func (ix *index) render(i int, render func(id string) map[string]any) error {
	if ix.raw[i] != nil {
		return nil
	}
	b, err := json.Marshal(render(ix.ids[i]))
	if err != nil {
		return err
	}
	ix.raw[i] = b
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, q url.Values) int {
	p, err := parsePage(q)
	if err != nil {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", err.Error())
	}
	status, customer := q.Get("status"), q.Get("customer")
	return s.subscriptionIndex().serve(w, p, "/v1/subscriptions", func(id string) bool {
		sub := s.subs[id]
		switch {
		case status == "" && sub.Status == "canceled": // Stripe's default leaves canceled out
			return false
		case status != "" && status != "all" && status != sub.Status:
			return false
		case customer != "" && customer != sub.CustomerID:
			return false
		}
		return true
	}, s.renderSubscription, &s.listed)
}

// expands reports whether the request asks for field expanded (expand[]=
// or stripe-go's expand[0]=).
func expands(q url.Values, field string) bool {
	for k, vs := range q {
		if strings.HasPrefix(k, "expand[") && slices.Contains(vs, field) {
			return true
		}
	}
	return false
}

// listCatalog lists the products or prices put with PutCatalog.
func (s *Server) listCatalog(w http.ResponseWriter, q url.Values, object string) int {
	p, err := parsePage(q)
	if err != nil {
		return apiError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", err.Error())
	}
	var all []listed
	for id, o := range s.catalog {
		if o["object"] == object {
			all = append(all, listed{id: id, obj: o})
		}
	}
	return p.window(w, "/v1/"+object+"s", all)
}
