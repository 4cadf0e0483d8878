package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// Issue 16: what the proxy serves and what Latchkey judges must be the same site and the same
// path, for every way a client can write them. The tests below send raw requests (absolute
// request lines, duplicate Host headers, odd bytes) through real nginx and Caddy running the
// shipped deploy/ files, and through Latchkey's own reverse proxy, and assert on what the
// upstream applications saw.
//
// The rules make the outcome depend on the rule applied, so that a disagreement shows:
// /admin/ on app.example.com is denied, everything else on it and everything on
// public.example.com is open (bypass), and for the proxies a trap rule opens
// app.example.com on a port nobody listens on (1), which only a request judged on a port the
// client wrote into Host could reach.

// identityRules are the rules described above; trapPort "" leaves the trap rule out.
func identityRules(trapPort string) []proxy.RuleConfig {
	var rules []proxy.RuleConfig
	if trapPort != "" {
		rules = append(rules, proxy.RuleConfig{Hosts: []string{"app.example.com:" + trapPort}, Policy: "bypass"})
	}
	return append(rules,
		proxy.RuleConfig{Hosts: []string{"app.example.com"}, Paths: []string{"^/admin/"}, Policy: "deny"},
		proxy.RuleConfig{Hosts: []string{"app.example.com"}, Policy: "bypass"},
		proxy.RuleConfig{Hosts: []string{"public.example.com"}, Policy: "bypass"},
	)
}

// What a variant must lead to.
const (
	wantServe   = "serve"   // 200, and exactly the intended site's upstream got it, at the intended path
	wantDeny403 = "deny403" // Latchkey's deny rule answered: 403, and no upstream got anything
	wantRefuse  = "refuse"  // no upstream got anything (the proxy or Latchkey refused it somehow)
	wantMaybe   = "maybe"   // refused, or served as for serve; never served anywhere else
)

type identityCase struct {
	name string
	// raw is the request head without the final blank line; "{P}" is the port the proxy
	// listens on. "Connection: close" is added.
	raw  string
	want string
	site string // app or public: the site the request names (request line before Host)
	path string // the normalised path it names
}

// identityCases is the table of host and path variants.
func identityCases() []identityCase {
	const (
		app = "app.example.com:{P}"
		pub = "public.example.com:{P}"
	)
	get := func(uri, host string) string { return "GET " + uri + " HTTP/1.1\r\nHost: " + host }
	return []identityCase{
		// Host identity.
		{"app open path", get("/x", app), wantServe, "app", "/x"},
		{"app admin denied", get("/admin/x", app), wantDeny403, "app", "/admin/x"},
		{"public admin open", get("/admin/x", pub), wantServe, "public", "/admin/x"},
		{"host letter case", get("/admin/x", "APP.Example.COM:{P}"), wantDeny403, "app", "/admin/x"},
		{"host letter case open path", get("/x", "APP.Example.COM:{P}"), wantServe, "app", "/x"},
		{"host trailing dot", get("/admin/x", "app.example.com.:{P}"), wantRefuse, "app", "/admin/x"},
		{"host trailing dot open path", get("/x", "app.example.com.:{P}"), wantMaybe, "app", "/x"},
		{"host without port", get("/admin/x", "app.example.com"), wantDeny403, "app", "/admin/x"},
		{"host with another port (trap rule)", get("/admin/x", "app.example.com:1"), wantDeny403, "app", "/admin/x"},
		{"host with port and leading zero", get("/admin/x", "app.example.com:0{P}"), wantRefuse, "app", "/admin/x"},
		{"public with another port", get("/admin/x", "public.example.com:1"), wantServe, "public", "/admin/x"},
		{"absolute URI with another port (trap rule)", get("http://app.example.com:1/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"client X-Forwarded-Port (trap rule)", get("/admin/x", app) + "\r\nX-Forwarded-Port: 1", wantDeny403, "app", "/admin/x"},
		{"client X-Forwarded-Host", get("/admin/x", app) + "\r\nX-Forwarded-Host: public.example.com:{P}", wantDeny403, "app", "/admin/x"},
		{"client X-Original-URL", get("/admin/x", app) + "\r\nX-Original-URL: http://public.example.com:{P}/admin/x", wantRefuse, "app", "/admin/x"},
		{"absolute URI names app, Host names public", get("http://app.example.com:{P}/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"absolute URI names public, Host names app", get("http://public.example.com:{P}/admin/x", app), wantServe, "public", "/admin/x"},
		{"absolute URI without port", get("http://app.example.com/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"absolute URI upper case", get("http://APP.example.com:{P}/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"absolute URI trailing dot", get("http://app.example.com.:{P}/admin/x", pub), wantRefuse, "app", "/admin/x"},
		{"absolute URI https on plain port", get("https://app.example.com:{P}/admin/x", pub), wantRefuse, "app", "/admin/x"},
		{"absolute URI with userinfo", get("http://public.example.com@app.example.com:{P}/admin/x", pub), wantRefuse, "app", "/admin/x"},
		{"two Host headers", get("/admin/x", pub) + "\r\nHost: " + app, wantRefuse, "app", "/admin/x"},
		{"two Host headers, app first", get("/admin/x", app) + "\r\nHost: " + pub, wantRefuse, "app", "/admin/x"},
		{"Host list", get("/admin/x", pub+", "+app), wantRefuse, "app", "/admin/x"},
		{"no Host, HTTP/1.1", "GET /admin/x HTTP/1.1", wantRefuse, "app", "/admin/x"},
		{"no Host, HTTP/1.0", "GET /admin/x HTTP/1.0", wantRefuse, "app", "/admin/x"},
		{"percent-encoded host", get("/admin/x", "%61pp.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"unicode host", get("/admin/x", "\u0430pp.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"punycode host", get("/admin/x", "xn--pp-8kc.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"userinfo in Host", get("/admin/x", "public.example.com@app.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"IP literal host", get("/admin/x", "127.0.0.1:{P}"), wantRefuse, "app", "/admin/x"},

		// Path identity: every spelling of the directory /admin/ is the directory.
		{"directory itself", get("/admin/", app), wantDeny403, "app", "/admin/"},
		{"directory without slash is another path", get("/admin", app), wantServe, "app", "/admin"},
		{"double slash first", get("//admin/", app), wantDeny403, "app", "/admin/"},
		{"dot segment first", get("/./admin/", app), wantDeny403, "app", "/admin/"},
		{"parent segment first", get("/x/../admin/", app), wantDeny403, "app", "/admin/"},
		{"encoded letter", get("/%61dmin/", app), wantDeny403, "app", "/admin/"},
		{"encoded letters upper hex", get("/%41%44MIN/", app), wantServe, "app", "/ADMIN/"},
		{"double slash inside", get("/admin//x", app), wantDeny403, "app", "/admin/x"},
		{"trailing double slash", get("/admin//", app), wantDeny403, "app", "/admin/"},
		{"parent of a child", get("/admin/x/..", app), wantDeny403, "app", "/admin/"},
		{"encoded dot segment", get("/admin/%2e/", app), wantDeny403, "app", "/admin/"},
		{"encoded parent segment", get("/x/%2e%2e/admin/", app), wantDeny403, "app", "/admin/"},
		{"mixed encoded parent", get("/admin/.%2e/admin/", app), wantDeny403, "app", "/admin/"},
		{"above the root", get("/../admin/", app), wantMaybe, "app", "/admin/"},
		{"query is not path", get("/admin/?next=/x", app), wantDeny403, "app", "/admin/"},
		{"path in query", get("/x?/admin/", app), wantServe, "app", "/x"},
		{"letter case is another path", get("/ADMIN/", app), wantServe, "app", "/ADMIN/"},
		{"encoded slash", get("/admin%2Fx", app), wantRefuse, "app", "/admin/x"},
		{"encoded slash after parent", get("/x/..%2fadmin/", app), wantRefuse, "app", "/admin/"},
		{"path parameter", get("/admin;x/", app), wantRefuse, "app", "/admin/"},
		{"backslash", get("/admin\\x/", app), wantRefuse, "app", "/admin/"},
		{"encoded backslash", get("/admin%5Cx/", app), wantRefuse, "app", "/admin/"},
		{"encoded NUL", get("/admin/%00", app), wantRefuse, "app", "/admin/"},
		{"double encoding", get("/%2561dmin/", app), wantRefuse, "app", "/admin/"},
	}
}

// rawExchange writes req on a new connection to addr and reads one response. Status 0 means
// the server closed the connection without answering (nginx's 444).
func rawExchange(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// siteName is the host name of a Host header as a server compares it.
func siteName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// runIdentityTable sends every case to addr and checks what the upstreams saw.
// With exactPath, the upstream must receive the normalised path itself (Latchkey's own reverse
// proxy sends it); otherwise the path it receives must normalise to the judged one.
func runIdentityTable(t *testing.T, addr string, echoes map[string]*lktest.Echo, skip map[string]string, exactPath bool, logs func() string) {
	_, port, _ := net.SplitHostPort(addr)
	served := 0
	for _, tc := range identityCases() {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := skip[tc.name]; ok {
				t.Skip(why)
			}
			for _, e := range echoes {
				e.Reset()
			}
			req := strings.ReplaceAll(tc.raw, "{P}", port) + "\r\nConnection: close\r\n\r\n"
			status, body := rawExchange(t, addr, req)
			var got []string
			for name, e := range echoes {
				for _, r := range e.Requests() {
					got = append(got, name+" "+r.Host+" "+r.URI)
				}
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("%q: "+format+"\nstatus %d, upstreams saw %q\nbody: %.300s\nproxy log:\n%.2000s",
					append([]any{req}, append(args, status, got, body, logs())...)...)
			}
			if len(got) == 0 {
				switch tc.want {
				case wantServe:
					fail("want it served by %s at %s", tc.site, tc.path)
				case wantDeny403:
					if status != http.StatusForbidden {
						fail("want Latchkey's 403 for %s%s", tc.site, tc.path)
					}
				}
				if status == http.StatusOK && body != "" {
					fail("200 with a body, yet no upstream saw the request")
				}
				return
			}
			// Something was served: it must be the site and path the request names, and the
			// rules must open them.
			if tc.want == wantDeny403 || tc.want == wantRefuse {
				fail("want nothing served")
			}
			if len(got) != 1 || len(echoes[tc.site].Requests()) != 1 {
				fail("want exactly one request, at %s", tc.site)
			}
			r := echoes[tc.site].Requests()[0]
			rawPath, _, _ := strings.Cut(r.URI, "?")
			p, err := proxy.NormalizePath(rawPath)
			if err != nil || p != tc.path {
				fail("the upstream was sent %q, which is %q (%v), not the path judged, %q", r.URI, p, err, tc.path)
			}
			if exactPath && rawPath != tc.path {
				fail("the upstream was sent %q, not the normalised path %q", r.URI, tc.path)
			}
			if siteName(r.Host) != tc.site+".example.com" {
				fail("the upstream got Host %q, not %s.example.com", r.Host, tc.site)
			}
			if status != http.StatusOK {
				fail("status %d", status)
			}
			served++
		})
	}
	if served < 5 {
		t.Errorf("only %d variants were served at all: the table is not testing anything", served)
	}
}

// TestHostPathIdentityNginx runs the table through a real nginx with the shipped files.
func TestHostPathIdentityNginx(t *testing.T) {
	lktest.NeedBinary(t, "nginx", "nginx")
	port := lktest.FreePort(t)
	app, pub := lktest.NewEcho(t), lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: identityRules("1")})
	p := lktest.StartNginx(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: app.Addr(),
		Sites: []lktest.ProxySite{{Name: "public.example.com", App: pub.Addr()}}})
	runIdentityTable(t, "127.0.0.1:"+strconv.Itoa(port), map[string]*lktest.Echo{"app": app, "public": pub}, nil, false, p.Logs)
}

// TestHostPathIdentityCaddy runs the table through a real Caddy with the shipped Caddyfile.
func TestHostPathIdentityCaddy(t *testing.T) {
	lktest.NeedBinary(t, "caddy", "caddy")
	port := lktest.FreePort(t)
	app, pub := lktest.NewEcho(t), lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: identityRules("1")})
	p := lktest.StartCaddy(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: app.Addr(),
		Sites: []lktest.ProxySite{{Name: "public.example.com", App: pub.Addr()}}})
	runIdentityTable(t, "127.0.0.1:"+strconv.Itoa(port), map[string]*lktest.Echo{"app": app, "public": pub}, nil, false, p.Logs)
}

// TestHostPathIdentityReverseProxy runs the table through Latchkey's own reverse proxy. It
// routes and judges on the one Host the request names, port included (Latchkey has a single
// listener), so the trap rule, which a request naming port 1 would rightly reach, is left out
// here: the trap rows then check that a port-less rule covers every port.
// TestReverseProxyPortRoutes covers routes and rules with ports.
func TestHostPathIdentityReverseProxy(t *testing.T) {
	app, pub := lktest.NewEcho(t), lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: identityRules(""),
		Routes: map[string]string{"app.example.com": app.Server.URL, "public.example.com": pub.Server.URL}})
	runIdentityTable(t, env.Server.Listener.Addr().String(), map[string]*lktest.Echo{"app": app, "public": pub}, nil, true, env.Logs.String)
}

// TestReverseProxyPortRoutes: a route and a rule naming a port serve and judge that port only;
// ones without a port cover the host on every other port, so no port falls to the default
// policy or to nowhere.
func TestReverseProxyPortRoutes(t *testing.T) {
	plain, ported := lktest.NewEcho(t), lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{
			{Hosts: []string{"app.example.com:8443"}, Policy: "bypass"},
			{Hosts: []string{"app.example.com"}, Paths: []string{"^/open/"}, Policy: "bypass"},
			{Hosts: []string{"app.example.com"}, Policy: "passkey"},
		},
		Routes: map[string]string{"app.example.com": plain.Server.URL, "app.example.com:8443": ported.Server.URL}})
	addr := env.Server.Listener.Addr().String()
	for _, tc := range []struct {
		host   string
		uri    string
		status int
		echo   *lktest.Echo
	}{
		{"app.example.com:8443", "/x", http.StatusOK, ported},
		{"APP.example.com.:08443", "/x", http.StatusOK, ported},
		{"app.example.com", "/x", http.StatusUnauthorized, nil},
		{"app.example.com:9000", "/x", http.StatusUnauthorized, nil},
		{"app.example.com:9000", "/open/x", http.StatusOK, plain},
		{"app.example.com", "/open/x", http.StatusOK, plain},
	} {
		t.Run(tc.host+tc.uri, func(t *testing.T) {
			plain.Reset()
			ported.Reset()
			status, body := rawExchange(t, addr, "GET "+tc.uri+" HTTP/1.1\r\nHost: "+tc.host+"\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
			if status != tc.status {
				t.Fatalf("status %d, want %d\n%s", status, tc.status, body)
			}
			for _, e := range []*lktest.Echo{plain, ported} {
				n := len(e.Requests())
				if (e == tc.echo) != (n == 1) || n > 1 {
					t.Fatalf("plain saw %d, ported saw %d requests", len(plain.Requests()), len(ported.Requests()))
				}
			}
		})
	}
}

// TestNginxDefaultServerJudgedAsItsName: nginx serves a request for a host that no server_name
// names from the default server of the port (the first block listening there). When that is a
// protected block, Latchkey must judge the block's own name, not the host the client named:
// here the only block on the second port is solo.example.com, whose rule denies everything,
// and requests naming the open public.example.com or app.example.com must not get through.
func TestNginxDefaultServerJudgedAsItsName(t *testing.T) {
	lktest.NeedBinary(t, "nginx", "nginx")
	port, soloPort := lktest.FreePort(t), lktest.FreePort(t)
	app, solo := lktest.NewEcho(t), lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"solo.example.com"}, Policy: "deny"},
		{Hosts: []string{"app.example.com", "public.example.com"}, Policy: "bypass"},
	}})
	p := lktest.StartNginx(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: app.Addr(),
		Sites: []lktest.ProxySite{{Name: "solo.example.com", App: solo.Addr(), Port: soloPort}}})
	sp := strconv.Itoa(soloPort)
	for _, req := range []string{
		"GET /x HTTP/1.1\r\nHost: public.example.com:" + sp,
		"GET /x HTTP/1.1\r\nHost: app.example.com:" + sp,
		"GET /x HTTP/1.1\r\nHost: solo.example.com:" + sp,
		"GET http://public.example.com:" + sp + "/x HTTP/1.1\r\nHost: public.example.com",
		"GET /x HTTP/1.0",
	} {
		t.Run(req, func(t *testing.T) {
			app.Reset()
			solo.Reset()
			status, body := rawExchange(t, "127.0.0.1:"+sp, req+"\r\nConnection: close\r\n\r\n")
			if status != http.StatusForbidden || len(solo.Requests()) != 0 || len(app.Requests()) != 0 {
				t.Fatalf("status %d, solo saw %d, app saw %d requests, want Latchkey's 403 for solo.example.com\n%.300s\n%s",
					status, len(solo.Requests()), len(app.Requests()), body, p.Logs())
			}
		})
	}
	// The app block on the first port is still judged as itself.
	if status, _ := rawExchange(t, "127.0.0.1:"+strconv.Itoa(port), "GET /x HTTP/1.1\r\nHost: app.example.com:"+strconv.Itoa(port)+"\r\nConnection: close\r\n\r\n"); status != http.StatusOK || len(app.Requests()) != 1 {
		t.Fatalf("app.example.com: %d, app saw %d requests", status, len(app.Requests()))
	}
}
