package api

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Where the dashboard may be used from. A session cookie is only as safe
// as the name the browser reached the server by: with DNS rebinding, an
// attacker's name (evil.example) resolves to the server, the browser sends
// "Host: evil.example" and a matching "Origin: http://evil.example", and
// every same-origin check passes. So the Host itself must be the
// dashboard's own: PUBLIC_URL's host when it is set, otherwise a loopback
// name, which no outside DNS can point a browser's origin at.
//
// The Host header is taken as received. X-Forwarded-Host is never trusted:
// under rebinding the attacker's page is same-origin with itself and may
// set any such header. A reverse proxy must pass the original Host.

// dashboardHost reports whether the request reached the server by the
// dashboard's own name.
func (s *Server) dashboardHost(r *http.Request) bool {
	if s.PublicURL != nil {
		return sameHostPort(r.Host, s.PublicURL.Scheme, s.PublicURL.Host, s.PublicURL.Scheme)
	}
	return loopbackHost(r.Host)
}

// dashboardPost checks a state-changing dashboard request (sign-in,
// sign-out) and answers 403 when it fails: the dashboard's own Host, and
// no cross-site fetch (login CSRF, forced sign-out). With PUBLIC_URL set,
// Origin must be present and be PUBLIC_URL's origin; without it, an Origin
// (when sent; curl sends none) must match the Host.
func (s *Server) dashboardPost(w http.ResponseWriter, r *http.Request) bool {
	if !s.dashboardHost(r) {
		hostNotAllowed(w)
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		writeError(w, http.StatusForbidden, "cross_origin", "this form must be posted from the dashboard's own page")
		return false
	}
	o := r.Header.Get("Origin")
	var ok bool
	switch {
	case s.PublicURL != nil:
		ok = o != "" && sameOrigin(o, s.PublicURL.Scheme, s.PublicURL.Host)
	case o == "":
		ok = true
	default:
		scheme := "http"
		if isHTTPS(r) {
			scheme = "https"
		}
		ok = sameOrigin(o, scheme, r.Host)
	}
	if !ok {
		writeError(w, http.StatusForbidden, "cross_origin", "this form must be posted from the dashboard's own page")
	}
	return ok
}

func hostNotAllowed(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "host_not_allowed",
		"the dashboard answers only at its own address (PUBLIC_URL, or a loopback address when PUBLIC_URL is unset)")
}

// sameOrigin reports whether the Origin header o is scheme://host.
func sameOrigin(o, scheme, host string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil || !strings.EqualFold(u.Scheme, scheme) {
		return false
	}
	return sameHostPort(u.Host, strings.ToLower(u.Scheme), host, scheme)
}

// sameHostPort compares two host[:port] values, each with its scheme's
// default port when it has none, host names case-insensitively.
func sameHostPort(a, schemeA, b, schemeB string) bool {
	ha, pa := splitHostPort(a, schemeA)
	hb, pb := splitHostPort(b, schemeB)
	return ha != "" && strings.EqualFold(ha, hb) && pa == pb
}

func splitHostPort(hp, scheme string) (host, port string) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"), ""
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(scheme)]
	}
	return strings.TrimSuffix(host, "."), port
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface: localhost, 127.0.0.0/8 or ::1, any port.
func loopbackHost(hostport string) bool {
	host, _ := splitHostPort(hostport, "http")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
