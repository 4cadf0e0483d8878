package proxy_test

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

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

// runIdentityTable sends every case to addr and checks what the upstreams saw.
// With exactPath, the upstream must receive the normalised path itself (Latchkey's own reverse
// proxy sends it); otherwise the path it receives must normalise to the judged one.
func runIdentityTable(t *testing.T, addr string, echoes map[string]*lktest.Echo, skip map[string]string, exactPath bool, logs func() string) {
	_, port, _ := net.SplitHostPort(addr)
	served := 0
	for _, tc := range lktest.IdentityCases(lktest.IdentitySites{App: "app", Public: "public", AppPercent: "%61pp", AppUnicode: "\u0430pp", AppPunycode: "xn--pp-8kc"}) {
		t.Run(tc.Name, func(t *testing.T) {
			if why, ok := skip[tc.Name]; ok {
				t.Skip(why)
			}
			for _, e := range echoes {
				e.Reset()
			}
			req := strings.ReplaceAll(tc.Raw, "{P}", port) + "\r\nConnection: close\r\n\r\n"
			status, body := lktest.RawExchange(t, addr, req)
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
				switch tc.Want {
				case lktest.WantServe:
					fail("want it served by %s at %s", tc.Site, tc.Path)
				case lktest.WantDeny403:
					if status != http.StatusForbidden {
						fail("want Latchkey's 403 for %s%s", tc.Site, tc.Path)
					}
				}
				if status == http.StatusOK && body != "" {
					fail("200 with a body, yet no upstream saw the request")
				}
				return
			}
			// Something was served: it must be the site and path the request names, and the
			// rules must open them.
			if tc.Want == lktest.WantDeny403 || tc.Want == lktest.WantRefuse {
				fail("want nothing served")
			}
			if len(got) != 1 || len(echoes[tc.Site].Requests()) != 1 {
				fail("want exactly one request, at %s", tc.Site)
			}
			r := echoes[tc.Site].Requests()[0]
			rawPath, _, _ := strings.Cut(r.URI, "?")
			p, err := proxy.NormalizePath(rawPath)
			if err != nil || p != tc.Path {
				fail("the upstream was sent %q, which is %q (%v), not the path judged, %q", r.URI, p, err, tc.Path)
			}
			if exactPath && rawPath != tc.Path {
				fail("the upstream was sent %q, not the normalised path %q", r.URI, tc.Path)
			}
			if lktest.SiteName(r.Host) != tc.Site+".example.com" {
				fail("the upstream got Host %q, not %s.example.com", r.Host, tc.Site)
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
			status, body := lktest.RawExchange(t, addr, "GET "+tc.uri+" HTTP/1.1\r\nHost: "+tc.host+"\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
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
			status, body := lktest.RawExchange(t, "127.0.0.1:"+sp, req+"\r\nConnection: close\r\n\r\n")
			if status != http.StatusForbidden || len(solo.Requests()) != 0 || len(app.Requests()) != 0 {
				t.Fatalf("status %d, solo saw %d, app saw %d requests, want Latchkey's 403 for solo.example.com\n%.300s\n%s",
					status, len(solo.Requests()), len(app.Requests()), body, p.Logs())
			}
		})
	}
	// The app block on the first port is still judged as itself.
	if status, _ := lktest.RawExchange(t, "127.0.0.1:"+strconv.Itoa(port), "GET /x HTTP/1.1\r\nHost: app.example.com:"+strconv.Itoa(port)+"\r\nConnection: close\r\n\r\n"); status != http.StatusOK || len(app.Requests()) != 1 {
		t.Fatalf("app.example.com: %d, app saw %d requests", status, len(app.Requests()))
	}
}
