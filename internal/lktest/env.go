package lktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/internal/gateway"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// Clock is a settable clock shared by the store, auth and proxy of an Env.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to a fixed time.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Config is what an Env is built from; zero values give a working local setup.
type Config struct {
	PublicURL    string // default http://localhost:PORT of the test server
	RPID         string
	Origins      []string
	CookieDomain string
	// Domains are further cookie domains with their portals (issue 23); the first domain is
	// CookieDomain with PublicURL.
	Domains         []DomainConfig
	DefaultPolicy   string
	Rules           []proxy.RuleConfig
	Routes          map[string]string // host → upstream URL
	UpstreamTimeout time.Duration     // default: the proxy's own
	TrustedProxies  []string          // default loopback
	Lifetime        time.Duration
	Inactivity      time.Duration
	Mailer          auth.Mailer
	HashKey         []byte
	BlockKey        []byte
	LogLevel        slog.Level
	// Wrap, when set, puts a handler in front of the proxy (the OpenID Provider's routes); it
	// runs once the auth service exists and before the server starts.
	Wrap         func(e *Env, next http.Handler) http.Handler
	MaxStaleness time.Duration // default: auth's own (5 s)
	StoreTimeout time.Duration // default: the store's own (2 s)
	// Brand is the owner's name, logo, accent and support line (issue 21); zero is Latchkey's.
	Brand auth.Brand
}

// DomainConfig is one more cookie domain and its portal.
type DomainConfig struct{ Domain, PublicURL string }

// Env is a real Latchkey (store, auth, proxy) behind a real HTTP server on 127.0.0.1.
type Env struct {
	T      testing.TB
	Dir    string
	DBPath string
	Store  *store.Store
	Auth   *auth.Service
	// Gateway is the whole wiring; Handler is its proxy handler alone (no request log), for
	// tests and benchmarks that call it without TCP.
	Gateway *gateway.Gateway
	Handler *proxy.Handler
	Server  *httptest.Server
	Public  *url.URL
	Clock   *Clock
	Logs    *SyncBuffer
	// BlockKey is the session block key the auth service was built with.
	BlockKey []byte
	cancel   context.CancelFunc
	ran      chan struct{} // closed when Auth.Run returned
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RandomKey returns n random bytes.
func RandomKey(n int) []byte {
	k := make([]byte, n)
	rand.Read(k)
	return k
}

// New starts an Env and stops it when the test ends.
func New(t testing.TB, cfg Config) *Env {
	t.Helper()
	dir := t.TempDir()
	clock := &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{T: t, Dir: dir, DBPath: filepath.Join(dir, "latchkey.db"), Clock: clock, Logs: &SyncBuffer{}, cancel: cancel}
	st, err := store.Open(ctx, store.Options{Path: e.DBPath, Now: clock.Now, Timeout: cfg.StoreTimeout})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e.Store = st
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://localhost:" + portOf(ln.Addr().String())
	}
	e.Public, _ = url.Parse(cfg.PublicURL)
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	}
	if cfg.HashKey == nil {
		cfg.HashKey = RandomKey(32)
	}
	if cfg.BlockKey == nil {
		cfg.BlockKey = RandomKey(32)
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 24 * time.Hour
	}
	if cfg.Inactivity == 0 {
		cfg.Inactivity = 2 * time.Hour
	}
	routes := make([]gateway.Route, 0, len(cfg.Routes))
	for h, up := range cfg.Routes {
		routes = append(routes, gateway.Route{Host: h, Upstream: up})
	}
	var domains []auth.Domain
	if len(cfg.Domains) > 0 {
		domains = append(domains, auth.Domain{Name: cfg.CookieDomain, PublicURL: e.Public})
		for _, d := range cfg.Domains {
			u, err := url.Parse(d.PublicURL)
			if err != nil {
				t.Fatal(err)
			}
			domains = append(domains, auth.Domain{Name: d.Domain, PublicURL: u})
		}
	}
	log := slog.New(slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	// The wiring serve uses (request log and metrics included), with the test's clock, keys and
	// a short poll interval.
	gw, err := gateway.New(ctx, gateway.Settings{
		Store: st, Logger: log, Version: "test",
		Auth: auth.Options{
			PublicURL: e.Public, RPID: cfg.RPID, Origins: cfg.Origins, CookieName: "latchkey_session", CookieDomain: cfg.CookieDomain, Domains: domains,
			Lifetime: cfg.Lifetime, Inactivity: cfg.Inactivity, HashKey: cfg.HashKey, BlockKey: cfg.BlockKey,
			Mailer: cfg.Mailer, Now: clock.Now, PollInterval: 100 * time.Millisecond, MaxStaleness: cfg.MaxStaleness,
			Brand: cfg.Brand,
		},
		TrustedProxies: cfg.TrustedProxies, DefaultPolicy: cfg.DefaultPolicy, Rules: cfg.Rules, Routes: routes,
		UpstreamTimeout: cfg.UpstreamTimeout,
	})
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	e.Gateway, e.Auth, e.Handler = gw, gw.Auth, gw.Proxy
	e.ran = make(chan struct{})
	go func() { gw.Run(ctx); close(e.ran) }()
	e.BlockKey = cfg.BlockKey
	handler := gw.Handler
	if cfg.Wrap != nil {
		handler = cfg.Wrap(e, handler)
	}
	e.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 64 << 10}}
	e.Server.Start()
	t.Cleanup(func() {
		e.Server.Close()
		e.Stop()
		st.Close()
		if strings.Contains(e.Logs.String(), "panic") {
			t.Errorf("a panic was logged:\n%s", e.Logs.String())
		}
	})
	return e
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Origin is the portal's origin as a browser sends it.
func (e *Env) Origin() string { return e.Public.Scheme + "://" + e.Public.Host }

// AddUser creates a user and returns it with a one-time enrolment token.
func (e *Env) AddUser(name string, groups ...string) (store.User, string) {
	e.T.Helper()
	u := store.User{ID: uuid.NewString(), Name: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], Email: name + "@example.com", Groups: groups}
	if err := e.Store.CreateUser(context.Background(), u); err != nil {
		e.T.Fatal(err)
	}
	link, err := auth.NewEnrolmentLink(context.Background(), e.Store, e.Public, u.ID, e.Clock.Now())
	if err != nil {
		e.T.Fatal(err)
	}
	lu, _ := url.Parse(link)
	return u, lu.Query().Get("token")
}

// Stop ends the server's background work (Auth.Run) and waits for it, as serve does before it
// closes the store: the final last-seen flush is written when Stop returns.
func (e *Env) Stop() {
	e.cancel()
	<-e.ran
}

// Refresh makes the server's in-memory view reflect the store now.
func (e *Env) Refresh() { e.Auth.Refresh(context.Background()) }

// Tables dumps the tables that a refused request must leave untouched, for before/after compares.
func (e *Env) Tables() string {
	e.T.Helper()
	var b strings.Builder
	for _, table := range []string{"users", "credentials", "sessions", "invites", "recovery_codes", "api_tokens"} {
		rows, err := e.Store.DB().Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			e.T.Fatal(err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "[%s]\n", table)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.T.Fatal(err)
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

// Count returns SELECT COUNT(*) of a table with an optional WHERE clause.
func (e *Env) Count(table, where string, args ...any) int {
	e.T.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := e.Store.DB().QueryRow(q, args...).Scan(&n); err != nil && err != sql.ErrNoRows {
		e.T.Fatal(err)
	}
	return n
}

// Client is a browser-like HTTP client for an Env: it sends the portal's Host and Origin and
// keeps the cookies it is given.
type Client struct {
	env     *Env
	hc      *http.Client
	Cookies map[string]string
	Origin  string // sent on POSTs; "" to omit
	Header  http.Header
}

// Client returns a new browser with no cookies.
func (e *Env) Client() *Client {
	return &Client{env: e, Cookies: map[string]string{}, Origin: e.Origin(), Header: http.Header{},
		hc: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Response is a finished response with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body.
func (r *Response) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Do sends a request to the Env's server as if to host (default: the portal's host).
func (c *Client) Do(method, host, path string, body io.Reader, hdr http.Header) *Response {
	c.env.T.Helper()
	req, err := http.NewRequest(method, c.env.Server.URL+path, body)
	if err != nil {
		c.env.T.Fatal(err)
	}
	if host == "" {
		host = c.env.Public.Host
	}
	req.Host = host
	for k, v := range c.Header {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if len(c.Cookies) > 0 && req.Header.Get("Cookie") == "" {
		var parts []string
		for k, v := range c.Cookies {
			parts = append(parts, k+"="+v)
		}
		req.Header.Set("Cookie", strings.Join(parts, "; "))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.env.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.Cookies, ck.Name)
		} else {
			c.Cookies[ck.Name] = ck.Value
		}
	}
	return &Response{Response: resp, Body: b}
}

// Get fetches a portal path.
func (c *Client) Get(path string) *Response { return c.Do(http.MethodGet, "", path, nil, nil) }

// PostJSON posts a JSON body (raw bytes are sent as they are) with Origin and Content-Type.
func (c *Client) PostJSON(path string, body any) *Response {
	c.env.T.Helper()
	var raw []byte
	switch b := body.(type) {
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(body)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	if c.Origin != "" {
		hdr.Set("Origin", c.Origin)
	}
	return c.Do(http.MethodPost, "", path, bytes.NewReader(raw), hdr)
}

// BeginRegister starts a registration (with an enrolment token, or "" for a signed-in session).
func (c *Client) BeginRegister(token string) (Options, *Response) {
	c.env.T.Helper()
	body := map[string]string{}
	if token != "" {
		body["token"] = token
	}
	r := c.PostJSON("/.latchkey/api/register/begin", body)
	if r.StatusCode != http.StatusOK {
		return Options{}, r
	}
	o, err := ParseOptions(r.Body)
	if err != nil {
		c.env.T.Fatal(err)
	}
	return o, r
}

// Enrol registers pk through an enrolment token (or the signed-in session when token is "")
// and returns the recovery codes shown, failing the test on any error.
func (c *Client) Enrol(pk *Passkey, token string) []string {
	c.env.T.Helper()
	o, r := c.BeginRegister(token)
	if r.StatusCode != http.StatusOK {
		c.env.T.Fatalf("register/begin: %d %s", r.StatusCode, r.Body)
	}
	r = c.PostJSON("/.latchkey/api/register/finish", pk.Attest(o, c.env.Origin(), Ceremony{}))
	if r.StatusCode != http.StatusOK {
		c.env.T.Fatalf("register/finish: %d %s", r.StatusCode, r.Body)
	}
	var out struct {
		Codes []string `json:"recovery_codes"`
	}
	r.JSON(&out)
	return out.Codes
}

// BeginLogin starts a discoverable login.
func (c *Client) BeginLogin() Options {
	c.env.T.Helper()
	r := c.PostJSON("/.latchkey/api/login/begin", map[string]any{})
	if r.StatusCode != http.StatusOK {
		c.env.T.Fatalf("login/begin: %d %s", r.StatusCode, r.Body)
	}
	o, err := ParseOptions(r.Body)
	if err != nil {
		c.env.T.Fatal(err)
	}
	return o
}

// FinishLogin posts an assertion body to login/finish with an optional rd.
func (c *Client) FinishLogin(body []byte, rd string) *Response {
	path := "/.latchkey/api/login/finish"
	if rd != "" {
		path += "?" + url.Values{"rd": {rd}}.Encode()
	}
	return c.PostJSON(path, body)
}

// Login signs in with pk and returns the redirect target, failing the test on any error.
func (c *Client) Login(pk *Passkey, rd string) string {
	c.env.T.Helper()
	o := c.BeginLogin()
	r := c.FinishLogin(pk.Assert(o, c.env.Origin(), Ceremony{}), rd)
	if r.StatusCode != http.StatusOK {
		c.env.T.Fatalf("login/finish: %d %s", r.StatusCode, r.Body)
	}
	var out struct {
		Redirect string `json:"redirect"`
	}
	r.JSON(&out)
	return out.Redirect
}

// Session returns the session cookie value, or "".
func (c *Client) Session() string { return c.Cookies["latchkey_session"] }

// Forward performs a Traefik-style forward-auth check for host and uri with this client's cookies.
func (c *Client) Forward(host, uri string, hdr http.Header) *Response {
	h := http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {c.env.Public.Scheme},
		"X-Forwarded-Host": {host}, "X-Forwarded-Uri": {uri}, "X-Forwarded-For": {"198.51.100.7"}}
	for k, v := range hdr {
		h[k] = v
	}
	return c.Do(http.MethodGet, "", "/.latchkey/auth/forward", nil, h)
}
