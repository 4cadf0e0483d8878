package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
)

// upstream is one route's reverse proxy.
type upstream struct {
	name  string
	proxy *httputil.ReverseProxy
}

func (h *Handler) newUpstream(rt Route) *upstream {
	transport := &http.Transport{
		Proxy:                 nil, // never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: h.opts.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	u := &upstream{name: rt.Host}
	u.proxy = &httputil.ReverseProxy{
		Transport: transport,
		// Rewrite (not Director): the standard library drops the client's X-Forwarded-* and
		// hop-by-hop headers before this runs. The identity, cookie, token and path work was
		// done once on the request being forwarded (prepareUpstream), before the library
		// cloned it into pr.Out.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(rt.Upstream)
			pr.Out.Host = pr.In.Host // dashboards build links from the Host they were asked for
			h.setForwarded(pr)
		},
		// No periodic flush: the standard library already flushes responses without a length
		// (server-sent events, streaming) as they come, and a flush timer on every other response
		// costs a timer and a goroutine hand-off per request for nothing.
		FlushInterval: 0,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			h.opts.Logger.Warn("upstream unavailable", "route", rt.Host, "upstream", rt.Upstream.Redacted(), "err", err)
			// The person asked for an application by its address: name it, so that "which one?"
			// needs no guessing (r.Host is what the router matched, already judged).
			app := r.Host
			status := http.StatusBadGateway
			msg := auth.N("%s is not answering. Latchkey let you through; the application itself is down or unreachable. Try again in a moment.")
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				status = http.StatusGatewayTimeout
				msg = auth.N("%s took too long to answer. Latchkey let you through; the application itself is slow or stuck. Try again in a moment.")
			}
			// The error handler sees the outgoing request, which no longer carries the session
			// cookie, and whose URL is the upstream's: the decision's identity and the request as
			// it arrived (its address for the language links; its Accept-Language and language
			// cookie, which prepareUpstream leaves alone, for the language) travel with the
			// response writer.
			var id auth.Identity
			in := r
			if rec, ok := w.(*statusRecorder); ok {
				id = rec.id
				if rec.in != nil {
					in = rec.in
				}
			}
			h.auth.ErrorPageAs(w, in, id, status, msg, app)
		},
		ModifyResponse: func(resp *http.Response) error {
			varyOnCookie(resp)
			return nil
		},
	}
	return u
}

// prepareUpstream does, once and on the request itself, everything the upstream must and must not
// see (the ReverseProxy then clones it): the path the rules judged, in its normalised form, so
// that the upstream cannot read "/public/%2e%2e/admin" or "//admin/" differently (issue 16), the
// query as it came; no client copy of an identity header in any spelling; no session cookie; no
// Latchkey API token, whatever the decision (also one that is revoked, or valid for other hosts
// only, on a bypass path); and the identity Latchkey found.
func (h *Handler) prepareUpstream(r *http.Request, path string, id auth.Identity) {
	r.URL.Path, r.URL.RawPath = path, ""
	scrubIdentity(r.Header)
	removeCookie(r, h.opts.CookieName)
	removeLatchkeyBearer(r.Header)
	setIdentity(r.Header, id)
}

// varyOnCookie keeps a shared cache in front of Latchkey from serving one user's page to another:
// a response to a signed-in request (identity headers were set) that says nothing about caching
// gets Vary: Cookie. An application that set its own Cache-Control has decided for itself.
func varyOnCookie(resp *http.Response) {
	if resp.Request == nil || resp.Request.Header.Get("Remote-User") == "" {
		return
	}
	if _, ok := resp.Header["Cache-Control"]; ok {
		return
	}
	for _, v := range resp.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Cookie") {
				return
			}
		}
	}
	resp.Header.Add("Vary", "Cookie")
}

// setForwarded sets X-Forwarded-For/Host/Proto from what Latchkey saw. A trusted proxy in front
// of Latchkey keeps its chain; anyone else's claims were already dropped by Rewrite.
func (h *Handler) setForwarded(pr *httputil.ProxyRequest) {
	pr.SetXForwarded()
	peer, ok := PeerAddr(pr.In)
	if !ok || !h.opts.Trusted.Contains(peer) {
		return
	}
	if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
		pr.Out.Header.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+peer.String())
	}
	if proto := pr.In.Header.Get("X-Forwarded-Proto"); proto == "https" || proto == "http" {
		pr.Out.Header.Set("X-Forwarded-Proto", proto)
	}
}

// identityPrefixes are headers an upstream may read as identity; a client's copies are removed in
// every spelling (case is folded by textproto; underscores are folded here, since CGI-style
// servers map Remote_User and Remote-User to the same variable).
var identityPrefixes = []string{"remote-", "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups",
	"x-forwarded-preferred-username", "x-auth-request-"}

func scrubIdentity(hd http.Header) {
	for k := range hd {
		if k == "" {
			continue
		}
		// Only names starting with r or x can match; the rest are skipped without work.
		if c := k[0] | 0x20; c != 'r' && c != 'x' {
			continue
		}
		for _, p := range identityPrefixes {
			if hasFoldedPrefix(k, p) {
				delete(hd, k)
				break
			}
		}
	}
}

// hasFoldedPrefix reports whether name starts with prefix (lower case, '-' separated) when
// compared case-insensitively with '_' read as '-', without allocating.
func hasFoldedPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// IsLatchkeyBearer reports whether an Authorization value carries a Latchkey API token: the
// scheme Bearer (any case) and a credential starting with "lk_", the fixed prefix of tokens
// (auth/tokens.go). The shipped nginx and Caddy files remove such a header with the same test
// before the upstream; other Authorization values pass untouched.
func IsLatchkeyBearer(v string) bool {
	v = strings.TrimLeft(v, " \t")
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	rest := v[len(scheme):]
	cred := strings.TrimLeft(rest, " \t")
	return len(cred) < len(rest) && strings.HasPrefix(cred, "lk_")
}

// removeLatchkeyBearer drops every Authorization value that carries a Latchkey token and keeps
// the others.
func removeLatchkeyBearer(hd http.Header) {
	vs, ok := hd["Authorization"]
	if !ok {
		return
	}
	kept := vs[:0:0]
	for _, v := range vs {
		if !IsLatchkeyBearer(v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		delete(hd, "Authorization")
		return
	}
	hd["Authorization"] = kept
}

// removeCookie drops the session cookie from the Cookie header and keeps every other cookie.
func removeCookie(r *http.Request, name string) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return
	}
	var kept []string
	for _, line := range lines {
		for _, part := range strings.Split(line, ";") {
			p := strings.TrimSpace(part)
			if p == "" {
				continue
			}
			if n, _, _ := strings.Cut(p, "="); strings.TrimSpace(n) == name {
				continue
			}
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header["Cookie"] = []string{strings.Join(kept, "; ")}
}

// serveUpstream is reverse-proxy mode: find the route by Host, decide on this very request (its
// Host and path, never on X-Forwarded-* describing another one), then proxy.
func (h *Handler) serveUpstream(w http.ResponseWriter, r *http.Request) {
	start, now := h.clock()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// r.Host is what net/http took from an absolute request line, or else the one Host header
	// (it refuses two). The route and the rules both use it, name and port, so they cannot
	// disagree (issue 16). Latchkey has one listener, so the port a request names is the only
	// thing that can tell "app:8443" from "app" apart; it is not the listener's port, which a
	// port mapping (docker -p 8080:9000) makes differ from what browsers use.
	host, ok := CanonicalHost(r.Host, scheme)
	if !ok {
		h.auth.ErrorPage(w, r, http.StatusBadRequest, auth.N("This request has no usable Host."))
		return
	}
	up := h.route(host, scheme)
	if up == nil {
		if h.portals[host] && (r.URL.Path == "/" || r.URL.Path == "") {
			http.Redirect(w, r, "/.latchkey/account", http.StatusFound)
			return
		}
		h.auth.ErrorPage(w, r, http.StatusNotFound, auth.N("Nothing is served at this address."))
		return
	}
	// The rules see the scheme of this connection, so that a Host without a port has the port
	// the request really reached (a rule naming :443 does not match plain http on :80).
	t := target{method: r.Method, scheme: scheme, host: host}
	if h.setURI(&t, r.URL.RequestURI()) != "" || strings.HasPrefix(t.path, "/.latchkey/") {
		h.auth.ErrorPage(w, r, http.StatusBadRequest, auth.N("This address could mean different things to different servers, so it is refused."))
		return
	}
	t.client, t.clientOK = h.opts.Trusted.ClientAddr(r)
	d := h.decide(r, &t, now)
	h.allowed(d, now)
	if !d.Allowed() {
		t.scheme = h.opts.PublicURL.Scheme // the login page sends the browser back over public_url's scheme
		h.finish(w, r, "proxy", start, &t, d, true)
		return
	}
	h.opts.Metrics.Authz("proxy", "allowed", time.Since(start))
	rec := &statusRecorder{ResponseWriter: w, id: d.Identity}
	r = h.rollDeadlines(rec, r)
	h.prepareUpstream(r, t.path, d.Identity)
	rec.in = r
	upstreamStart := time.Now() // the upstream histogram excludes the access check
	up.proxy.ServeHTTP(rec, r)
	h.opts.Metrics.Upstream(up.name, rec.status, time.Since(upstreamStart))
}

// route finds the upstream for a canonical host with the port semantics of rules: a route
// naming a port serves only that port; one without serves its host on any port. An exact
// host:port route wins over a port-less one.
func (h *Handler) route(host, scheme string) *upstream {
	name, port := hostAndPort(host)
	if port == "" {
		port = defaultPort(scheme)
	}
	if up := h.routes[routeKey{name, port}]; up != nil {
		return up
	}
	return h.routes[routeKey{name, ""}]
}

// routeKey is a route's host name and port ("" for any port).
type routeKey struct{ name, port string }

// rollDeadlines turns the server's read and write timeouts, which bound a whole request, into
// bounds on each read of the request body and each write of the response. A proxied request may
// legitimately outlast them (a large upload, a server-sent event stream, a WebSocket), while a
// client that stops reading or sending is still cut off after the same time.
//
// The read deadline is cleared once the body is consumed: net/http cancels the request's context
// when a read deadline passes during the response, which would end a long stream mid-way.
func (h *Handler) rollDeadlines(rec *statusRecorder, r *http.Request) *http.Request {
	rc := http.NewResponseController(rec.ResponseWriter)
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || r.Header.Get("Upgrade") != "" {
		// An upgraded connection is bounded by the client and upstream closing it; the
		// timeouts of the server are for HTTP requests.
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
		return r
	}
	if srv.WriteTimeout > 0 {
		rec.rc, rec.idle = rc, srv.WriteTimeout
	}
	if r.Body == nil || r.Body == http.NoBody {
		rc.SetReadDeadline(time.Time{})
		return r
	}
	if srv.ReadTimeout <= 0 {
		return r
	}
	r2 := *r
	r2.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, idle: srv.ReadTimeout}
	return &r2
}

// deadlineBody moves the connection's read deadline forward on every read of the request body
// and clears it at the end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// statusRecorder records the status and moves the write deadline forward before each write.
// Flush and Hijack keep working through Unwrap.
type statusRecorder struct {
	http.ResponseWriter
	id     auth.Identity // the decision's, for the error page
	in     *http.Request // the request as it arrived (prepared for the upstream), for the error page
	status int
	rc     *http.ResponseController // nil: no write deadline to move
	idle   time.Duration
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if s.rc != nil {
		s.rc.SetWriteDeadline(time.Now().Add(s.idle))
	}
	return s.ResponseWriter.Write(p)
}

// FlushError moves the write deadline forward like Write does; ReverseProxy flushes through it.
func (s *statusRecorder) FlushError() error {
	if s.rc != nil {
		s.rc.SetWriteDeadline(time.Now().Add(s.idle))
	}
	return http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
