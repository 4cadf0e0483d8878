package oidc_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/oidc"
	"github.com/latchkeyhq/latchkey/store"
)

// fixture is a real Latchkey (store, auth, proxy) with the OpenID Provider in front, on a real
// HTTP server, and go-oidc plus x/oauth2 as the relying party.
type fixture struct {
	t      testing.TB
	env    *lktest.Env
	prov   *oidc.Provider
	issuer string
	ctx    context.Context
	rp     *gooidc.Provider // go-oidc's view of the issuer (discovery)
}

type fixtureOpts struct {
	tokenRate float64
	alg       string
	run       bool // run the provider's background work (back-channel logout), polling fast
}

func newFixture(t testing.TB, fo ...fixtureOpts) *fixture {
	t.Helper()
	var o fixtureOpts
	if len(fo) > 0 {
		o = fo[0]
	}
	if o.tokenRate == 0 {
		o.tokenRate = -1 // tests make many requests from one address; one test checks the limit
	}
	f := &fixture{t: t, ctx: context.Background()}
	f.env = lktest.New(t, lktest.Config{DefaultPolicy: "passkey", Wrap: func(e *lktest.Env, next http.Handler) http.Handler {
		p, err := oidc.New(oidc.Options{PublicURL: e.Public, Store: e.Store, Sessions: e.Auth, BlockKey: e.BlockKey,
			Now: e.Clock.Now, TokenRate: o.tokenRate, SigningAlg: o.alg, LogoutPoll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		f.prov = p
		if o.run {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			go p.Run(ctx)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, oidc.Prefix+"/") {
				p.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	// ID tokens carry the real time (op stamps them); keep Latchkey's clock next to it so that
	// both agree on what has expired. Tests move it forward from here.
	f.env.Clock.Advance(time.Since(f.env.Clock.Now()))
	f.issuer = f.prov.Issuer()
	rp, err := gooidc.NewProvider(f.ctx, f.issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	f.rp = rp
	return f
}

// rpClient is a registered client as an app would configure it.
type rpClient struct {
	f        *fixture
	id       string
	secret   string
	redirect string
	cfg      oauth2.Config
}

func (f *fixture) addClient(nc oidc.NewClient, scopes ...string) *rpClient {
	f.t.Helper()
	if len(nc.RedirectURIs) == 0 {
		nc.RedirectURIs = []string{"http://127.0.0.1:9/callback"}
	}
	id, secret, err := oidc.AddClient(f.ctx, f.env.Store, nc, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "profile", "email", "groups", gooidc.ScopeOfflineAccess}
	}
	return &rpClient{f: f, id: id, secret: secret, redirect: nc.RedirectURIs[0], cfg: oauth2.Config{
		ClientID: id, ClientSecret: secret, Endpoint: f.rp.Endpoint(), RedirectURL: nc.RedirectURIs[0], Scopes: scopes}}
}

// user is an enrolled user with a browser signed in with their passkey.
type user struct {
	u  store.User
	pk *lktest.Passkey
	b  *lktest.Client
}

func (f *fixture) user(name string, groups ...string) *user {
	f.t.Helper()
	u, token := f.env.AddUser(name, groups...)
	pk := lktest.NewPasskey()
	b := f.env.Client()
	b.Enrol(pk, token)
	return &user{u: u, pk: pk, b: b}
}

// flow is one authorization: the RP's state, nonce and PKCE verifier.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: random(), nonce: random(), verifier: oauth2.GenerateVerifier()}
}

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *rpClient) authURL(fl flow, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(fl.verifier), gooidc.Nonce(fl.nonce)}, extra...)
	return c.cfg.AuthCodeURL(fl.state, opts...)
}

// portalPath turns an absolute portal URL into the path the test browser requests, or "" when
// the URL leads elsewhere (to the app's redirect URI).
func (f *fixture) portalPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		f.t.Fatalf("bad URL %q", raw)
	}
	if u.Host == "" && strings.HasPrefix(raw, "/") {
		return raw
	}
	if u.Scheme+"://"+u.Host != f.env.Origin() {
		return ""
	}
	return u.RequestURI()
}

// step is one hop of the browser through Latchkey's pages.
type step struct {
	resp     *lktest.Response
	location string // absolute or relative Location, "" if none
}

// browse follows redirects inside the portal from raw and stops at the first response that is not
// a redirect within the portal: a page (consent, login, error) or a redirect to the app.
func (f *fixture) browse(b *lktest.Client, raw string) step {
	f.t.Helper()
	for i := 0; i < 10; i++ {
		path := f.portalPath(raw)
		if path == "" {
			f.t.Fatalf("browse: %s is not on the portal", raw)
		}
		r := b.Get(path)
		loc := r.Header.Get("Location")
		if r.StatusCode < 300 || r.StatusCode >= 400 || loc == "" {
			return step{resp: r}
		}
		next := loc
		if strings.HasPrefix(loc, "/") {
			next = f.env.Origin() + loc
		}
		if f.portalPath(next) == "" || strings.HasPrefix(f.portalPath(next), "/.latchkey/login") {
			return step{resp: r, location: next}
		}
		raw = next
	}
	f.t.Fatal("browse: too many redirects")
	return step{}
}

var consentID = regexp.MustCompile(`name="id" value="([^"]+)"`)
var consentCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consent answers the consent page in r with decision (allow or deny).
func (f *fixture) consent(b *lktest.Client, r *lktest.Response, decision string) step {
	f.t.Helper()
	id, csrf := consentID.FindSubmatch(r.Body), consentCSRF.FindSubmatch(r.Body)
	if id == nil || csrf == nil {
		f.t.Fatalf("no consent form in %d %s", r.StatusCode, r.Body)
	}
	form := url.Values{"id": {string(id[1])}, "csrf": {string(csrf[1])}, "decision": {decision}}
	resp := b.Do(http.MethodPost, "", oidc.Prefix+"/consent", strings.NewReader(form.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}}) // as Chromium sends it under no-referrer
	return step{resp: resp, location: resp.Header.Get("Location")}
}

// authorize runs the browser part of a code flow for a signed-in user who already consented (or a
// trusted client) and returns the redirect to the app.
func (f *fixture) authorize(c *rpClient, u *user, fl flow, extra ...oauth2.AuthCodeOption) *url.URL {
	f.t.Helper()
	s := f.browse(u.b, c.authURL(fl, extra...))
	if s.location == "" && s.resp.StatusCode == http.StatusOK && consentID.Match(s.resp.Body) {
		s = f.consent(u.b, s.resp, "allow")
	}
	if s.location == "" || f.portalPath(s.location) != "" {
		f.t.Fatalf("authorize did not return to the app: %d %s %s", s.resp.StatusCode, s.location, s.resp.Body)
	}
	loc, _ := url.Parse(s.location)
	return loc
}

// code checks the authorization response (state, iss) and returns the code.
func (f *fixture) code(loc *url.URL, fl flow) string {
	f.t.Helper()
	q := loc.Query()
	if q.Get("error") != "" {
		f.t.Fatalf("authorization error: %s", loc)
	}
	if q.Get("state") != fl.state {
		f.t.Fatalf("state = %q, want %q", q.Get("state"), fl.state)
	}
	if q.Get("iss") != f.issuer {
		f.t.Fatalf("iss = %q, want %q (RFC 9207)", q.Get("iss"), f.issuer)
	}
	if q.Get("code") == "" {
		f.t.Fatalf("no code in %s", loc)
	}
	return q.Get("code")
}

// signIn is a complete code flow: authorize, exchange, verify the ID token.
func (f *fixture) signIn(c *rpClient, u *user) (*oauth2.Token, *gooidc.IDToken) {
	f.t.Helper()
	fl := newFlow()
	code := f.code(f.authorize(c, u, fl), fl)
	tok, err := c.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(fl.verifier))
	if err != nil {
		f.t.Fatalf("exchange: %v", err)
	}
	return tok, f.verify(c, tok, fl.nonce)
}

func (f *fixture) verify(c *rpClient, tok *oauth2.Token, nonce string) *gooidc.IDToken {
	f.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		f.t.Fatal("no id_token in the token response")
	}
	idt, err := f.rp.Verifier(&gooidc.Config{ClientID: c.id}).Verify(f.ctx, raw)
	if err != nil {
		f.t.Fatalf("ID token does not verify: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		f.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	return idt
}

// refresh uses a refresh token once, the way an app does when its access token has expired.
func (c *rpClient) refresh(rt string) (*oauth2.Token, error) {
	return c.cfg.TokenSource(c.f.ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
}

func (f *fixture) userinfo(tok *oauth2.Token) (*gooidc.UserInfo, error) {
	return f.rp.UserInfo(f.ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer"}))
}
