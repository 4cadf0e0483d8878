package hostile

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// The HOSTILE topology: an https portal on auth.example.com with cookies for example.com, one
// passkey host, one group-restricted host, one host with a bypass path, and deny for the rest.
const (
	publicURL = "https://auth.example.com"
	origin    = "https://auth.example.com"
	// bound is how long any answer may take, refused or not.
	bound = 2 * time.Second
)

var navigation = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

func topology() lktest.Config {
	return lktest.Config{
		PublicURL: publicURL, CookieDomain: "example.com", RPID: "example.com", DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{
			{Hosts: []string{"grafana.example.com"}, Policy: "passkey"},
			{Hosts: []string{"admin.example.com"}, Policy: "passkey", Groups: []string{"admins"}},
			{Hosts: []string{"public.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
		},
	}
}

// newEnv starts the HOSTILE topology, with optional changes to its config.
func newEnv(t testing.TB, change ...func(*lktest.Config)) *lktest.Env {
	t.Helper()
	cfg := topology()
	for _, c := range change {
		c(&cfg)
	}
	return lktest.New(t, cfg)
}

// addrs hands out distinct client addresses (sent as X-Forwarded-For through the trusted
// loopback peer) so that tests making many ceremonies do not share one rate-limit bucket.
var addrs atomic.Int64

func nextAddr() string {
	n := addrs.Add(1)
	return "198.51." + strconv.Itoa(int(100+n/250%100)) + "." + strconv.Itoa(int(1+n%250))
}

// browser returns a client with its own client address.
func browser(env *lktest.Env) *lktest.Client {
	c := env.Client()
	c.Header.Set("X-Forwarded-For", nextAddr())
	return c
}

// member is a user with one enrolled passkey and a browser signed in with it.
type member struct {
	user    store.User
	pk      *lktest.Passkey
	browser *lktest.Client
	codes   []string
}

func enrol(t testing.TB, env *lktest.Env, name string, groups ...string) *member {
	t.Helper()
	u, token := env.AddUser(name, groups...)
	pk := lktest.NewPasskey()
	b := browser(env)
	codes := b.Enrol(pk, token)
	if b.Session() == "" {
		t.Fatalf("enrolling %s did not sign in", name)
	}
	return &member{user: u, pk: pk, browser: b, codes: codes}
}

// timed runs one request and fails the test when it takes longer than the bound.
func timed(t testing.TB, do func() *lktest.Response) *lktest.Response {
	t.Helper()
	start := time.Now()
	r := do()
	if d := time.Since(start); d > bound {
		t.Errorf("answer took %s, bound %s", d, bound)
	}
	return r
}

// reject runs a request that must be refused and asserts everything REJECT means: the status,
// a short JSON error, no session cookie, nothing written, an answer within the bound, no panic,
// and a server that still answers.
func reject(t testing.TB, env *lktest.Env, want int, do func() *lktest.Response) *lktest.Response {
	t.Helper()
	before := env.Tables()
	r := timed(t, do)
	if r.StatusCode != want {
		t.Errorf("status %d, want %d; body %.200s", r.StatusCode, want, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer is %q, want JSON", ct)
	}
	if len(r.Body) > 200 || !strings.Contains(string(r.Body), `"error"`) {
		t.Errorf("error body is not a short JSON error: %.300s", r.Body)
	}
	noSessionCookie(t, r.Response)
	if after := env.Tables(); after != before {
		t.Errorf("a refused request wrote to the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	alive(t, env)
	return r
}

// noSessionCookie fails when the answer creates or extends a session.
func noSessionCookie(t testing.TB, r *http.Response) {
	t.Helper()
	for _, c := range r.Cookies() {
		if c.Name == "latchkey_session" && c.Value != "" && c.MaxAge >= 0 {
			t.Errorf("a refused request set a session cookie: %s", c.String())
		}
	}
}

// noRemote fails when any Remote-* header is present.
func noRemote(t testing.TB, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "remote-") {
			t.Errorf("Remote-* header on a refused answer: %s: %v", k, h[k])
		}
	}
}

// alive asserts that the server still answers its health check and logged no panic.
func alive(t testing.TB, env *lktest.Env) {
	t.Helper()
	if r := env.Client().Get("/.latchkey/healthz"); r.StatusCode != http.StatusOK {
		t.Errorf("healthz after the attack: %d", r.StatusCode)
	}
	if strings.Contains(env.Logs.String(), "panic") {
		t.Errorf("a panic was logged:\n%s", env.Logs.String())
	}
}

// forwardAllowed reports whether a session cookie value passes a forward-auth check for grafana.
func forwardAllowed(t testing.TB, env *lktest.Env, cookie string) (*lktest.Response, bool) {
	t.Helper()
	c := env.Client()
	c.Cookies["latchkey_session"] = cookie
	r := c.Forward("grafana.example.com", "/", navigation)
	return r, r.StatusCode == http.StatusOK && r.Header.Get("Remote-User") != ""
}

// denied asserts that a cookie value gets DENY at the forward endpoint (302 to login for a
// navigation, 401 at /auth/request) and no Remote-* headers.
func denied(t testing.TB, env *lktest.Env, cookie string) {
	t.Helper()
	r, ok := forwardAllowed(t, env, cookie)
	if ok || r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), publicURL+"/.latchkey/login?") {
		t.Errorf("forward with the cookie: %d Location=%q, want 302 to the login page", r.StatusCode, r.Header.Get("Location"))
	}
	noRemote(t, r.Header)
	c := env.Client()
	c.Cookies["latchkey_session"] = cookie
	r = c.Do(http.MethodGet, "", "/.latchkey/auth/request", nil, http.Header{"X-Original-Url": {"https://grafana.example.com/"}})
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("auth/request with the cookie: %d, want 401", r.StatusCode)
	}
	noRemote(t, r.Header)
}
