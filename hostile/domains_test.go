package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
)

// The several-domains topology (issue 23): the HOSTILE one, plus example.org with its portal
// https://auth.example.org and wiki.example.org behind a passkey. One RP ID: example.com.
const (
	orgPortal = "https://auth.example.org"
	orgHost   = "auth.example.org"
)

var domainsHashKey = lktest.RandomKey(32)

func newDomainsEnv(t testing.TB) *lktest.Env {
	t.Helper()
	return newEnv(t, func(c *lktest.Config) {
		c.Domains = []lktest.DomainConfig{{Domain: "example.org", PublicURL: orgPortal}}
		c.Rules = append([]proxy.RuleConfig{{Hosts: []string{"wiki.example.org"}, Policy: "passkey"}}, c.Rules...)
		c.HashKey = domainsHashKey
	})
}

// orgBrowser is a browser on example.org: its requests go to the org portal with its Origin.
func orgBrowser(env *lktest.Env) *lktest.Client {
	c := browser(env)
	c.Origin = orgPortal
	return c
}

func postOn(c *lktest.Client, host, path string, body any) *lktest.Response {
	raw, _ := json.Marshal(body)
	hdr := http.Header{"Content-Type": {"application/json"}}
	if c.Origin != "" {
		hdr.Set("Origin", c.Origin)
	}
	return c.Do(http.MethodPost, host, path, bytes.NewReader(raw), hdr)
}

// loginOn signs in with pk on the portal host (origin is that portal's).
func loginOn(t testing.TB, c *lktest.Client, host, origin string, pk *lktest.Passkey, rd string) *lktest.Response {
	t.Helper()
	r := postOn(c, host, "/.latchkey/api/login/begin", map[string]any{})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login/begin on %s: %d %s", host, r.StatusCode, r.Body)
	}
	o, err := lktest.ParseOptions(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	path := "/.latchkey/api/login/finish"
	if rd != "" {
		path += "?" + url.Values{"rd": {rd}}.Encode()
	}
	hdr := http.Header{"Content-Type": {"application/json"}, "Origin": {origin}}
	return c.Do(http.MethodPost, host, path, bytes.NewReader(pk.Assert(o, origin, lktest.Ceremony{})), hdr)
}

func forwardOn(env *lktest.Env, cookie, host string) *lktest.Response {
	c := env.Client()
	c.Cookies["latchkey_session"] = cookie
	return c.Forward(host, "/", navigation)
}

func redirectOf(t testing.TB, r *lktest.Response) string {
	t.Helper()
	var out struct {
		Redirect string `json:"redirect"`
	}
	if err := r.JSON(&out); err != nil {
		t.Fatalf("answer %d is not JSON: %s", r.StatusCode, r.Body)
	}
	return out.Redirect
}

// TestDomainsCookieBoundToItsDomain is PUB-15 (c) and DOM-01: a session minted for example.com
// presented for a host under example.org is refused, and the browser is sent to example.org's
// portal; the check is made in memory on both layers (the codec's name and the session's
// recorded domain).
func TestDomainsCookieBoundToItsDomain(t *testing.T) {
	env := newDomainsEnv(t)
	alice := enrol(t, env, "alice")
	com := alice.browser.Session()
	if r := forwardOn(env, com, "grafana.example.com"); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
		t.Fatalf("example.com cookie on grafana.example.com: %d %q", r.StatusCode, r.Header.Get("Remote-User"))
	}
	r := forwardOn(env, com, "wiki.example.org")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), orgPortal+"/.latchkey/login?rd=") {
		t.Errorf("example.com cookie on wiki.example.org: %d Location=%q, want 302 to %s's login", r.StatusCode, r.Header.Get("Location"), orgPortal)
	}
	noRemote(t, r.Header)
	c := env.Client()
	c.Cookies["latchkey_session"] = com
	if r := c.Do(http.MethodGet, "", "/.latchkey/auth/request", nil, http.Header{"X-Original-Url": {"https://wiki.example.org/"}}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("auth/request for wiki.example.org with the example.com cookie: %d, want 401", r.StatusCode)
	}
	if r := c.Do(http.MethodGet, orgHost, "/.latchkey/account", nil, nil); r.StatusCode != http.StatusFound {
		t.Errorf("org account page with the example.com cookie: %d, want a redirect to sign in", r.StatusCode)
	}

	// The second layer alone: a cookie that decodes on the first domain's codec for a session
	// whose row says example.org is refused there, without a database read.
	ctx := context.Background()
	id, _ := session.NewID()
	now := env.Clock.Now()
	if _, err := env.Store.CreateSessionRev(ctx, store.Session{ID: session.EncodeID(id), UserID: alice.user.ID, Method: store.MethodPasskey,
		CreatedAt: now, VerifiedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), Domain: "example.org"}); err != nil {
		t.Fatal(err)
	}
	env.Refresh()
	forged, err := session.NewCodec("latchkey_session", domainsHashKey, env.BlockKey, 24*time.Hour).Encode(id, now)
	if err != nil {
		t.Fatal(err)
	}
	if r := forwardOn(env, forged, "grafana.example.com"); r.StatusCode == http.StatusOK {
		t.Errorf("a session recorded for example.org passed on grafana.example.com")
	}
	noRemote(t, forwardOn(env, forged, "grafana.example.com").Header)
}

// TestDomainsOnePasskeyBothDomains: the passkey enrolled on example.com signs in on
// example.org's portal (one RP ID, both portals are WebAuthn origins); that cookie is
// example.org's only; rd may target any configured domain and nothing else.
func TestDomainsOnePasskeyBothDomains(t *testing.T) {
	env := newDomainsEnv(t)
	alice := enrol(t, env, "alice")
	b := orgBrowser(env)
	r := loginOn(t, b, orgHost, orgPortal, alice.pk, "https://wiki.example.org/page")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login on %s: %d %s", orgHost, r.StatusCode, r.Body)
	}
	if got := redirectOf(t, r); got != "https://wiki.example.org/page" {
		t.Errorf("rd on the other domain: %q", got)
	}
	var ck *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "latchkey_session" {
			ck = c
		}
	}
	if ck == nil || ck.Domain != "example.org" || !ck.Secure || !ck.HttpOnly {
		t.Fatalf("org session cookie: %v", ck)
	}
	if r := forwardOn(env, ck.Value, "wiki.example.org"); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
		t.Errorf("org cookie on wiki.example.org: %d %q", r.StatusCode, r.Header.Get("Remote-User"))
	}
	denied(t, env, ck.Value) // on grafana.example.com: 302 to example.com's portal

	for _, tc := range []struct{ rd, want string }{
		{"https://wiki.example.org/x", "https://wiki.example.org/x"},
		{"https://anything.example.org/", "https://anything.example.org/"},
		{"https://grafana.example.com/", "https://grafana.example.com/"},
		{"https://example.net/", orgPortal + "/.latchkey/account"},
		{"https://example.org.evil.com/", orgPortal + "/.latchkey/account"},
		{"https://evilexample.org/", orgPortal + "/.latchkey/account"},
		{"http://wiki.example.org/", orgPortal + "/.latchkey/account"},
	} {
		b := orgBrowser(env)
		r := loginOn(t, b, orgHost, orgPortal, alice.pk, tc.rd)
		if got := redirectOf(t, r); got != tc.want {
			t.Errorf("rd %s: redirect %q, want %q", tc.rd, got, tc.want)
		}
	}
}

// continueToken asks for a continue link on example.com and returns its token.
func continueToken(t testing.TB, c *lktest.Client, body map[string]any) string {
	t.Helper()
	r := c.PostJSON("/.latchkey/api/domains/continue", body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("continue: %d %s", r.StatusCode, r.Body)
	}
	link, err := url.Parse(redirectOf(t, r))
	if err != nil || link.Scheme+"://"+link.Host != orgPortal || link.Path != "/.latchkey/continue" {
		t.Fatalf("continue link %q", redirectOf(t, r))
	}
	return link.Query().Get("token")
}

// TestDomainsContinue is DOM-02: the continue step mints example.org's session for the user of
// the example.com session, once, without a passkey; the token is stored hashed.
func TestDomainsContinue(t *testing.T) {
	env := newDomainsEnv(t)
	alice := enrol(t, env, "alice")
	// The account page offers the step and says where the passkey works (issue 23).
	acct := alice.browser.Get("/.latchkey/account")
	for _, want := range []string{`data-continue="example.org"`, "Works on example.com; on example.org in browsers that support related origins"} {
		if !strings.Contains(string(acct.Body), want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	token := continueToken(t, alice.browser, map[string]any{"domain": "example.org", "rd": "https://wiki.example.org/"})
	if n := env.Count("ceremonies", "data LIKE ? OR id LIKE ?", "%"+token+"%", "%"+token+"%"); n != 0 {
		t.Errorf("the continue token is stored in plaintext")
	}
	b := orgBrowser(env)
	page := b.Do(http.MethodGet, orgHost, "/.latchkey/continue?token="+url.QueryEscape(token), nil, nil)
	if page.StatusCode != http.StatusOK || page.Header.Get("Referrer-Policy") != "no-referrer" || len(page.Cookies()) != 0 {
		t.Errorf("continue page: %d Referrer-Policy=%q cookies=%v", page.StatusCode, page.Header.Get("Referrer-Policy"), page.Cookies())
	}
	r := postOn(b, orgHost, "/.latchkey/api/domains/redeem", map[string]string{"token": token})
	if r.StatusCode != http.StatusOK || redirectOf(t, r) != "https://wiki.example.org/" {
		t.Fatalf("redeem: %d %s", r.StatusCode, r.Body)
	}
	org := b.Session()
	if fw := forwardOn(env, org, "wiki.example.org"); fw.StatusCode != http.StatusOK || fw.Header.Get("Remote-User") != "alice" {
		t.Errorf("continued session on wiki.example.org: %d %q", fw.StatusCode, fw.Header.Get("Remote-User"))
	}
	denied(t, env, org)
	rows, err := env.Store.Sessions(context.Background(), alice.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	var com, orgRow store.Session
	for _, se := range rows {
		if se.Domain == "example.org" {
			orgRow = se
		} else {
			com = se
		}
	}
	if orgRow.ID == "" || !orgRow.VerifiedAt.Equal(com.VerifiedAt) || !bytes.Equal(orgRow.CredentialID, com.CredentialID) || orgRow.ExpiresAt.After(com.ExpiresAt) {
		t.Errorf("continued session %+v, want the verification time, passkey and at most the lifetime of %+v", orgRow, com)
	}
	acct = b.Do(http.MethodGet, orgHost, "/.latchkey/account", nil, nil)
	if !strings.Contains(string(acct.Body), `data-continue="example.com"`) || !strings.Contains(string(acct.Body), "example.org · signed in") {
		t.Errorf("org account page: no continue to example.com or no session domains:\n%s", acct.Body)
	}
	// Signing out everywhere on one domain ends both.
	if r := alice.browser.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]any{}); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke-all: %d %s", r.StatusCode, r.Body)
	}
	if fw := forwardOn(env, org, "wiki.example.org"); fw.StatusCode == http.StatusOK {
		t.Error("the continued session outlived sign out everywhere")
	}
}

// TestDomainsContinueAttacks is DOM-03 to DOM-07.
func TestDomainsContinueAttacks(t *testing.T) {
	env := newDomainsEnv(t)
	alice := enrol(t, env, "alice")
	bob := enrol(t, env, "bob")
	redeem := func(b *lktest.Client, host, token string) func() *lktest.Response {
		return func() *lktest.Response {
			return postOn(b, host, "/.latchkey/api/domains/redeem", map[string]string{"token": token})
		}
	}
	t.Run("DOM-03 replay", func(t *testing.T) {
		token := continueToken(t, alice.browser, map[string]any{"domain": "example.org"})
		if r := redeem(orgBrowser(env), orgHost, token)(); r.StatusCode != http.StatusOK {
			t.Fatalf("first redeem: %d %s", r.StatusCode, r.Body)
		}
		reject(t, env, http.StatusForbidden, redeem(orgBrowser(env), orgHost, token))
	})
	t.Run("DOM-04 expired", func(t *testing.T) {
		token := continueToken(t, alice.browser, map[string]any{"domain": "example.org"})
		env.Clock.Advance(61 * time.Second)
		reject(t, env, http.StatusForbidden, redeem(orgBrowser(env), orgHost, token))
	})
	t.Run("DOM-05 another user", func(t *testing.T) {
		// The body cannot name whose session is handed over: it comes from the cookie.
		token := continueToken(t, alice.browser, map[string]any{"domain": "example.org", "user": "bob", "session_id": "x", "user_id": bob.user.ID})
		// A browser signed in on example.org as bob does not silently become alice.
		b := orgBrowser(env)
		if r := loginOn(t, b, orgHost, orgPortal, bob.pk, ""); r.StatusCode != http.StatusOK {
			t.Fatalf("bob on org: %d", r.StatusCode)
		}
		reject(t, env, http.StatusConflict, redeem(b, orgHost, token))
		// The token was consumed by that attempt; a fresh one lands on alice only.
		token = continueToken(t, alice.browser, map[string]any{"domain": "example.org", "user_id": bob.user.ID})
		c := orgBrowser(env)
		if r := redeem(c, orgHost, token)(); r.StatusCode != http.StatusOK {
			t.Fatalf("redeem: %d %s", r.StatusCode, r.Body)
		}
		if fw := forwardOn(env, c.Session(), "wiki.example.org"); fw.Header.Get("Remote-User") != "alice" {
			t.Errorf("continued as %q, want alice", fw.Header.Get("Remote-User"))
		}
	})
	t.Run("DOM-06 unconfigured or wrong domain", func(t *testing.T) {
		for _, d := range []string{"example.net", "example.com", "auth.example.com", "evil.example.org.evil", "", "EXAMPLE.ORG.."} {
			reject(t, env, http.StatusBadRequest, func() *lktest.Response {
				return alice.browser.PostJSON("/.latchkey/api/domains/continue", map[string]any{"domain": d})
			})
		}
		// A token for example.org redeemed on example.com's portal.
		token := continueToken(t, alice.browser, map[string]any{"domain": "example.org"})
		reject(t, env, http.StatusForbidden, redeem(browser(env), "", token))
		// An example.org portal page cannot ask example.com's portal for a link (CSRF across the
		// domains: both are WebAuthn origins, only one is this portal's).
		c := browser(env)
		c.Cookies = alice.browser.Cookies
		c.Origin = orgPortal
		r := c.PostJSON("/.latchkey/api/domains/continue", map[string]any{"domain": "example.org"})
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("continue with Origin %s on example.com's portal: %d, want 403", orgPortal, r.StatusCode)
		}
	})
	t.Run("DOM-07 the session that asked has ended", func(t *testing.T) {
		m := enrol(t, env, "carol")
		token := continueToken(t, m.browser, map[string]any{"domain": "example.org"})
		if r := m.browser.PostJSON("/.latchkey/logout", map[string]any{}); r.StatusCode != http.StatusOK {
			t.Fatalf("logout: %d", r.StatusCode)
		}
		reject(t, env, http.StatusForbidden, redeem(orgBrowser(env), orgHost, token))
		reject(t, env, http.StatusForbidden, redeem(orgBrowser(env), orgHost, "made-up-token"))
		reject(t, env, http.StatusUnauthorized, func() *lktest.Response {
			return browser(env).PostJSON("/.latchkey/api/domains/continue", map[string]any{"domain": "example.org"})
		})
		// A recovery session may only enrol a passkey: it cannot be carried to another domain.
		rb := browser(env)
		if r := rb.PostJSON("/.latchkey/api/recover", map[string]string{"user": "carol", "code": m.codes[0]}); r.StatusCode != http.StatusOK {
			t.Fatalf("recovery code: %d %s", r.StatusCode, r.Body)
		}
		reject(t, env, http.StatusForbidden, func() *lktest.Response {
			return rb.PostJSON("/.latchkey/api/domains/continue", map[string]any{"domain": "example.org"})
		})
	})
}

// TestDomainsWellKnown: the RP ID's portal serves the related origins; one domain serves none.
func TestDomainsWellKnown(t *testing.T) {
	env := newDomainsEnv(t)
	r := env.Client().Get("/.well-known/webauthn")
	var body struct {
		Origins []string `json:"origins"`
	}
	if r.StatusCode != http.StatusOK || r.JSON(&body) != nil || len(body.Origins) != 1 || body.Origins[0] != orgPortal ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("/.well-known/webauthn: %d %s", r.StatusCode, r.Body)
	}
	single := newEnv(t)
	if r := single.Client().Get("/.well-known/webauthn"); r.StatusCode == http.StatusOK {
		t.Errorf("one domain serves /.well-known/webauthn: %s", r.Body)
	}
}
