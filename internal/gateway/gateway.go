// Package gateway is Latchkey put together: the auth service, the access rules and proxy, the
// OpenID Provider, the request log and the metrics, built from plain settings. `latchkey serve`,
// the test harness (internal/lktest) and the benchmarks all build it here, so that the tests
// exercise the wiring that ships, request log and metrics included.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/oidc"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// Route is one host of reverse-proxy mode, as written in the config.
type Route struct {
	Host     string // without a port: that host on any port; with one: only that port
	Upstream string // http(s) URL
}

// Settings are the resolved values a gateway is built from. The caller opens the store and
// loads the keys; New checks and compiles the rest.
type Settings struct {
	Store  *store.Store
	Logger *slog.Logger
	// Version labels latchkey_build_info.
	Version string
	// Auth configures the auth service. New sets its SafeRedirect, ClientAddr, Metrics,
	// ViewMetrics and Logger; the caller sets the rest (PublicURL, keys, cookie, lifetimes,
	// WebAuthn relying party, mailer, clock).
	Auth           auth.Options
	TrustedProxies []string
	DefaultPolicy  string
	Rules          []proxy.RuleConfig
	Routes         []Route
	// UpstreamTimeout bounds the wait for an upstream's response headers.
	UpstreamTimeout time.Duration
	// OIDC configures the OpenID Provider; nil leaves it out. New sets its PublicURL, Store,
	// Sessions, BlockKey, ClientAddr, Logger and Now from the rest of the settings.
	OIDC *oidc.Options
}

// Gateway is a wired Latchkey, ready to serve.
type Gateway struct {
	Store   *store.Store
	Auth    *auth.Service
	Proxy   *proxy.Handler
	OIDC    *oidc.Provider // nil without Settings.OIDC
	Metrics *Metrics
	// Handler is the whole front door: the request log around the OpenID Provider's routes
	// and the proxy (forward auth, Latchkey's pages, reverse-proxy mode).
	Handler http.Handler
	// Public is the portal's origin.
	Public *url.URL
}

// New builds a gateway. Nothing runs in the background until Run.
func New(ctx context.Context, s Settings) (*Gateway, error) {
	if s.Store == nil || s.Auth.PublicURL == nil {
		return nil, errors.New("gateway: Store and Auth.PublicURL are required")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	public := *s.Auth.PublicURL
	public.Path, public.RawQuery, public.Fragment = "", "", ""
	trusted, err := proxy.ParseTrustedProxies(s.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	rules, err := proxy.CompileRules(s.Rules, s.DefaultPolicy)
	if err != nil {
		return nil, err
	}
	var routes []proxy.Route
	hosts := rules.Hosts()
	for i, rc := range s.Routes {
		// As written: a route host without a port takes that host on any port, one with a port
		// only that port.
		h, ok := proxy.CanonicalHost(rc.Host, "")
		if !ok {
			return nil, fmt.Errorf("routes[%d].host: %q is not a host name", i, rc.Host)
		}
		u, err := url.Parse(rc.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("routes[%d].upstream: %q is not an http(s) URL", i, rc.Upstream)
		}
		routes = append(routes, proxy.Route{Host: h, Upstream: u})
		hosts = append(hosts, h)
	}
	redirects := proxy.RedirectPolicy{Portal: &public, Hosts: hosts, CookieDomain: strings.TrimPrefix(s.Auth.CookieDomain, ".")}
	for i, d := range s.Auth.Domains {
		if i == 0 {
			continue // the portal and cookie domain above
		}
		// rd may target any configured domain (issue 23).
		redirects.Portals = append(redirects.Portals, d.PublicURL)
		redirects.CookieDomains = append(redirects.CookieDomains, d.Name)
	}
	clientAddr := func(r *http.Request) string {
		if a, ok := trusted.ClientAddr(r); ok {
			return a.String()
		}
		return ""
	}
	m := NewMetrics(s.Version)

	ao := s.Auth
	ao.PublicURL = &public
	ao.SafeRedirect = func(raw string) string { s, _ := redirects.Safe(raw); return s }
	ao.ClientAddr = clientAddr
	ao.Metrics, ao.ViewMetrics, ao.Logger = m, m, log
	svc, err := auth.New(ctx, s.Store, ao)
	if err != nil {
		return nil, err
	}
	h, err := proxy.New(proxy.Options{
		Auth: svc, PublicURL: &public, Trusted: trusted, Rules: rules, Redirects: redirects,
		CookieName: ao.CookieName, Routes: routes, UpstreamTimeout: s.UpstreamTimeout,
		Logger: log, Metrics: m, Now: ao.Now, // nil: the wall clock, read once per request
	})
	if err != nil {
		return nil, err
	}
	g := &Gateway{Store: s.Store, Auth: svc, Proxy: h, Metrics: m, Public: &public}
	front := http.Handler(h)
	if s.OIDC != nil {
		oo := *s.OIDC
		oo.PublicURL, oo.Store, oo.Sessions, oo.BlockKey = &public, s.Store, svc, ao.BlockKey
		oo.ClientAddr, oo.Logger, oo.Now = clientAddr, log, ao.Now
		prov, err := oidc.New(oo)
		if err != nil {
			return nil, err
		}
		g.OIDC = prov
		front = withOIDC(h, prov)
	}
	m.watchSessions(svc)
	m.watchView(svc)
	g.Handler = RequestLog(log, front)
	return g, nil
}

// withOIDC sends the OpenID Provider's paths to it and everything else to next.
func withOIDC(next http.Handler, p *oidc.Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, oidc.Prefix+"/") {
			p.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Run does the gateway's background work (the session view's polling and last-seen flushes,
// the sweeper, the OpenID Provider's loops) until ctx ends. It returns only when all of it has
// stopped, the final flush included, so that the caller may close the store right after.
func (g *Gateway) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); g.Auth.Run(ctx) }()
	if g.OIDC != nil {
		wg.Add(1)
		go func() { defer wg.Done(); g.OIDC.Run(ctx) }()
	}
	wg.Wait()
}
