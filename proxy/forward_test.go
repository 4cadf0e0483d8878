package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

const (
	trustedPeer   = "127.0.0.1:40000"
	untrustedPeer = "203.0.113.9:40000"
)

// decisionRules exercise every kind of condition; their order matters (first match wins).
var decisionRules = []proxy.RuleConfig{
	{Hosts: []string{"public.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
	{Hosts: []string{"admin.example.com"}, Groups: []string{"admins"}, Policy: "passkey"},
	{Hosts: []string{"*.internal.example.com"}, Networks: []string{"192.168.0.0/16"}, Policy: "bypass"},
	{Hosts: []string{"*.internal.example.com"}, Policy: "deny"},
	{Hosts: []string{"app.example.com"}, Paths: []string{"^/admin(/|$)"}, Policy: "deny"},
	{Hosts: []string{"app.example.com"}, Methods: []string{"POST", "DELETE"}, Users: []string{"bob"}, Policy: "passkey"},
	{Hosts: []string{"app.example.com"}, Policy: "passkey"},
	{Hosts: []string{"public.example.com"}, Policy: "passkey"},
}

// forwardHeaders builds the headers Traefik's forwardAuth sends for a request.
func forwardHeaders(method, host, uri, xff, cookie string) http.Header {
	h := http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {host},
		"X-Forwarded-Uri": {uri}, "X-Forwarded-For": {xff}}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	return h
}

func TestForwardDecision(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: decisionRules})
	alice, _ := signIn(t, env, "alice", "staff")
	bob, _ := signIn(t, env, "bob", "admins")
	cookies := map[string]string{"": "", "alice": alice, "bob": bob}

	tests := []struct {
		name, user, method, host, uri, xff string
		want                               int
		wantUser                           string
	}{
		{"bypass without session", "", "GET", "public.example.com", "/public/app.js", "198.51.100.7", 200, ""},
		{"bypass keeps a signed-in identity", "alice", "GET", "public.example.com", "/public/app.js", "198.51.100.7", 200, "alice"},
		{"first match wins: later passkey rule on the same host", "", "GET", "public.example.com", "/other", "198.51.100.7", 401, ""},
		{"passkey rule signed in", "alice", "GET", "public.example.com", "/other", "198.51.100.7", 200, "alice"},
		{"group allowed", "bob", "GET", "admin.example.com", "/", "198.51.100.7", 200, "bob"},
		{"group denied", "alice", "GET", "admin.example.com", "/", "198.51.100.7", 403, ""},
		{"group rule without session", "", "GET", "admin.example.com", "/", "198.51.100.7", 401, ""},
		{"wildcard with network bypass", "", "GET", "grafana.internal.example.com", "/", "192.168.1.10", 200, ""},
		{"wildcard deep subdomain", "", "GET", "a.b.internal.example.com", "/", "192.168.1.10", 200, ""},
		{"wildcard outside network falls to deny", "alice", "GET", "grafana.internal.example.com", "/", "198.51.100.7", 403, ""},
		{"wildcard never matches the apex", "", "GET", "internal.example.com", "/", "192.168.1.10", 403, ""},
		{"network via trusted proxies: right-most untrusted", "", "GET", "grafana.internal.example.com", "/", "192.168.1.10, 198.51.100.7", 403, ""},
		{"network via trusted proxies: trusted hops skipped", "", "GET", "grafana.internal.example.com", "/", "192.168.1.10, 127.0.0.1", 200, ""},
		{"deny path", "alice", "GET", "app.example.com", "/admin", "198.51.100.7", 403, ""},
		{"not the deny path", "alice", "GET", "app.example.com", "/administrator", "198.51.100.7", 200, "alice"},
		{"method rule: user allowed", "bob", "POST", "app.example.com", "/x", "198.51.100.7", 200, "bob"},
		{"method rule: user denied", "alice", "POST", "app.example.com", "/x", "198.51.100.7", 403, ""},
		{"method rule: lower-case method", "alice", "delete", "app.example.com", "/x", "198.51.100.7", 403, ""},
		{"method rule: other method", "alice", "PUT", "app.example.com", "/x", "198.51.100.7", 200, "alice"},
		{"default policy deny signed in", "alice", "GET", "unknown.example.com", "/", "198.51.100.7", 403, ""},
		{"default policy deny signed out", "", "GET", "unknown.example.com", "/", "198.51.100.7", 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders(tc.method, tc.host, tc.uri, tc.xff, cookies[tc.user]))
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d\n%s", w.Code, tc.want, w.Body)
			}
			if got := w.Header().Get("Remote-User"); got != tc.wantUser {
				t.Fatalf("Remote-User %q, want %q", got, tc.wantUser)
			}
			if tc.wantUser == "" {
				noRemote(t, "response", w.Header())
			}
		})
	}
}

func TestForwardDefaultPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy           string
		signedOut, alice int
	}{
		{"deny", 403, 403},
		{"passkey", 401, 200},
		{"bypass", 200, 200},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			env := lktest.New(t, lktest.Config{DefaultPolicy: tc.policy})
			alice, _ := signIn(t, env, "alice")
			for _, c := range []struct {
				cookie string
				want   int
			}{{"", tc.signedOut}, {alice, tc.alice}} {
				w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "any.example.com", "/", "198.51.100.7", c.cookie))
				if w.Code != c.want {
					t.Errorf("cookie %v: status %d, want %d", c.cookie != "", w.Code, c.want)
				}
				if c.cookie == "" {
					noRemote(t, "signed out", w.Header())
				}
			}
		})
	}
}

// TestForwardPathNormalisation: every spelling of /admin meets the rule meant for /admin, through
// both adapters.
func TestForwardPathNormalisation(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: decisionRules})
	alice, _ := signIn(t, env, "alice", "staff")
	for _, tc := range []struct {
		uri  string
		want int
	}{
		{"/admin", 403},
		{"/%61dmin", 403},
		{"//admin", 403},
		{"/x/../admin", 403},
		{"/admin/", 403},
		{"/./admin", 403},
		{"/admin/../admin/users?x=1", 403},
		{"/%2e%2e/admin", 403},
		{"/admin%2Fusers", 400},
		{"/admin;x=1", 400},
		{"/adm%69n", 403},
		{"/dash", 200},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "app.example.com", tc.uri, "198.51.100.7", alice))
			if w.Code != tc.want {
				t.Errorf("forward: status %d, want %d", w.Code, tc.want)
			}
			w = serve(env, "GET", "/.latchkey/auth/request", trustedPeer, http.Header{
				"X-Original-Url": {"https://app.example.com" + tc.uri}, "X-Original-Method": {"GET"}, "Cookie": {alice}})
			if w.Code != tc.want {
				t.Errorf("request: status %d, want %d", w.Code, tc.want)
			}
		})
	}
}

// TestForwardLoginRedirect checks the answers for a missing session: 302 with rd for a browser
// navigation to /auth/forward, 401 otherwise, and 401 with the login address for Nginx.
func TestForwardLoginRedirect(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: decisionRules})
	rd := "https://app.example.com/dash?x=1&y=a%20b"
	wantLoc := env.Origin() + "/.latchkey/login?" + url.Values{"rd": {rd}}.Encode()

	nav := forwardHeaders("GET", "app.example.com", "/dash?x=1&y=a%20b", "198.51.100.7", "")
	nav.Set("Accept", "text/html,application/xhtml+xml")
	w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, nav)
	if w.Code != http.StatusFound || w.Header().Get("Location") != wantLoc {
		t.Fatalf("navigation: %d Location %q, want 302 %q", w.Code, w.Header().Get("Location"), wantLoc)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}

	for _, m := range []string{"POST", "DELETE"} {
		h := forwardHeaders(m, "app.example.com", "/dash", "198.51.100.7", "")
		h.Set("Accept", "text/html")
		if w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, h); w.Code != http.StatusUnauthorized || w.Header().Get("Location") != "" {
			t.Errorf("%s: %d, Location %q; want 401 without one", m, w.Code, w.Header().Get("Location"))
		}
	}
	api := forwardHeaders("GET", "app.example.com", "/dash", "198.51.100.7", "")
	api.Set("Accept", "application/json")
	if w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, api); w.Code != http.StatusUnauthorized {
		t.Errorf("fetch: %d, want 401", w.Code)
	}

	// Nginx: never a redirect; the login address travels in Location for the snippet.
	w = serve(env, "GET", "/.latchkey/auth/request", trustedPeer, http.Header{
		"X-Original-Url": {rd}, "X-Original-Method": {"GET"}, "Accept": {"text/html"}})
	if w.Code != http.StatusUnauthorized || w.Header().Get("Location") != wantLoc {
		t.Fatalf("auth/request: %d Location %q, want 401 with %q", w.Code, w.Header().Get("Location"), wantLoc)
	}
}

// traefikRequest reads a request that real Traefik's forwardAuth sent, recorded by the e2e/traefik
// tests into testdata/NAME, with the run's values ({latchkey}, {port}, {client}, {hostname},
// {session}) replaced from vars.
func traefikRequest(t *testing.T, name string, vars map[string]string) *http.Request {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", v)
	}
	sub := strings.NewReplacer(pairs...)
	var req *http.Request
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = sub.Replace(line)
		if req == nil {
			method, uri, _ := strings.Cut(line, " ")
			if req, err = http.NewRequest(method, "http://"+vars["latchkey"]+uri, nil); err != nil {
				t.Fatal(err)
			}
			req.Header = http.Header{}
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("testdata/%s: %q is not a header line", name, line)
		}
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header[k] = append(req.Header[k], v) // names are canonical in the file
	}
	if req == nil {
		t.Fatalf("testdata/%s holds no request", name)
	}
	return req
}

// TestTraefikForwardAuthRequest sends Latchkey exactly what real Traefik v3.7.13's forwardAuth
// sends with the shipped deploy/traefik middleware (testdata/traefik-forwardauth*.txt, recorded
// and kept true by e2e/traefik's TestForwardAuthRequest): the client's Accept, Cookie and
// Authorization only, Go's User-Agent and Accept-Encoding, and X-Forwarded-For/Method/Proto/
// Port/Host/Uri from the request Traefik received; with trustForwardHeader: true also the entry
// point's X-Forwarded-Server and X-Real-Ip, and X-Forwarded-Proto ws on a WebSocket upgrade.
func TestTraefikForwardAuthRequest(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"whoami.example.com"}, Paths: []string{"^/admin(/|$)"}, Policy: "deny"},
		{Hosts: []string{"whoami.example.com"}, Policy: "passkey"},
	}})
	alice, _ := signIn(t, env, "alice", "staff")
	session := strings.TrimPrefix(alice, "latchkey_session=")
	send := func(file, session, uri string) *http.Response {
		t.Helper()
		// As from a Traefik whose entry point listens on port 80 (the recording's was plain HTTP too).
		req := traefikRequest(t, file, map[string]string{"latchkey": env.Server.Listener.Addr().String(),
			"port": "80", "client": "198.51.100.7", "hostname": "traefik-7d9f", "session": session})
		if uri != "" {
			req.Header.Set("X-Forwarded-Uri", uri)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, file := range []string{"traefik-forwardauth.txt", "traefik-forwardauth-websocket-trusted.txt"} {
		t.Run(file, func(t *testing.T) {
			r := send(file, session, "")
			if r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" || r.Header.Get("Remote-Groups") != "staff" ||
				r.Header.Get("Remote-Email") != "alice@example.com" || r.Header.Get("Remote-Name") != "Alice" {
				t.Fatalf("signed in: %d %v", r.StatusCode, r.Header)
			}
			if r = send(file, session, "/admin"); r.StatusCode != http.StatusForbidden || r.Header.Get("Remote-User") != "" {
				t.Fatalf("deny rule: %d %v", r.StatusCode, r.Header)
			}
			r = send(file, "not-a-session", "")
			if strings.Contains(file, "websocket") {
				// An upgrade does not accept text/html: a client, not a page load.
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("signed out: %d, want 401", r.StatusCode)
				}
				return
			}
			want := env.Origin() + "/.latchkey/login?rd=" + url.QueryEscape("http://whoami.example.com/dash?x=1")
			if r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
				t.Fatalf("signed out: %d %q, want 302 %q", r.StatusCode, r.Header.Get("Location"), want)
			}
		})
	}
}

// TestForwardUntrustedPeer: forward-auth requests from outside server.trusted_proxies are
// refused with a log line that names the peer and the config key.
func TestForwardUntrustedPeer(t *testing.T) {
	t.Run("in-process peer 203.0.113.9", func(t *testing.T) {
		env := lktest.New(t, lktest.Config{DefaultPolicy: "bypass"})
		w := serve(env, "GET", "/.latchkey/auth/forward", untrustedPeer, forwardHeaders("GET", "app.example.com", "/", "192.168.1.1", ""))
		if w.Code != http.StatusForbidden {
			t.Fatalf("status %d", w.Code)
		}
		noRemote(t, "response", w.Header())
		logs := env.Logs.String()
		if !strings.Contains(logs, "203.0.113.9") || !strings.Contains(logs, "server.trusted_proxies") {
			t.Fatalf("log does not name the peer and the key:\n%s", logs)
		}
	})
	t.Run("real TCP from loopback not in trusted_proxies", func(t *testing.T) {
		env := lktest.New(t, lktest.Config{DefaultPolicy: "bypass", TrustedProxies: []string{"10.0.0.0/8"}})
		for _, path := range []string{"/.latchkey/auth/forward", "/.latchkey/auth/request"} {
			r := env.Client().Do("GET", "", path, nil, http.Header{"X-Original-Url": {"https://app.example.com/"},
				"X-Forwarded-Host": {"app.example.com"}, "X-Forwarded-Uri": {"/"}})
			if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.Body), "server.trusted_proxies") {
				t.Fatalf("%s: %d %s", path, r.StatusCode, r.Body)
			}
			noRemote(t, path, r.Header)
		}
		if logs := env.Logs.String(); !strings.Contains(logs, "127.0.0.1") || !strings.Contains(logs, "server.trusted_proxies") {
			t.Fatalf("log does not name the peer and the key:\n%s", logs)
		}
	})
}

// TestCookieDomain: a session made at auth.example.com with session.cookie_domain example.com and
// rp_id example.com opens app.example.com.
func TestCookieDomain(t *testing.T) {
	env := lktest.New(t, lktest.Config{PublicURL: "https://auth.example.com", CookieDomain: "example.com", RPID: "example.com",
		DefaultPolicy: "deny", Rules: []proxy.RuleConfig{{Hosts: []string{"app.example.com"}, Policy: "passkey"}}})
	_, token := env.AddUser("alice", "staff")
	pk := lktest.NewPasskey()
	env.Client().Enrol(pk, token)

	b := env.Client()
	o := b.BeginLogin()
	r := b.FinishLogin(pk.Assert(o, env.Origin(), lktest.Ceremony{}), "https://app.example.com/dash")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
	}
	var out struct{ Redirect string }
	r.JSON(&out)
	if out.Redirect != "https://app.example.com/dash" {
		t.Errorf("rd to a host inside cookie_domain refused: %q", out.Redirect)
	}
	var session *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "latchkey_session" {
			session = c
		}
	}
	if session == nil || session.Domain != "example.com" || !session.Secure || !session.HttpOnly {
		t.Fatalf("session cookie %+v: want Domain=example.com, Secure, HttpOnly", session)
	}
	f := b.Forward("app.example.com", "/dash", nil)
	if f.StatusCode != http.StatusOK || f.Header.Get("Remote-User") != "alice" {
		t.Fatalf("forward auth at app.example.com: %d %v", f.StatusCode, f.Header)
	}
}

// TestForwardRevokedAndDisabled: the hot path refuses a revoked session and a disabled user as
// soon as the view is refreshed (the poller does it within its interval).
func TestForwardRevokedAndDisabled(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "passkey"})
	ctx := context.Background()
	alice, au := signIn(t, env, "alice")
	bob, bu := signIn(t, env, "bob")
	check := func(cookie string) int {
		return serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "app.example.com", "/", "198.51.100.7", cookie)).Code
	}
	if check(alice) != 200 || check(bob) != 200 {
		t.Fatal("sessions not valid to begin with")
	}
	ss, err := env.Store.Sessions(ctx, au.ID)
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions: %v %d", err, len(ss))
	}
	if err := env.Store.RevokeSession(ctx, au.ID, ss[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.SetUserDisabled(ctx, bu.ID, true); err != nil {
		t.Fatal(err)
	}
	env.Refresh()
	if c := check(alice); c != http.StatusUnauthorized {
		t.Errorf("revoked session: %d", c)
	}
	if c := check(bob); c != http.StatusUnauthorized {
		t.Errorf("disabled user: %d", c)
	}
}

// BenchmarkForwardAuthValidCookie measures the hot path: a signed-in session passing a
// passkey rule, through the whole handler (no TCP).
func BenchmarkForwardAuthValidCookie(b *testing.B) {
	env := lktest.New(b, lktest.Config{DefaultPolicy: "deny", Rules: decisionRules})
	alice, _ := signIn(b, env, "alice", "staff")
	req := httptest.NewRequest("GET", "/.latchkey/auth/forward", nil)
	req.RemoteAddr = trustedPeer
	req.Header = forwardHeaders("GET", "app.example.com", "/dash/panel?x=1", "198.51.100.7", "theme=dark; "+alice)
	w := httptest.NewRecorder()
	env.Handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK || w.Header().Get("Remote-User") != "alice" {
		b.Fatalf("not allowed: %d", w.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		env.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkForwardAuthLoginRedirect measures the first answer every browser gets: no session, a
// navigation with a browser's Accept header, a 302 to the login page with rd.
func BenchmarkForwardAuthLoginRedirect(b *testing.B) {
	env := lktest.New(b, lktest.Config{DefaultPolicy: "deny", Rules: decisionRules})
	req := httptest.NewRequest("GET", "/.latchkey/auth/forward", nil)
	req.RemoteAddr = trustedPeer
	req.Header = forwardHeaders("GET", "app.example.com", "/dash/panel?x=1&from=now-6h", "198.51.100.7", "theme=dark")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	w := httptest.NewRecorder()
	env.Handler.ServeHTTP(w, req)
	if w.Code != http.StatusFound {
		b.Fatalf("not a login redirect: %d", w.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		env.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusFound {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// hostileEnv has the rules of HOSTILE.md: admin.example.com for admins, a public bypass path,
// a LAN bypass, default deny; alice is signed in and not an admin.
func hostileEnv(t *testing.T) (*lktest.Env, string) {
	t.Helper()
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"public.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
		{Hosts: []string{"public.example.com"}, Policy: "passkey"},
		{Hosts: []string{"admin.example.com"}, Groups: []string{"admins"}, Policy: "passkey"},
		{Hosts: []string{"lan.example.com"}, Networks: []string{"192.168.0.0/16"}, Policy: "bypass"},
		{Hosts: []string{"grafana.example.com", "app.example.com"}, Policy: "passkey"},
	}})
	alice, _ := signIn(t, env, "alice", "staff")
	return env, alice
}

// refused asserts a non-2xx answer within want, with no identity headers.
func refused(t *testing.T, what string, w *httptest.ResponseRecorder, want ...int) {
	t.Helper()
	ok := false
	for _, s := range want {
		ok = ok || w.Code == s
	}
	if !ok || w.Code < 300 {
		t.Errorf("%s: status %d, want one of %v", what, w.Code, want)
	}
	noRemote(t, what, w.Header())
}

func TestPUB01ForwardedHeadersFromUntrustedPeer(t *testing.T) {
	env, alice := hostileEnv(t)
	for _, ua := range []string{"", "kube-probe/1.30", "Traefik"} {
		for _, cookie := range []string{"", alice} {
			h := forwardHeaders("GET", "grafana.example.com", "/", "", cookie)
			delete(h, "X-Forwarded-Method")
			delete(h, "X-Forwarded-For")
			if ua != "" {
				h.Set("User-Agent", ua)
			}
			refused(t, "forward UA "+ua, serve(env, "GET", "/.latchkey/auth/forward", untrustedPeer, h), 403)
			rq := http.Header{"X-Original-Url": {"https://grafana.example.com/"}, "Cookie": {cookie}, "User-Agent": {ua}}
			refused(t, "request UA "+ua, serve(env, "GET", "/.latchkey/auth/request", untrustedPeer, rq), 403)
		}
	}
	if logs := env.Logs.String(); !strings.Contains(logs, "203.0.113.9") || !strings.Contains(logs, "server.trusted_proxies") {
		t.Errorf("no log line naming the peer and the key:\n%s", logs)
	}
}

func TestPUB02MissingOrMalformedTarget(t *testing.T) {
	env, alice := hostileEnv(t)
	long := "/" + strings.Repeat("a", 16<<10)
	forward := []struct {
		name string
		hdr  http.Header
	}{
		{"no forwarded headers", http.Header{}},
		{"empty host", http.Header{"X-Forwarded-Host": {""}, "X-Forwarded-Uri": {"/"}, "X-Forwarded-Proto": {"https"}}},
		{"CR LF in uri", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"/a\r\nRemote-User: admin"}}},
		{"LF in uri", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"/a\nb"}}},
		{"space in uri", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"/a b"}}},
		{"relative uri", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"admin"}}},
		{"ftp proto", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"/"}, "X-Forwarded-Proto": {"ftp"}}},
		{"16 KiB uri", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {long}}},
		{"NUL in uri", http.Header{"X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"/%00"}}},
	}
	for _, tc := range forward {
		tc.hdr.Set("Cookie", alice)
		refused(t, "forward: "+tc.name, serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, tc.hdr), 400, 401)
	}
	for _, raw := range []string{"", "https://grafana.example.com/%zz", "https://grafana.example.com/%00", "/admin",
		"ftp://grafana.example.com/", "https://grafana.example.com" + long, "https://grafana.example.com/a b",
		"https://user@grafana.example.com/", "https:grafana.example.com/"} {
		hdr := http.Header{"Cookie": {alice}}
		if raw != "" {
			hdr.Set("X-Original-Url", raw)
		}
		refused(t, "request: "+raw[:min(len(raw), 60)], serve(env, "GET", "/.latchkey/auth/request", trustedPeer, hdr), 400, 401)
	}
}

func TestPUB03AmbiguousForwardingHeaders(t *testing.T) {
	env, _ := hostileEnv(t)
	// (a) two descriptions of one request.
	refused(t, "request with X-Forwarded-Host", serve(env, "GET", "/.latchkey/auth/request", trustedPeer, http.Header{
		"X-Original-Url": {"https://public.example.com/public/x"}, "X-Forwarded-Host": {"admin.example.com"}}), 400)
	h := forwardHeaders("GET", "admin.example.com", "/", "198.51.100.7", "")
	h.Set("X-Original-Url", "https://public.example.com/public/x")
	refused(t, "forward with X-Original-URL", serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, h), 400)
	// (b) repeated header.
	h = forwardHeaders("GET", "public.example.com", "/public/x", "198.51.100.7", "")
	h["X-Forwarded-Host"] = []string{"public.example.com", "admin.example.com"}
	refused(t, "two X-Forwarded-Host", serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, h), 400)
	h = forwardHeaders("GET", "public.example.com", "/public/x", "198.51.100.7", "")
	h["X-Forwarded-Uri"] = []string{"/public/x", "/admin"}
	refused(t, "two X-Forwarded-Uri", serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, h), 400)
	refused(t, "two X-Original-URL", serve(env, "GET", "/.latchkey/auth/request", trustedPeer, http.Header{
		"X-Original-Url": {"https://public.example.com/public/x", "https://admin.example.com/"}}), 400)

	// (c) and (d): look-alike headers change nothing.
	same := func(name string, base, extra http.Header, path string) {
		t.Helper()
		w1 := serve(env, "GET", path, trustedPeer, base)
		for k, v := range extra {
			base[k] = v
		}
		w2 := serve(env, "GET", path, trustedPeer, base)
		if w1.Code != w2.Code || w2.Code == http.StatusOK {
			t.Errorf("%s: %d without, %d with the extra header; want the same refusal", name, w1.Code, w2.Code)
		}
		noRemote(t, name, w2.Header())
	}
	same("X_Forwarded_Host", forwardHeaders("GET", "admin.example.com", "/", "198.51.100.7", ""),
		http.Header{"X_forwarded_host": {"public.example.com"}}, "/.latchkey/auth/forward")
	same("X-Original-URI", http.Header{"X-Original-Url": {"https://public.example.com/private"}},
		http.Header{"X-Original-Uri": {"/public/x"}}, "/.latchkey/auth/request")
	same("X-Original-URI on forward", forwardHeaders("GET", "public.example.com", "/private", "198.51.100.7", ""),
		http.Header{"X-Original-Uri": {"/public/x"}}, "/.latchkey/auth/forward")
}

func TestPUB05HostCanonicalizationHTTP(t *testing.T) {
	env, alice := hostileEnv(t)
	for _, host := range []string{"admin.example.com", "ADMIN.Example.COM", "admin.example.com.", "admin.example.com:443"} {
		refused(t, host, serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", host, "/", "198.51.100.7", alice)), 403)
		refused(t, "request "+host, serve(env, "GET", "/.latchkey/auth/request", trustedPeer, http.Header{
			"X-Original-Url": {"https://" + host + "/"}, "Cookie": {alice}}), 403)
	}
	refused(t, "unknown host", serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "unknown.example.com", "/", "198.51.100.7", alice)), 403)
	refused(t, "empty host", serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "", "/", "198.51.100.7", alice)), 400, 403)
}

func TestPUB06PathRulesHTTP(t *testing.T) {
	env, _ := hostileEnv(t)
	if w := serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "public.example.com", "/public/x", "198.51.100.7", "")); w.Code != http.StatusOK {
		t.Fatalf("the bypass itself: %d", w.Code)
	}
	for _, uri := range []string{"/admin?x=/public/", "/admin#/public/", "/public/../admin", "/public/%2e%2e/admin",
		"/public%2F..%2Fadmin", "/public/./../admin", "/public/%2E%2E/admin", "/public/..%2fadmin"} {
		refused(t, "forward "+uri, serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, forwardHeaders("GET", "public.example.com", uri, "198.51.100.7", "")), 400, 401)
		refused(t, "request "+uri, serve(env, "GET", "/.latchkey/auth/request", trustedPeer, http.Header{
			"X-Original-Url": {"https://public.example.com" + uri}}), 400, 401)
	}
}

func TestPUB07ClientAddressSpoofingHTTP(t *testing.T) {
	env, _ := hostileEnv(t)
	check := func(name, xff string, extra http.Header) *httptest.ResponseRecorder {
		h := forwardHeaders("GET", "lan.example.com", "/", xff, "")
		for k, v := range extra {
			h[k] = v
		}
		return serve(env, "GET", "/.latchkey/auth/forward", trustedPeer, h)
	}
	if w := check("real LAN client", "192.168.1.10", nil); w.Code != http.StatusOK {
		t.Fatalf("a LAN client behind the proxy: %d", w.Code)
	}
	for _, tc := range []struct {
		name, xff string
		extra     http.Header
	}{
		{"appended spoof", "192.168.1.10, 203.0.113.9", nil},
		{"garbage", "a", nil},
		{"garbage after spoof", "192.168.1.10, a", nil},
		{"X-Real-IP", "203.0.113.9", http.Header{"X-Real-Ip": {"192.168.1.10"}}},
		{"Forwarded", "203.0.113.9", http.Header{"Forwarded": {"for=192.168.1.10"}}},
	} {
		refused(t, tc.name, check(tc.name, tc.xff, tc.extra), 403)
	}
	// From an untrusted peer the header is not even read.
	refused(t, "untrusted peer", serve(env, "GET", "/.latchkey/auth/forward", "192.168.1.10:1234",
		forwardHeaders("GET", "lan.example.com", "/", "192.168.1.10", "")), 403)
}
