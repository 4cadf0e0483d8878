package proxy

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
)

// maxURILen bounds a forwarded URI; longer ones are refused, not parsed.
const maxURILen = 8 << 10

// target is the request a decision is about, canonicalised once.
type target struct {
	method   string
	scheme   string
	host     string // canonical
	path     string // normalised
	uri      string // original request URI (path and query), for rd
	client   netip.Addr
	clientOK bool
}

// originalURL is what the browser asked for, for the login page's rd.
func (t *target) originalURL() string { return t.scheme + "://" + t.host + t.uri }

// outcome is a decision's result.
type outcome uint8

const (
	allow       outcome = iota
	unauth              // no valid session: login redirect or 401
	stepUp              // session too old for the rule: login redirect with stepup, or 401
	forbid              // signed in but not allowed, or a restricted session
	badRequest          // the target itself is unusable
	unavailable         // the session view is stale: fail closed with 503 (issue 17)
)

// Decision is the result of checking one target.
type Decision struct {
	outcome  outcome
	Identity auth.Identity
	Rule     *Rule
	Reason   string
}

// Allowed reports whether the request may pass.
func (d Decision) Allowed() bool { return d.outcome == allow }

// decide is the one decision core behind every adapter: match the rules, then check the session
// against the rule's requirements, all at the one instant now. It reads no database on the common
// path and changes nothing: the adapter that acts on an allow slides the idle clock (allowed), so
// that a look at a decision (the request debugger) never keeps a session alive.
func (h *Handler) decide(r *http.Request, t *target, now time.Time) Decision {
	rule := h.opts.Rules.Match(&Request{Method: t.method, Scheme: t.scheme, Host: t.host, Path: t.path, Client: t.client, ClientOK: t.clientOK})
	// The cookie is judged with the domain of the host the browser sent it to (issue 23).
	id, signedIn := h.auth.AuthenticateAt(r, t.host, now)
	if signedIn && id.TokenHosts != nil && !tokenHostAllowed(id.TokenHosts, t.host, t.scheme) {
		// A token is valid only for its hosts; elsewhere it is as good as none.
		id, signedIn = auth.Identity{}, false
	}
	if !signedIn && id.Stale && rule.Policy != PolicyBypass && rule.Policy != PolicyDeny {
		// A token or a validly signed cookie that the view, too long out of touch with the
		// store, cannot vouch for: neither allowed nor sent to a login it cannot finish.
		return Decision{outcome: unavailable, Rule: rule, Reason: "session view is stale"}
	}
	switch rule.Policy {
	case PolicyBypass:
		if signedIn && !id.Restricted() {
			return Decision{outcome: allow, Identity: id, Rule: rule, Reason: "bypass"}
		}
		return Decision{outcome: allow, Rule: rule, Reason: "bypass"}
	case PolicyDeny:
		return Decision{outcome: forbid, Identity: id, Rule: rule, Reason: "denied by policy"}
	}
	if !signedIn {
		return Decision{outcome: unauth, Rule: rule, Reason: "no valid session"}
	}
	if id.Restricted() {
		return Decision{outcome: forbid, Identity: id, Rule: rule, Reason: "recovery session may only enrol a passkey"}
	}
	if !rule.Allows(id.User.Name, id.User.Groups) {
		return Decision{outcome: forbid, Identity: id, Rule: rule, Reason: "user or group not allowed by rule"}
	}
	if rule.DeviceBound && (id.Method == auth.MethodToken || id.BackupEligible) {
		return Decision{outcome: forbid, Identity: id, Rule: rule, Reason: "rule requires a device-bound passkey"}
	}
	if len(rule.Authenticators) > 0 && (id.Method == auth.MethodToken || !containsFold(rule.Authenticators, id.AAGUID)) {
		return Decision{outcome: forbid, Identity: id, Rule: rule, Reason: "rule requires another authenticator"}
	}
	if rule.MaxAge > 0 {
		if id.Method == auth.MethodToken {
			return Decision{outcome: forbid, Identity: id, Rule: rule, Reason: "rule requires a recent passkey check; tokens cannot do one"}
		}
		if now.Sub(id.VerifiedAt) > rule.MaxAge {
			return Decision{outcome: stepUp, Identity: id, Rule: rule, Reason: "passkey check older than max_age"}
		}
	}
	return Decision{outcome: allow, Identity: id, Rule: rule, Reason: "passkey"}
}

// allowed acts on an allowed decision: the idle clock of its session slides (on allowed checks
// only: a 403 must not keep an idle session alive).
func (h *Handler) allowed(d Decision, now time.Time) {
	if d.outcome == allow && d.Identity.User != nil {
		h.auth.TouchAt(d.Identity, now)
	}
}

// clock reads the time once for a request: the start of its duration metric and the instant
// its decision is made at. With an injected clock (tests) the two differ.
func (h *Handler) clock() (start, now time.Time) {
	start = time.Now()
	if h.fakeClock {
		return start, h.opts.Now()
	}
	return start, start
}

// tokenHostAllowed applies the port semantics of rules to a token's hosts: a host without a
// port covers that name on any port, one with a port only that port.
func tokenHostAllowed(hosts []string, host, scheme string) bool {
	name, port := hostAndPort(host)
	if port == "" {
		port = defaultPort(scheme)
	}
	for _, h := range hosts {
		if h == host {
			return true
		}
		if hn, hp := hostAndPort(h); hn == name && (hp == "" || hp == port) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// setIdentity writes the Remote-* headers. Values come from the store, never from the request.
func setIdentity(hd http.Header, id auth.Identity) {
	if id.User == nil {
		return
	}
	// The values live in one array made once per user by the session view (HeaderValues): no
	// allocation on the hot path. The three-index slices keep an append to one header from
	// writing into the shared array. An empty value (no e-mail, no display name, no groups) is
	// not written at all: every header of the answer is copied by the server and by the proxy,
	// and each shipped proxy removes a client's copy of these headers whether or not the answer
	// has one (nginx's proxy_set_header, the Caddyfile's request_header lines, Traefik's
	// authResponseHeaders, our own reverse proxy).
	v := id.User.HeaderValues()
	for i, k := range identityHeaderNames {
		if v[i] != "" {
			hd[k] = v[i : i+1 : i+1]
		}
	}
}

var identityHeaderNames = [4]string{"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups"}

// forwardedHeaders are the headers that describe another request; only trusted proxies may send them.
var forwardedHeaders = []string{"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Uri",
	"X-Forwarded-For", "X-Original-Url", "X-Original-Method"}

func hasForwarded(r *http.Request) bool {
	for _, k := range forwardedHeaders {
		if _, ok := r.Header[k]; ok {
			return true
		}
	}
	return false
}

// trustedPeer refuses forward-auth requests that do not come from a configured proxy. It
// returns the peer's address, parsed once for the check and for the client address.
func (h *Handler) trustedPeer(w http.ResponseWriter, r *http.Request, endpoint string) (netip.Addr, bool) {
	peer, ok := PeerAddr(r)
	if ok && h.opts.Trusted.Contains(peer) {
		return peer, true
	}
	if h.untrustedLog.Allow() {
		h.opts.Logger.Warn("forward-auth request from an untrusted peer refused; add the proxy's address to server.trusted_proxies if it is yours",
			"peer", r.RemoteAddr, "endpoint", endpoint, "forwarded_headers", hasForwarded(r))
	}
	h.opts.Metrics.Authz(endpoint, "untrusted", 0)
	writeStatus(w, http.StatusForbidden, "forbidden: this peer is not in server.trusted_proxies")
	return netip.Addr{}, false
}

// forward serves Traefik's forwardAuth and Caddy's forward_auth (X-Forwarded-*).
func (h *Handler) forward(w http.ResponseWriter, r *http.Request) {
	start, now := h.clock()
	peer, ok := h.trustedPeer(w, r, "forward")
	if !ok {
		return
	}
	t, bad := h.forwardTarget(r, peer)
	if bad != "" {
		h.finish(w, r, "forward", start, nil, Decision{outcome: badRequest, Reason: bad}, true)
		return
	}
	d := h.decide(r, &t, now)
	h.allowed(d, now)
	h.finish(w, r, "forward", start, &t, d, true)
}

// request serves Nginx's auth_request (X-Original-URL); it never redirects.
func (h *Handler) request(w http.ResponseWriter, r *http.Request) {
	start, now := h.clock()
	peer, ok := h.trustedPeer(w, r, "request")
	if !ok {
		return
	}
	t, bad := h.originalTarget(r, peer)
	if bad != "" {
		h.finish(w, r, "request", start, nil, Decision{outcome: badRequest, Reason: bad}, false)
		return
	}
	d := h.decide(r, &t, now)
	h.allowed(d, now)
	h.finish(w, r, "request", start, &t, d, false)
}

// Reasons for refusing forwarded headers. Each names the header that is wrong (issue 18), so
// that an operator reading the 400 knows what to fix; none repeats a header's value.
const badOriginalOnForward = "X-Original-URL sent to /auth/forward (that header is for /auth/request; one description per request)"

// forwardTarget reads X-Forwarded-Method/Proto/Host/Port/Uri of a request from peer, a trusted
// proxy. It returns the target, or a non-empty reason naming the header that makes the request
// unusable.
//
// Headers are read from the map by their canonical names rather than with Header.Get, which
// canonicalises its argument on every call; the first value is what Get would return.
func (h *Handler) forwardTarget(r *http.Request, peer netip.Addr) (target, string) {
	var t target
	if _, ok := r.Header["X-Original-Url"]; ok {
		return t, badOriginalOnForward // two descriptions of one request: refuse rather than pick one
	}
	hv := r.Header["X-Forwarded-Host"]
	switch {
	case len(hv) == 0:
		return t, "X-Forwarded-Host missing"
	case len(hv) > 1:
		return t, "two X-Forwarded-Host headers"
	case hv[0] == "":
		return t, "X-Forwarded-Host empty"
	case strings.Contains(hv[0], ","):
		return t, "X-Forwarded-Host lists more than one host"
	}
	host := hv[0]
	proto := r.Header["X-Forwarded-Proto"]
	if len(proto) > 1 {
		return t, "two X-Forwarded-Proto headers"
	}
	t.scheme = strings.ToLower(firstValue(proto))
	switch t.scheme {
	case "":
		t.scheme = h.opts.PublicURL.Scheme
	case "ws":
		// Traefik names the scheme of an upgrade request ws or wss (issue 18): the same
		// origin as http and https, and the same rules.
		t.scheme = "http"
	case "wss":
		t.scheme = "https"
	case "http", "https":
	default:
		return t, "X-Forwarded-Proto is not http, https, ws or wss"
	}
	// X-Forwarded-Port, when the proxy sends it, is the port it received the request on: that
	// port, not one a client wrote into Host, is what the proxy routed on (issue 16).
	if pv := r.Header["X-Forwarded-Port"]; len(pv) > 0 {
		if len(pv) > 1 {
			return t, "two X-Forwarded-Port headers"
		}
		p, _, ok := canonicalPort(pv[0])
		if !ok {
			return t, "X-Forwarded-Port is not a port number"
		}
		name := host
		if c, ok := CanonicalHost(host, ""); ok {
			name, _ = hostAndPort(c)
			if strings.IndexByte(name, ':') >= 0 {
				name = "[" + name + "]"
			}
		}
		host = name + ":" + p
	}
	var ok bool
	if t.host, ok = CanonicalHost(host, t.scheme); !ok {
		return t, "X-Forwarded-Host is not a usable host name"
	}
	uri := "/"
	if v, present := r.Header["X-Forwarded-Uri"]; present {
		if len(v) != 1 {
			return t, "two X-Forwarded-Uri headers"
		}
		uri = v[0]
	}
	if bad := h.setURI(&t, uri); bad != "" {
		return t, "X-Forwarded-Uri " + bad
	}
	method := r.Header["X-Forwarded-Method"]
	if len(method) > 1 {
		return t, "two X-Forwarded-Method headers"
	}
	t.method = strings.ToUpper(firstValue(method))
	if t.method == "" {
		t.method = r.Method
	}
	t.client, t.clientOK = h.opts.Trusted.forwardedClient(peer, r)
	return t, ""
}

// firstValue is a header's first value, or "" (Header.Get on a slice already looked up).
func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// originalTarget reads X-Original-URL and X-Original-Method of a request from peer, a trusted
// proxy. It returns the target, or a non-empty reason naming the header that makes the request
// unusable.
func (h *Handler) originalTarget(r *http.Request, peer netip.Addr) (target, string) {
	var t target
	v := r.Header["X-Original-Url"]
	switch {
	case len(v) == 0:
		return t, "X-Original-URL missing"
	case len(v) > 1:
		return t, "two X-Original-URL headers"
	case len(v[0]) > maxURILen:
		return t, "X-Original-URL too long"
	}
	raw := v[0]
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return t, "X-Original-URL is not an absolute http or https URL"
	}
	t.scheme = u.Scheme
	var ok bool
	if t.host, ok = CanonicalHost(u.Host, t.scheme); !ok {
		return t, "X-Original-URL has no usable host"
	}
	fv := r.Header["X-Forwarded-Host"]
	if len(fv) > 1 {
		return t, "two X-Forwarded-Host headers"
	}
	if fh := firstValue(fv); fh != "" {
		if fhc, ok := CanonicalHost(fh, t.scheme); !ok || fhc != t.host {
			return t, "X-Forwarded-Host disagrees with X-Original-URL" // two descriptions that disagree
		}
	}
	// Judge the exact bytes nginx sent ($request_uri), not net/url's re-encoding of them.
	rest := raw[len(u.Scheme)+len("://"):]
	uri := "/"
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		uri = rest[j:]
		if rest[j] != '/' {
			uri = "/" + uri
		}
	}
	if bad := h.setURI(&t, uri); bad != "" {
		return t, "X-Original-URL " + bad
	}
	method := r.Header["X-Original-Method"]
	if len(method) > 1 {
		return t, "two X-Original-Method headers"
	}
	t.method = strings.ToUpper(firstValue(method))
	if t.method == "" {
		t.method = http.MethodGet
	}
	t.client, t.clientOK = h.opts.Trusted.forwardedClient(peer, r)
	return t, ""
}

// setURI validates a request URI (path and query), normalises the path for the rules and keeps
// the original for rd. It returns "" or what is wrong with the URI, worded to follow the name
// of the header that carried it.
func (h *Handler) setURI(t *target, uri string) string {
	switch {
	case len(uri) == 0 || uri[0] != '/':
		return "does not start with /"
	case len(uri) > maxURILen:
		return "is too long"
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c == 0x7f {
			return "contains a space or control character"
		}
	}
	rawPath := uri
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		rawPath = uri[:i]
	}
	p, err := NormalizePath(rawPath)
	if err != nil {
		var pe *pathError
		if errors.As(err, &pe) {
			return "has an ambiguous path: " + pe.reason
		}
		return "has an ambiguous path"
	}
	t.path, t.uri = p, uri
	return ""
}

// finish writes the answer for a decision and records it.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, endpoint string, start time.Time, t *target, d Decision, redirects bool) {
	hd := w.Header()
	hd["Cache-Control"] = noStore
	var result string
	switch d.outcome {
	case allow:
		result = "allowed"
		setIdentity(hd, d.Identity)
		w.WriteHeader(http.StatusOK)
	case unauth, stepUp:
		result = "unauthenticated"
		if d.outcome == stepUp {
			result = "step_up"
		}
		switch {
		case t == nil:
			writeStatus(w, http.StatusUnauthorized, "unauthorized")
		case redirects && isNavigation(t.method, r):
			hd["Location"] = []string{h.loginLocation(t, d.outcome == stepUp)}
			w.WriteHeader(http.StatusFound)
		case !redirects:
			// Nginx's auth_request passes on 2xx, 401 and 403 only, so /auth/request answers 401
			// and hands the login address over in Location: the deploy snippet turns it into
			// the 302 (auth_request_set + error_page 401 =302), rd percent-encoded by us.
			hd["Location"] = []string{h.loginLocation(t, d.outcome == stepUp)}
			writeStatus(w, http.StatusUnauthorized, "unauthorized")
		default:
			writeStatus(w, http.StatusUnauthorized, "unauthorized")
		}
	case forbid:
		result = "forbidden"
		if isNavigation(r.Method, r) || (t != nil && isNavigation(t.method, r)) {
			h.auth.ErrorPage(w, r, http.StatusForbidden, forbidMessage(d))
		} else {
			writeStatus(w, http.StatusForbidden, "forbidden")
		}
	case unavailable:
		result = "unavailable"
		writeUnavailable(h, w, r, t)
	default:
		result = "bad_request"
		writeStatus(w, http.StatusBadRequest, "bad request: "+d.Reason)
	}
	if d.outcome != allow && d.outcome != unauth {
		h.opts.Logger.Debug("forward auth refused", "endpoint", endpoint, "result", result, "reason", d.Reason)
	}
	h.opts.Metrics.Authz(endpoint, result, time.Since(start))
}

var noStore = []string{"no-store"}

// writeUnavailable is the fail-closed answer of a stale view: 503 with Retry-After, a page for a
// browser navigation and JSON otherwise. (Nginx's auth_request turns any status but 2xx, 401 and
// 403 into a 500 of its own; it stays closed.)
func writeUnavailable(h *Handler, w http.ResponseWriter, r *http.Request, t *target) {
	w.Header().Set("Retry-After", "2")
	if isNavigation(r.Method, r) || (t != nil && isNavigation(t.method, r)) {
		h.auth.ErrorPage(w, r, http.StatusServiceUnavailable,
			auth.N("Sign-in checks are paused for a moment while Latchkey reconnects to its database. Try again in a few seconds."))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(`{"error":"session check unavailable: the gateway cannot reach its database; retry shortly"}` + "\n"))
}

// loginLocation is the login page's address with the original URL as rd: the login page of the
// portal of the target host's domain, whose cookie the browser must get (issue 23).
func (h *Handler) loginLocation(t *target, stepUp bool) string {
	login := h.loginURL
	if h.severalDomains {
		login = h.auth.PortalFor(t.host) + "/.latchkey/login"
	}
	// The same bytes as url.Values{"rd": ..., "stepup": "1"}.Encode(), written straight into one
	// buffer of the exact size: no map, no escaped copy of host and URI, and the scheme's escaped
	// form is a constant.
	var esc string
	switch t.scheme {
	case "https":
		esc = "https%3A%2F%2F"
	case "http":
		esc = "http%3A%2F%2F"
	default:
		esc = url.QueryEscape(t.scheme + "://")
	}
	n := len(login) + len("?rd=") + len(esc) + queryEscapedLen(t.host) + queryEscapedLen(t.uri)
	if stepUp {
		n += len("&stepup=1")
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(login)
	b.WriteString("?rd=")
	b.WriteString(esc)
	writeQueryEscaped(&b, t.host)
	writeQueryEscaped(&b, t.uri)
	if stepUp {
		b.WriteString("&stepup=1")
	}
	return b.String()
}

// queryUnreserved reports the bytes url.QueryEscape leaves as they are.
func queryUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// queryEscapedLen is len(url.QueryEscape(s)).
func queryEscapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; !queryUnreserved(c) && c != ' ' {
			n += 2
		}
	}
	return n
}

// writeQueryEscaped writes url.QueryEscape(s) to b (a space becomes +, every other byte but the
// unreserved ones %XX in upper case) without making the escaped string first.
func writeQueryEscaped(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && queryUnreserved(s[j]) {
			j++
		}
		b.WriteString(s[i:j])
		if j == len(s) {
			return
		}
		if c := s[j]; c == ' ' {
			b.WriteByte('+')
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
		i = j + 1
	}
}

// forbidMessage is the forbidden page's message, a catalogue key: the page is in the reader's
// language.
func forbidMessage(d Decision) string {
	switch {
	case d.Identity.Restricted():
		return auth.N("You signed in with a recovery method. Create a new passkey first; then sign in with it.")
	case d.Reason == "rule requires a device-bound passkey":
		return auth.N("This page needs a passkey that is bound to one device (a security key or a device's built-in authenticator), not a synced passkey. Sign in with such a passkey, or add one on your account page.")
	case d.Reason == "rule requires another authenticator":
		return auth.N("This page accepts passkeys from specific authenticators only. Sign in with one of those, or ask your administrator.")
	}
	return auth.N("You are signed in, but this page is not open to your account.")
}

// isNavigation reports a browser page load: GET or HEAD accepting HTML.
func isNavigation(method string, r *http.Request) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	return strings.Contains(firstValue(r.Header["Accept"]), "text/html")
}

func writeStatus(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
