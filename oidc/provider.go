// Package oidc makes Latchkey an OpenID Provider (issue 22): the same users, passkeys, groups and
// sessions that forward auth uses sign people into apps that speak OpenID Connect. The protocol is
// zitadel/oidc's certified op package; this package supplies its storage (Latchkey's store), the
// login step (the Latchkey session, with the existing passkey step-up), consent, and Latchkey's
// rules: authorization code flow only, PKCE S256, single-use codes, rotating refresh tokens with
// reuse detection, and tokens that end with the session that authorized them.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/time/rate"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/store"
)

// Prefix is where the provider lives: the issuer is public_url + Prefix.
const Prefix = "/.latchkey/oidc"

// Fixed lifetimes: an authorization must be finished within authRequestTTL, and its code redeemed
// within codeTTL (RFC 6749 recommends at most 10 minutes; apps redeem at once).
const (
	authRequestTTL = 10 * time.Minute
	codeTTL        = time.Minute
)

// Defaults for Options.
const (
	DefaultAccessTokenLifetime  = time.Hour
	DefaultIDTokenLifetime      = time.Hour
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour
	DefaultTokenRate            = 20 // requests a second per client address, token/introspect/revoke
)

// Sessions is what the provider needs from Latchkey's session service (auth.Service).
type Sessions interface {
	Authenticate(r *http.Request) (auth.Identity, bool)
	Refresh(ctx context.Context)
	ErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string)
	ErrorPagef(w http.ResponseWriter, r *http.Request, status int, msg string, args ...any)
	Page(w http.ResponseWriter, r *http.Request, status int, name, title string, data any, titleArgs ...any)
}

// Options configure a Provider. cmd/latchkey fills them from the config file.
type Options struct {
	PublicURL *url.URL // the issuer is PublicURL + Prefix
	Store     *store.Store
	Sessions  Sessions
	// BlockKey is the session block key. Keys derived from it seal the signing keys in the store
	// and encrypt access tokens and codes; it never enters the database.
	BlockKey []byte
	// SigningAlg is RS256 (default) or ES256; it applies to keys created from now on (first use or
	// `latchkey oidc keys rotate`).
	SigningAlg           string
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration // absolute: from the authorization, across rotations
	// TokenRate limits the token, introspection and revocation endpoints per client address
	// (requests a second; the burst is twice that). Negative disables the limit.
	TokenRate float64
	// LogoutPoll is how often ended sessions are looked for, for back-channel logout.
	LogoutPoll time.Duration
	// ClientAddr returns the client's address for rate limits and audit rows (nil: the TCP peer).
	ClientAddr func(r *http.Request) string
	Logger     *slog.Logger
	Now        func() time.Time
}

// Provider is the OpenID Provider. It is an http.Handler for everything under Prefix.
type Provider struct {
	opts       Options
	st         *store.Store
	auth       Sessions
	op         *op.Provider
	keys       *keyring
	issuer     string // public_url + Prefix
	public     string // public_url's origin
	consentKey []byte
	sidKey     []byte
	limits     *limiter
	// logoutClient posts back-channel logout tokens; never through an environment proxy.
	logoutClient *http.Client
	mux          *http.ServeMux
}

var _ http.Handler = (*Provider)(nil)

// Issuer returns the issuer URL for a public URL.
func Issuer(public *url.URL) string {
	return strings.TrimSuffix(public.Scheme+"://"+public.Host+public.Path, "/") + Prefix
}

// New builds a Provider.
func New(opts Options) (*Provider, error) {
	if opts.PublicURL == nil || opts.Store == nil || opts.Sessions == nil {
		return nil, errors.New("oidc: PublicURL, Store and Sessions are required")
	}
	if len(opts.BlockKey) < 16 {
		return nil, errors.New("oidc: the session block key is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if opts.IDTokenLifetime <= 0 {
		opts.IDTokenLifetime = DefaultIDTokenLifetime
	}
	if opts.RefreshTokenLifetime <= 0 {
		opts.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if opts.TokenRate == 0 {
		opts.TokenRate = DefaultTokenRate
	}
	if opts.LogoutPoll <= 0 {
		opts.LogoutPoll = DefaultLogoutPoll
	}
	keys, err := newKeyring(opts.Store, opts.BlockKey, opts.SigningAlg, retainKeys(opts.IDTokenLifetime), opts.Now)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		opts: opts, st: opts.Store, auth: opts.Sessions, keys: keys,
		issuer:     Issuer(opts.PublicURL),
		public:     opts.PublicURL.Scheme + "://" + opts.PublicURL.Host,
		consentKey: subKey(opts.BlockKey, "consent-csrf"),
		sidKey:     subKey(opts.BlockKey, "sid"),
		limits:     newLimiter(opts.TokenRate),
		logoutClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	var cryptoKey [32]byte
	copy(cryptoKey[:], subKey(opts.BlockKey, "token-crypto"))
	cfg := &op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: p.public + "/.latchkey/login",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          supportedScopes,
		SupportedClaims:          append([]string{"groups", "sid"}, claimsSupported...),
		// Back-channel logout, with sid in ID tokens and logout tokens.
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	popts := []op.Option{
		op.WithLogger(opts.Logger),
		// Tokens travel as bearer headers, never as cookies: cross-origin calls (a single-page app
		// reading userinfo) need no credentials, so none are allowed.
		op.WithCORSOptions(&cors.Options{
			AllowedOrigins: []string{"*"}, AllowedMethods: []string{http.MethodGet, http.MethodPost},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Accept"},
		}),
	}
	if opts.PublicURL.Scheme == "http" {
		popts = append(popts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(cfg, &storage{p: p}, op.StaticIssuer(p.issuer), popts...)
	if err != nil {
		return nil, fmt.Errorf("oidc: provider: %w", err)
	}
	p.mux = p.routes()
	return p, nil
}

// retainKeys is how long a rotated-out key stays in the JWKS: until the last ID token it signed
// has expired, plus the time other processes may take to notice the rotation.
func retainKeys(idLifetime time.Duration) time.Duration { return idLifetime + keyReload + time.Minute }

// claimsSupported is what discovery advertises: the standard claims Latchkey sets.
var claimsSupported = []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "at_hash", "c_hash",
	"azp", "preferred_username", "name", "email", "email_verified"}

func (p *Provider) now() time.Time { return p.opts.Now() }

// Issuer is this provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// ServeHTTP serves every path under Prefix.
// The client's address rides in the context for rate limits and audit rows.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), addrKey{}, p.clientAddr(r))))
}

// Run sweeps expired authorizations and tokens and sends back-channel logouts until ctx ends.
// Start it in a goroutine.
func (p *Provider) Run(ctx context.Context) {
	// Run owns the logout loop too: it returns only when both have stopped, so that the caller
	// can close the store after it.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.logoutLoop(ctx) }()
	defer wg.Wait()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.st.SweepOIDC(ctx); err != nil {
				p.opts.Logger.Warn("sweeping expired OpenID state failed", "err", err)
			}
			p.limits.sweep()
		}
	}
}

func (p *Provider) routes() *http.ServeMux {
	lib := http.StripPrefix(Prefix, p.op)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"/login", p.login)
	mux.HandleFunc("POST "+Prefix+"/consent", p.consent)
	mux.HandleFunc("GET "+Prefix+"/admin", p.adminPage)
	mux.HandleFunc("POST "+Prefix+"/admin/clients", p.adminAdd)
	mux.HandleFunc("POST "+Prefix+"/admin/clients/remove", p.adminRemove)
	mux.HandleFunc("POST "+Prefix+"/admin/clients/rotate-secret", p.adminRotate)
	// op's own callback would hand out a code to whoever knows a request ID; Latchkey issues the
	// code from the login step instead, to the browser whose session approved it.
	mux.Handle(Prefix+"/authorize/callback", http.NotFoundHandler())
	mux.HandleFunc("GET "+Prefix+"/.well-known/openid-configuration", p.discovery)
	mux.Handle(Prefix+"/authorize", p.withIss(lib))
	mux.Handle(Prefix+"/oauth/token", p.limited(lib))
	mux.Handle(Prefix+"/oauth/introspect", p.limited(lib))
	mux.Handle(Prefix+"/revoke", p.limited(lib))
	mux.Handle(Prefix+"/end_session", p.withIdentity(lib))
	mux.Handle(Prefix+"/", lib)
	return mux
}

// discovery is op's discovery document, narrowed to what Latchkey serves and with the RFC 9207
// flag that tells clients to expect (and check) iss on the authorization response.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	http.StripPrefix(Prefix, p.op).ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		p.opts.Logger.Error("discovery document", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	doc["authorization_response_iss_parameter_supported"] = true
	doc["response_types_supported"] = []string{"code"}
	doc["response_modes_supported"] = []string{"query"}
	doc["grant_types_supported"] = []string{"authorization_code", "refresh_token"}
	doc["code_challenge_methods_supported"] = []string{"S256"}
	doc["scopes_supported"] = supportedScopes
	delete(doc, "device_authorization_endpoint")
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	json.NewEncoder(w).Encode(doc)
}

// issWriter adds iss (RFC 9207) to redirects that op sends to a client's redirect URI (error
// responses of the authorization endpoint); Latchkey's own redirects add it where they are made.
type issWriter struct {
	http.ResponseWriter
	p *Provider
}

func (w issWriter) WriteHeader(code int) {
	if code >= 300 && code < 400 {
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, w.p.issuer+"/") {
			w.Header().Set("Location", withParams(loc, url.Values{"iss": {w.p.issuer}}))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (p *Provider) withIss(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.SecurityHeaders(w.Header())
		h.ServeHTTP(issWriter{ResponseWriter: w, p: p}, r)
	})
}

// withParams merges params into a URI's query.
func withParams(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

type identityKey struct{}

// withIdentity hands the browser's Latchkey session to the end-session storage call.
func (p *Provider) withIdentity(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.SecurityHeaders(w.Header())
		if id, ok := p.auth.Authenticate(r); ok && id.SessionID != "" {
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		}
		h.ServeHTTP(w, r)
	})
}

func identityFrom(ctx context.Context) (auth.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(auth.Identity)
	return id, ok
}

type addrKey struct{}

func (p *Provider) clientAddr(r *http.Request) string {
	if p.opts.ClientAddr != nil {
		return p.opts.ClientAddr(r)
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// limited rate-limits an endpoint per client address.
func (p *Provider) limited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, _ := r.Context().Value(addrKey{}).(string)
		if !p.limits.allow(addr) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"too many requests"}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// audit records a security event in the store and the log. detail must hold no secret.
func (p *Provider) audit(ctx context.Context, userID, event, detail string) {
	ip, _ := ctx.Value(addrKey{}).(string)
	p.opts.Logger.InfoContext(ctx, "audit", "event", event, "user_id", userID, "detail", detail, "ip", ip)
	if err := p.st.Audit(context.WithoutCancel(ctx), store.Event{UserID: userID, Event: event, Detail: detail, IP: ip}); err != nil {
		p.opts.Logger.ErrorContext(ctx, "writing audit event failed", "event", event, "err", err)
	}
}

// limiter is a token bucket per client address, bounded so that a flood of addresses costs a
// fixed amount of memory.
type limiter struct {
	rate float64
	mu   sync.Mutex
	m    map[string]*rate.Limiter
}

const maxLimiters = 10000

func newLimiter(r float64) *limiter { return &limiter{rate: r, m: map[string]*rate.Limiter{}} }

func (l *limiter) allow(addr string) bool {
	if l.rate < 0 {
		return true
	}
	l.mu.Lock()
	lim, ok := l.m[addr]
	if !ok {
		if len(l.m) >= maxLimiters {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(rate.Limit(l.rate), int(2*l.rate)+1)
		l.m[addr] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}

func (l *limiter) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, lim := range l.m {
		if lim.Tokens() >= float64(lim.Burst()) {
			delete(l.m, k)
		}
	}
}

// RotateSigningKey adds a new signing key (of alg) and retires the current one, which the JWKS
// keeps until the ID tokens it signed have expired. It serves `latchkey oidc keys rotate`.
func RotateSigningKey(ctx context.Context, st *store.Store, blockKey []byte, alg string, idLifetime time.Duration, now func() time.Time) (string, error) {
	if idLifetime <= 0 {
		idLifetime = DefaultIDTokenLifetime
	}
	kr, err := newKeyring(st, blockKey, alg, retainKeys(idLifetime), now)
	if err != nil {
		return "", err
	}
	return kr.Rotate(ctx)
}
