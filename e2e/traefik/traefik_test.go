package traefiktest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// app is a protected application on 127.0.0.1: it records every request and answers with it as
// JSON, and echoes one message on a WebSocket upgrade.
type app struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []lktest.EchoRequest
}

func newApp(t *testing.T) *app {
	t.Helper()
	a := &app{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		er := lktest.EchoRequest{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header.Clone()}
		a.mu.Lock()
		a.reqs = append(a.reqs, er)
		a.mu.Unlock()
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(er)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) addr() string { return a.srv.Listener.Addr().String() }

func (a *app) reset() {
	a.mu.Lock()
	a.reqs = nil
	a.mu.Unlock()
}

func (a *app) requests() []lktest.EchoRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]lktest.EchoRequest(nil), a.reqs...)
}

// world is one Latchkey with its users, and the applications behind every Traefik of a test.
type world struct {
	lk     *latchkeyProc
	portal *lktest.Env // the portal, reached through the first Traefik
	whoami *app        // the compose file's whoami container
	nas    *app        // dynamic/latchkey.yml's nas service
	alice  string      // Cookie header with alice's session (group staff)
	admin  string      // the bootstrap user admin (group admins)
	token  string      // an API token of alice's for whoami and nas behind every Traefik
}

func (w *world) apps() map[string]string {
	return map[string]string{"latchkey": w.lk.Addr, "whoami": w.whoami.addr(), "nas": w.nas.addr()}
}

// signIn enrols a passkey with an enrolment token and returns the Cookie header of the session.
func (w *world) signIn(t *testing.T, token string) string {
	t.Helper()
	c := w.portal.Client()
	c.Enrol(lktest.NewPasskey(), token)
	if c.Session() == "" {
		t.Fatal("enrolling gave no session")
	}
	return "latchkey_session=" + c.Session()
}

// TestTraefik runs the proxy contract (the one proxy/proxysuite_integration_test.go holds nginx
// and Caddy to) through real Traefik with the shipped deploy/traefik files, once as shipped
// (trustForwardHeader: false) and once with trustForwardHeader: true.
func TestTraefik(t *testing.T) {
	needSuite(t)
	// One Traefik as shipped, one with trustForwardHeader: true, one without authRequestHeaders;
	// their ports are known before Latchkey starts, for its rules and public_url.
	ports := map[any]int{false: reservePort(t), true: reservePort(t), "open": reservePort(t)}
	public, _ := url.Parse("http://auth.example.com:" + strconv.Itoa(ports[false]))
	w := &world{whoami: newApp(t), nas: newApp(t)}
	w.lk = startLatchkey(t, public, ports[false], ports[true], ports["open"])

	proxies := map[bool]*traefikProc{}
	for _, trust := range []bool{false, true} {
		proxies[trust] = startTraefik(t, traefikConfig{Name: "trustForwardHeader=" + strconv.FormatBool(trust),
			Port: ports[trust], Latchkey: w.lk.Addr, Apps: w.apps(), TrustForwardHeader: &trust})
	}
	w.portal = lktest.Remote(t, proxies[false].URL, public)
	if r := w.portal.Client().Get("/.latchkey/login"); r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `id="passkey-login"`) {
		t.Fatalf("the portal through Traefik: %d\n%s", r.StatusCode, r.Body)
	}
	w.admin = w.signIn(t, w.lk.admin)
	w.alice = w.signIn(t, w.lk.addUser(t, "alice", "--email", "alice@example.com", "--display-name", "Alice", "--groups", "staff"))

	// alice's API token, for both applications behind both proxies.
	c := w.portal.Client()
	c.Cookies["latchkey_session"] = strings.TrimPrefix(w.alice, "latchkey_session=")
	var hosts []string
	for _, p := range proxies {
		hosts = append(hosts, p.host("whoami.example.com"), p.host("nas.example.com"))
	}
	r := c.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "traefik e2e", "hosts": hosts, "expires_in": "1h"})
	var tok struct {
		Token string `json:"token"`
	}
	if r.StatusCode != http.StatusCreated || r.JSON(&tok) != nil || !strings.HasPrefix(tok.Token, "lk_") {
		t.Fatalf("creating an API token: %d %s", r.StatusCode, r.Body)
	}
	w.token = tok.Token

	for _, trust := range []bool{false, true} {
		t.Run("trustForwardHeader="+strconv.FormatBool(trust), func(t *testing.T) { contract(t, w, proxies[trust]) })
	}

	t.Run("without authRequestHeaders a client's X-Original-URL gets a 400 naming it", func(t *testing.T) {
		// Why the shipped middleware lists authRequestHeaders (deploy/traefik/README.md): without
		// them Traefik copies every client header to Latchkey, which refuses two descriptions of
		// one request, and must say which header was wrong.
		p := startTraefik(t, traefikConfig{Name: "no authRequestHeaders", Port: ports["open"], Latchkey: w.lk.Addr,
			Apps: w.apps(), NoAuthRequestHeaders: true})
		if r, seen := p.get(t, w.whoami, "whoami.example.com", w.alice, "/dash", nil); r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("without X-Original-URL: %d, the application saw %d requests", r.StatusCode, len(seen))
		}
		r, seen := p.get(t, w.whoami, "whoami.example.com", w.alice, "/dash", http.Header{"X-Original-Url": {"http://whoami.example.com/public/x"}})
		if r.StatusCode != http.StatusBadRequest || len(seen) != 0 {
			t.Fatalf("status %d %q, the application saw %+v", r.StatusCode, r.Body, seen)
		}
		if !strings.Contains(strings.ToLower(string(r.Body)), "x-original-url") {
			t.Errorf("the 400 does not name X-Original-URL: %q", r.Body)
		}
	})
}

// aliasNames are spellings a client may use for the identity headers: Go (and so Traefik) reads
// each as a header of its own, while PHP, CGI, WSGI and nginx read every one of them as the
// canonical header.
var aliasNames = map[string][]string{
	"Remote-User":   {"remote-user", "REMOTE-USER", "Remote_User", "remote_user", "Remote.User"},
	"Remote-Groups": {"Remote_Groups", "REMOTE_GROUPS", "Remote.Groups"},
	"Remote-Email":  {"Remote_Email"},
	"Remote-Name":   {"Remote_Name", "Remote~Name"},
}

// cgiName is the variable name a CGI-style backend derives from a header name.
func cgiName(k string) string {
	b := []byte(strings.ToUpper(k))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// forged is a client's own identity headers in every spelling of aliasNames.
func forged() http.Header {
	h := http.Header{}
	for canonical, aliases := range aliasNames {
		h[canonical] = []string{"mallory"}
		for _, a := range aliases {
			h[a] = []string{"mallory"} // sent exactly as spelled
		}
	}
	return h
}

// identityHeaders checks what an application saw: exactly the identity want (nil: none at all)
// under the canonical names, and no header that a CGI-style backend would read as one.
func identityHeaders(t *testing.T, what string, h http.Header, want map[string]string) {
	t.Helper()
	for k, vs := range h {
		n := cgiName(k)
		if !strings.HasPrefix(n, "REMOTE_") {
			continue
		}
		if want == nil {
			t.Errorf("%s: the application got %s: %q, want no identity", what, k, vs)
			continue
		}
		if _, canonical := want[k]; !canonical {
			t.Errorf("%s: the application got %s: %q (read as %s by CGI-style backends)", what, k, vs, n)
		}
	}
	for k, v := range want {
		if vs := h[k]; len(vs) != 1 || vs[0] != v {
			t.Errorf("%s: the application got %s %q, want exactly %q", what, k, vs, v)
		}
	}
}

// get sends a browser navigation to an application through Traefik and returns what that
// application saw.
func (p *traefikProc) get(t *testing.T, a *app, host, cookie, uri string, hdr http.Header) (*lktest.Response, []lktest.EchoRequest) {
	t.Helper()
	a.reset()
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	for k, v := range hdr {
		h[k] = v
	}
	r := p.client().get(t, host, uri, h)
	return r, a.requests()
}

// contract is the proxy contract through one Traefik.
func contract(t *testing.T, w *world, p *traefikProc) {
	whoami := p.host("whoami.example.com")
	aliceID := map[string]string{"Remote-User": "alice", "Remote-Email": "alice@example.com", "Remote-Name": "Alice", "Remote-Groups": "staff"}

	get := p.get
	jsonClient := http.Header{"Accept": {"application/json"}}
	bearer := func(v string) http.Header { return http.Header{"Accept": {"application/json"}, "Authorization": {v}} }

	t.Run("no session: login redirect with rd keeping path and query", func(t *testing.T) {
		uri := "/dash/?x=1&y=a%20b&z=%2Fc"
		r, seen := get(t, w.whoami, "whoami.example.com", "", uri, nil)
		if r.StatusCode != http.StatusFound || len(seen) != 0 {
			t.Fatalf("status %d, the application saw %d requests\n%s", r.StatusCode, len(seen), r.Body)
		}
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		wantRD := "http://" + whoami + uri
		if loc.Scheme+"://"+loc.Host != w.portal.Origin() || loc.Path != "/.latchkey/login" || loc.Query().Get("rd") != wantRD {
			t.Fatalf("Location = %s, want the login page with rd=%s", loc, wantRD)
		}
		b := w.portal.Client()
		if page := b.Get(loc.RequestURI()); page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), `id="passkey-login"`) {
			t.Fatalf("login page: %d\n%s", page.StatusCode, page.Body)
		}
		// Signing in there sends the browser back to where it was going.
		name := "erin" + strconv.Itoa(p.Port)
		pk := lktest.NewPasskey()
		w.portal.Client().Enrol(pk, w.lk.addUser(t, name, "--groups", "staff"))
		if got := b.Login(pk, loc.Query().Get("rd")); got != wantRD {
			t.Fatalf("redirect after login = %q, want %q", got, wantRD)
		}
		r, seen = get(t, w.whoami, "whoami.example.com", "latchkey_session="+b.Session(), uri, nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 || seen[0].Header.Get("Remote-User") != name || seen[0].URI != uri {
			t.Fatalf("after login: %d, the application saw %+v", r.StatusCode, seen)
		}
	})

	t.Run("no session: JSON client gets 401", func(t *testing.T) {
		for _, hdr := range []http.Header{jsonClient, bearer("Bearer lk_notatoken"), bearer("Basic YWxpY2U6c2VjcmV0")} {
			r, seen := get(t, w.whoami, "whoami.example.com", "", "/api/data", hdr)
			if r.StatusCode != http.StatusUnauthorized || len(seen) != 0 {
				t.Errorf("%v: status %d, the application saw %d requests", hdr, r.StatusCode, len(seen))
			}
		}
	})

	t.Run("identity reaches the application, a client's copies in any spelling do not", func(t *testing.T) {
		r, seen := get(t, w.whoami, "whoami.example.com", "theme=dark; "+w.alice, "/dash?x=1", forged())
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("status %d, the application saw %d requests\n%s", r.StatusCode, len(seen), r.Body)
		}
		identityHeaders(t, "signed in", seen[0].Header, aliceID)
		if seen[0].URI != "/dash?x=1" {
			t.Errorf("the application was asked for %q", seen[0].URI)
		}
		// On a bypass path Latchkey vouches for nobody, so no identity may arrive at all.
		r, seen = get(t, w.whoami, "whoami.example.com", "", "/public/x", forged())
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("bypass: status %d", r.StatusCode)
		}
		identityHeaders(t, "bypass path", seen[0].Header, nil)
		// The router from dynamic/latchkey.yml (file provider) is protected the same way.
		r, seen = get(t, w.nas, "nas.example.com", w.alice, "/files", forged())
		if r.StatusCode != http.StatusOK || len(seen) != 1 {
			t.Fatalf("nas: status %d", r.StatusCode)
		}
		identityHeaders(t, "nas", seen[0].Header, aliceID)
		if r, seen = get(t, w.nas, "nas.example.com", "", "/files", nil); r.StatusCode != http.StatusFound || len(seen) != 0 {
			t.Fatalf("nas without a session: status %d, the application saw %d requests", r.StatusCode, len(seen))
		}
	})

	t.Run("group rule: 403 for others, through for the group", func(t *testing.T) {
		r, seen := get(t, w.whoami, "whoami.example.com", w.alice, "/admin/users", nil)
		if r.StatusCode != http.StatusForbidden || len(seen) != 0 {
			t.Fatalf("alice on /admin: status %d, the application saw %d requests", r.StatusCode, len(seen))
		}
		if !strings.Contains(string(r.Body), "not open to your account") {
			t.Errorf("the 403 page did not come through Traefik:\n%s", r.Body)
		}
		r, seen = get(t, w.whoami, "whoami.example.com", w.admin, "/admin/users", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 || seen[0].Header.Get("Remote-Groups") != "admins" {
			t.Fatalf("admin on /admin: status %d, the application saw %+v", r.StatusCode, seen)
		}
	})

	t.Run("bypass path passes without a session", func(t *testing.T) {
		r, seen := get(t, w.whoami, "whoami.example.com", "", "/public/style.css", nil)
		if r.StatusCode != http.StatusOK || len(seen) != 1 || seen[0].URI != "/public/style.css" {
			t.Fatalf("status %d, the application saw %+v", r.StatusCode, seen)
		}
		identityHeaders(t, "bypass path", seen[0].Header, nil)
		// Dot segments do not carry a bypass onto a protected path.
		for _, uri := range []string{"/public/%2e%2e/dash", "/public/../dash", "/public/%2E%2E/dash?x=1"} {
			r, seen := get(t, w.whoami, "whoami.example.com", "", uri, nil)
			if r.StatusCode == http.StatusOK || len(seen) != 0 {
				t.Errorf("%s: status %d, the application saw %+v", uri, r.StatusCode, seen)
			}
		}
	})

	t.Run("API token: accepted, and removed before the application", func(t *testing.T) {
		for _, auth := range []string{"Bearer " + w.token, "bearer " + w.token, "Bearer  " + w.token} {
			for _, a := range []struct {
				app  *app
				host string
			}{{w.whoami, "whoami.example.com"}, {w.nas, "nas.example.com"}} {
				r, seen := get(t, a.app, a.host, "", "/api/data", bearer(auth))
				if r.StatusCode != http.StatusOK || len(seen) != 1 {
					t.Fatalf("%s %.12s...: status %d, the application saw %d requests\n%s", a.host, auth, r.StatusCode, len(seen), r.Body)
				}
				identityHeaders(t, a.host+" with a token", seen[0].Header, aliceID)
				if v, ok := seen[0].Header["Authorization"]; ok {
					t.Errorf("%s: the application got the Latchkey token: Authorization %q", a.host, v)
				}
			}
		}
		// A token on a bypass path is removed too.
		if _, seen := get(t, w.whoami, "whoami.example.com", "", "/public/x", bearer("Bearer "+w.token)); len(seen) != 1 || seen[0].Header["Authorization"] != nil {
			t.Errorf("bypass path with a token: the application saw %+v", seen)
		}
	})

	t.Run("API token: other Authorization headers reach the application untouched", func(t *testing.T) {
		for _, auth := range []string{"Basic YWxpY2U6c2VjcmV0", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "Token lk_abc"} {
			r, seen := get(t, w.whoami, "whoami.example.com", w.alice, "/api/data", bearer(auth))
			if r.StatusCode != http.StatusOK || len(seen) != 1 {
				t.Fatalf("%s: status %d", auth, r.StatusCode)
			}
			if v := seen[0].Header["Authorization"]; len(v) != 1 || v[0] != auth {
				t.Errorf("the application got Authorization %q, want %q", v, auth)
			}
			_, seen = get(t, w.whoami, "whoami.example.com", "", "/public/x", bearer(auth))
			if len(seen) != 1 || len(seen[0].Header["Authorization"]) != 1 || seen[0].Header["Authorization"][0] != auth {
				t.Errorf("bypass path: the application saw %+v, want Authorization %q", seen, auth)
			}
		}
	})

	t.Run("session cookie reaches the application (a documented limit of Traefik)", func(t *testing.T) {
		// README.md says so: Traefik cannot remove one cookie. If this starts to fail, Traefik
		// learnt to, and the README and dynamic/latchkey.yml should use it.
		_, seen := get(t, w.whoami, "whoami.example.com", "theme=dark; "+w.alice, "/", nil)
		if len(seen) != 1 || !strings.Contains(seen[0].Header.Get("Cookie"), "latchkey_session=") {
			t.Errorf("the application saw %+v", seen)
		}
	})

	t.Run("WebSocket upgrade through the middleware", func(t *testing.T) {
		dial := func(cookie string) (*websocket.Conn, *http.Response, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			hdr := http.Header{}
			if cookie != "" {
				hdr.Set("Cookie", cookie)
			}
			return websocket.Dial(ctx, "ws://"+whoami+"/ws?room=1", &websocket.DialOptions{HTTPClient: p.wsClient(), HTTPHeader: hdr})
		}
		w.whoami.reset()
		c, resp, err := dial(w.alice)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			hint := ""
			if status == http.StatusBadRequest {
				hint = " (Latchkey refuses X-Forwarded-Proto ws/wss: it must read them as http/https)"
			}
			t.Fatalf("upgrade with a session: %v (status %d)%s", err, status, hint)
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo: hello" {
			t.Fatalf("read %q, %v", msg, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
		seen := w.whoami.requests()
		if len(seen) != 1 || seen[0].URI != "/ws?room=1" || !strings.EqualFold(seen[0].Header.Get("Upgrade"), "websocket") {
			t.Fatalf("the application saw %+v", seen)
		}
		identityHeaders(t, "WebSocket", seen[0].Header, aliceID)

		w.whoami.reset()
		_, resp, err = dial("")
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("upgrade without a session: %v, status %d; want 401", err, status)
		}
		if seen := w.whoami.requests(); len(seen) != 0 {
			t.Errorf("without a session the application saw %+v", seen)
		}
	})
}
