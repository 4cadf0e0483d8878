package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// noRemote fails when any Remote-* header is present.
func noRemote(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "remote") {
			t.Errorf("%s: unexpected %s: %q", what, k, h[k])
		}
	}
}

// signIn creates a user with a passkey and returns its session cookie ("latchkey_session=...")
// and the stored user.
func signIn(t testing.TB, env *lktest.Env, name string, groups ...string) (string, store.User) {
	t.Helper()
	u, token := env.AddUser(name, groups...)
	c := env.Client()
	c.Enrol(lktest.NewPasskey(), token)
	if c.Session() == "" {
		t.Fatalf("enrolling %s gave no session", name)
	}
	return "latchkey_session=" + c.Session(), u
}

// serve runs one request through env.Handler without TCP, from the peer remote.
func serve(env *lktest.Env, method, path, remote string, hdr http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	r.Host = env.Public.Host
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	env.Handler.ServeHTTP(w, r)
	return w
}

// suiteRules protect app (host:port of the proxy's protected site).
func suiteRules(app string) []proxy.RuleConfig {
	return []proxy.RuleConfig{
		{Hosts: []string{app}, Paths: []string{"^/public/"}, Policy: "bypass"},
		{Hosts: []string{app}, Paths: []string{"^/admin(/|$)"}, Groups: []string{"admins"}, Policy: "passkey"},
		{Hosts: []string{app}, Policy: "passkey"},
	}
}

// proxySuite is what every real proxy must show, with the deploy/ files it ships: login
// redirect with the right rd, identity headers upstream, refusals, header injection, bypass
// and a group denial.
func proxySuite(t *testing.T, env *lktest.Env, echo *lktest.Echo, p *lktest.Proc) {
	app := "app.example.com:" + strconv.Itoa(p.Port)
	alice, _ := signIn(t, env, "alice", "staff")
	bob, _ := signIn(t, env, "bob", "admins")
	ctx := context.Background()

	// get sends a browser navigation through the proxy and reports what the upstream saw.
	get := func(t *testing.T, cookie, uri string, hdr http.Header) (*lktest.Response, []lktest.EchoRequest) {
		t.Helper()
		echo.Reset()
		c := p.Client()
		c.Cookies = cookie
		r := c.Get(t, app, uri, hdr)
		return r, echo.Requests()
	}

	t.Run("no cookie ends at the login page with rd", func(t *testing.T) {
		r, seen := get(t, "", "/dash/?x=1&y=a%20b", nil)
		if r.StatusCode != http.StatusFound || len(seen) != 0 {
			t.Fatalf("status %d, upstream saw %d requests\n%s\n%s", r.StatusCode, len(seen), r.Body, p.Logs())
		}
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		wantRD := "http://" + app + "/dash/?x=1&y=a%20b"
		if loc.Scheme+"://"+loc.Host != env.Origin() || loc.Path != "/.latchkey/login" || loc.Query().Get("rd") != wantRD {
			t.Fatalf("Location = %s, want the login page with rd=%s", loc, wantRD)
		}
		b := env.Client()
		page := b.Get(loc.RequestURI())
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), `id="passkey-login"`) {
			t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
		}
		// Signing in there sends the browser back to where it was going.
		_, token := env.AddUser("erin", "staff")
		pk := lktest.NewPasskey()
		env.Client().Enrol(pk, token)
		if got := b.Login(pk, loc.Query().Get("rd")); got != wantRD {
			t.Fatalf("redirect after login = %q, want %q", got, wantRD)
		}
		r, seen = get(t, "latchkey_session="+b.Session(), "/dash/?x=1&y=a%20b", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 || seen[0].Header.Get("Remote-User") != "erin" {
			t.Fatalf("after login: %d, upstream saw %+v", r.StatusCode, seen)
		}
	})

	t.Run("valid cookie reaches the upstream with the identity", func(t *testing.T) {
		r, seen := get(t, "theme=dark; "+alice+"; lang=en", "/dash?x=1", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("status %d, upstream saw %d requests\n%s", r.StatusCode, len(seen), r.Body)
		}
		got := seen[0]
		want := map[string]string{"Remote-User": "alice", "Remote-Email": "alice@example.com", "Remote-Name": "Alice", "Remote-Groups": "staff"}
		for k, v := range want {
			if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
				t.Errorf("upstream %s = %q, want exactly %q", k, vs, v)
			}
		}
		if got.URI != "/dash?x=1" {
			t.Errorf("upstream URI = %q", got.URI)
		}
		ck := strings.Join(got.Header.Values("Cookie"), "; ")
		if strings.Contains(ck, "latchkey_session") || !strings.Contains(ck, "theme=dark") || !strings.Contains(ck, "lang=en") {
			t.Errorf("upstream Cookie = %q: want theme and lang, and no latchkey_session", ck)
		}
	})

	t.Run("session cookie alone is stripped", func(t *testing.T) {
		r, seen := get(t, alice, "/", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("status %d", r.StatusCode)
		}
		if ck := strings.Join(seen[0].Header.Values("Cookie"), "; "); strings.Contains(ck, "latchkey_session") {
			t.Errorf("upstream Cookie = %q", ck)
		}
		// A second copy (a host-only cookie next to a domain cookie) is removed as well.
		r, seen = get(t, alice+"; theme=dark; latchkey_session=older", "/", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("two session cookies: status %d", r.StatusCode)
		}
		if ck := strings.Join(seen[0].Header.Values("Cookie"), "; "); strings.Contains(ck, "latchkey_session") || !strings.Contains(ck, "theme=dark") {
			t.Errorf("two session cookies: upstream Cookie = %q", ck)
		}
	})

	t.Run("client Remote headers do not get through", func(t *testing.T) {
		forged := http.Header{"Remote-User": {"admin"}, "Remote-Groups": {"admins"}, "Remote-Email": {"admin@example.com"}, "Remote-Name": {"Admin"}}
		r, seen := get(t, alice, "/x", forged)
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("status %d", r.StatusCode)
		}
		if u, g := seen[0].Header.Values("Remote-User"), seen[0].Header.Values("Remote-Groups"); len(u) != 1 || u[0] != "alice" || len(g) != 1 || g[0] != "staff" {
			t.Errorf("upstream Remote-User %q Remote-Groups %q, want alice/staff only", u, g)
		}
		// On a bypass path Latchkey vouches for nobody, so no identity may arrive at all.
		r, seen = get(t, "", "/public/x", forged)
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("bypass: status %d", r.StatusCode)
		}
		noRemote(t, "upstream on a bypass path", seen[0].Header)
	})

	t.Run("bypass path passes without a cookie", func(t *testing.T) {
		r, seen := get(t, "", "/public/style.css", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 || seen[0].URI != "/public/style.css" {
			t.Fatalf("status %d, upstream saw %+v", r.StatusCode, seen)
		}
		noRemote(t, "upstream", seen[0].Header)
		// Dot segments do not carry a bypass onto a protected path.
		r, seen = get(t, "", "/public/%2e%2e/dash", nil)
		if r.StatusCode == http.StatusOK || len(seen) != 0 {
			t.Fatalf("/public/%%2e%%2e/dash: status %d, upstream saw %d requests", r.StatusCode, len(seen))
		}
	})

	t.Run("denied group gets 403", func(t *testing.T) {
		r, seen := get(t, alice, "/admin/users", nil)
		if r.StatusCode != http.StatusForbidden || len(seen) != 0 {
			t.Fatalf("alice on /admin: status %d, upstream saw %d requests", r.StatusCode, len(seen))
		}
		r, seen = get(t, bob, "/admin/users", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 || seen[0].Header.Get("Remote-Groups") != "admins" {
			t.Fatalf("bob on /admin: status %d, upstream saw %+v", r.StatusCode, seen)
		}
	})

	t.Run("revoked session is refused", func(t *testing.T) {
		cookie, u := signIn(t, env, "carol", "staff")
		if r, _ := get(t, cookie, "/", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("before revocation: %d", r.StatusCode)
		}
		sessions, err := env.Store.Sessions(ctx, u.ID)
		if err != nil || len(sessions) != 1 {
			t.Fatalf("sessions: %v %d", err, len(sessions))
		}
		if err := env.Store.RevokeSession(ctx, u.ID, sessions[0].ID); err != nil {
			t.Fatal(err)
		}
		env.Refresh()
		r, seen := get(t, cookie, "/", nil)
		if r.StatusCode != http.StatusFound || len(seen) != 0 {
			t.Fatalf("after revocation: status %d, upstream saw %d requests", r.StatusCode, len(seen))
		}
	})

	t.Run("disabled user is refused", func(t *testing.T) {
		cookie, u := signIn(t, env, "dave", "admins")
		if r, _ := get(t, cookie, "/admin", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("before disabling: %d", r.StatusCode)
		}
		if err := env.Store.SetUserDisabled(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		env.Refresh()
		for _, uri := range []string{"/", "/admin", "/public/x"} {
			r, seen := get(t, cookie, uri, nil)
			if uri == "/public/x" {
				if r.StatusCode != http.StatusOK || len(seen) != 1 {
					t.Fatalf("bypass path for a disabled user: %d", r.StatusCode)
				}
				noRemote(t, "disabled user on a bypass path", seen[0].Header)
				continue
			}
			if r.StatusCode != http.StatusFound || len(seen) != 0 {
				t.Fatalf("%s after disabling: status %d, upstream saw %d requests", uri, r.StatusCode, len(seen))
			}
		}
	})

	t.Run("non-navigation without a session", func(t *testing.T) {
		r, seen := get(t, "", "/api/data", http.Header{"Accept": {"application/json"}})
		if len(seen) != 0 || (r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusFound) {
			t.Fatalf("status %d, upstream saw %d requests", r.StatusCode, len(seen))
		}
	})

}
