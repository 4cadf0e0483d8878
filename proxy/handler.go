package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchkeyhq/latchkey/auth"
)

// Options configure a Handler. cmd/latchkey fills them from the config file.
type Options struct {
	Auth      *auth.Service
	PublicURL *url.URL
	Trusted   TrustedProxies
	Rules     *Rules
	Redirects RedirectPolicy
	// CookieName is the session cookie, removed from requests sent upstream.
	CookieName string
	// Routes enable reverse-proxy mode for their hosts.
	Routes []Route
	// UpstreamTimeout bounds the wait for an upstream's response headers.
	UpstreamTimeout time.Duration
	Logger          *slog.Logger
	Metrics         Recorder
	Now             func() time.Time
}

// Route sends a host's requests to an upstream in reverse-proxy mode.
type Route struct {
	Host     string // as in the config; without a port: that host on any port, with one: only that port
	Upstream *url.URL
}

// Recorder is the slice of metrics the proxy reports.
type Recorder interface {
	Authz(endpoint, result string, d time.Duration)
	Upstream(route string, status int, d time.Duration)
}

type nopRecorder struct{}

func (nopRecorder) Authz(string, string, time.Duration) {}
func (nopRecorder) Upstream(string, int, time.Duration) {}

// Handler is Latchkey's front door: /.latchkey/auth/* answers forward-auth sub-requests, the rest
// of /.latchkey/ is the auth service, and every other path belongs to a routed upstream.
type Handler struct {
	opts       Options
	auth       *auth.Service
	authRoutes http.Handler
	routes     map[routeKey]*upstream
	loginURL   string
	portalHost string
	// portals are the canonical hosts of every domain's portal; severalDomains is set when
	// there is more than one (issue 23).
	portals        map[string]bool
	severalDomains bool
	// untrustedLog limits the untrusted-peer warning: a scanner must not be able to flood the log.
	untrustedLog *rate.Limiter
	// fakeClock is set when Options.Now was given (tests): then the instant a decision is made
	// at comes from it, while durations still come from the wall clock.
	fakeClock bool
}

var _ http.Handler = (*Handler)(nil)

// New builds a Handler.
func New(opts Options) (*Handler, error) {
	if opts.Auth == nil || opts.PublicURL == nil {
		return nil, errors.New("proxy: Auth and PublicURL are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = nopRecorder{}
	}
	fake := opts.Now != nil
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CookieName == "" {
		opts.CookieName = "latchkey_session"
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = time.Minute
	}
	portal, _ := CanonicalHost(opts.PublicURL.Host, opts.PublicURL.Scheme)
	h := &Handler{
		opts:       opts,
		auth:       opts.Auth,
		authRoutes: opts.Auth.Routes(),
		routes:     map[routeKey]*upstream{},
		loginURL:   opts.PublicURL.Scheme + "://" + opts.PublicURL.Host + "/.latchkey/login",
		portalHost: portal,
		// A misconfigured proxy shows up at once; a flood costs a few lines a second at most.
		untrustedLog: rate.NewLimiter(rate.Every(time.Second), 5),
		fakeClock:    fake,
	}
	h.portals = map[string]bool{portal: true}
	if ds := opts.Auth.Domains(); len(ds) > 1 {
		h.severalDomains = true
		for _, d := range ds {
			if c, ok := CanonicalHost(d.PublicURL.Host, d.PublicURL.Scheme); ok {
				h.portals[c] = true
			}
		}
	}
	for _, rt := range opts.Routes {
		c, ok := CanonicalHost(rt.Host, "")
		if !ok {
			return nil, fmt.Errorf("proxy: route host %q is not a host name", rt.Host)
		}
		name, port := hostAndPort(c)
		h.routes[routeKey{name, port}] = h.newUpstream(rt)
	}
	return h, nil
}

// ServeHTTP dispatches by path prefix, then by host.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/.well-known/webauthn" && h.severalDomains {
		// Related Origin Requests (issue 23): browsers fetch this from the RP ID's origin.
		h.auth.WellKnownWebAuthn(w, r)
		return
	}
	if strings.HasPrefix(p, "/.latchkey/") {
		switch p {
		case "/.latchkey/auth/forward":
			h.forward(w, r)
		case "/.latchkey/auth/request":
			h.request(w, r)
		case "/.latchkey/debug/request":
			h.debugRequest(w, r)
		default:
			auth.SecurityHeaders(w.Header())
			h.authRoutes.ServeHTTP(w, r)
		}
		return
	}
	h.serveUpstream(w, r)
}
