package traefiktest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/proxy"
)

// Issue 16: what the proxy serves and what Latchkey judges must be the same site and the same
// path, for every way a client can write them. TestHostPathIdentity sends the table of
// proxy/identity_integration_test.go (the nginx and Caddy runs; keep the two in step) as raw
// requests through real Traefik with the shipped files, the sites being the shipped routers:
// whoami.example.com (from the compose labels) and nas.example.com (dynamic/latchkey.yml).
//
// The rules make the outcome depend on the rule applied: /admin/ on whoami is denied,
// everything else on it and everything on nas is open (bypass), and a trap rule opens whoami on
// a port nobody listens on (1), which only a request judged on a port the client wrote into Host
// could reach.

// What a variant must lead to.
const (
	wantServe   = "serve"   // 200, and exactly the intended site's application got it, at the intended path
	wantDeny403 = "deny403" // Latchkey's deny rule answered: 403, and no application got anything
	wantRefuse  = "refuse"  // no application got anything (Traefik or Latchkey refused it somehow)
	wantMaybe   = "maybe"   // refused, or served as for serve; never served anywhere else
)

type identityCase struct {
	name string
	// raw is the request head without the final blank line; "{P}" is the port Traefik listens
	// on. "Connection: close" is added.
	raw  string
	want string
	site string // app (whoami) or public (nas): the site the request names
	path string // the normalised path it names
}

// identityCases is proxy/identity_integration_test.go's table with the shipped router names.
func identityCases() []identityCase {
	const (
		app = "whoami.example.com:{P}"
		pub = "nas.example.com:{P}"
	)
	get := func(uri, host string) string { return "GET " + uri + " HTTP/1.1\r\nHost: " + host }
	return []identityCase{
		// Host identity.
		{"app open path", get("/x", app), wantServe, "app", "/x"},
		{"app admin denied", get("/admin/x", app), wantDeny403, "app", "/admin/x"},
		{"public admin open", get("/admin/x", pub), wantServe, "public", "/admin/x"},
		{"host letter case", get("/admin/x", "WHOAMI.Example.COM:{P}"), wantDeny403, "app", "/admin/x"},
		{"host letter case open path", get("/x", "WHOAMI.Example.COM:{P}"), wantServe, "app", "/x"},
		{"host trailing dot", get("/admin/x", "whoami.example.com.:{P}"), wantRefuse, "app", "/admin/x"},
		{"host trailing dot open path", get("/x", "whoami.example.com.:{P}"), wantMaybe, "app", "/x"},
		{"host without port", get("/admin/x", "whoami.example.com"), wantDeny403, "app", "/admin/x"},
		{"host with another port (trap rule)", get("/admin/x", "whoami.example.com:1"), wantDeny403, "app", "/admin/x"},
		{"host with port and leading zero", get("/admin/x", "whoami.example.com:0{P}"), wantRefuse, "app", "/admin/x"},
		{"public with another port", get("/admin/x", "nas.example.com:1"), wantServe, "public", "/admin/x"},
		{"absolute URI with another port (trap rule)", get("http://whoami.example.com:1/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"client X-Forwarded-Port (trap rule)", get("/admin/x", app) + "\r\nX-Forwarded-Port: 1", wantDeny403, "app", "/admin/x"},
		{"client X-Forwarded-Host", get("/admin/x", app) + "\r\nX-Forwarded-Host: nas.example.com:{P}", wantDeny403, "app", "/admin/x"},
		{"client X-Original-URL", get("/admin/x", app) + "\r\nX-Original-URL: http://nas.example.com:{P}/admin/x", wantRefuse, "app", "/admin/x"},
		{"absolute URI names app, Host names public", get("http://whoami.example.com:{P}/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"absolute URI names public, Host names app", get("http://nas.example.com:{P}/admin/x", app), wantServe, "public", "/admin/x"},
		{"absolute URI without port", get("http://whoami.example.com/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"absolute URI upper case", get("http://WHOAMI.example.com:{P}/admin/x", pub), wantDeny403, "app", "/admin/x"},
		{"absolute URI trailing dot", get("http://whoami.example.com.:{P}/admin/x", pub), wantRefuse, "app", "/admin/x"},
		{"absolute URI https on plain port", get("https://whoami.example.com:{P}/admin/x", pub), wantRefuse, "app", "/admin/x"},
		{"absolute URI with userinfo", get("http://nas.example.com@whoami.example.com:{P}/admin/x", pub), wantRefuse, "app", "/admin/x"},
		{"two Host headers", get("/admin/x", pub) + "\r\nHost: " + app, wantRefuse, "app", "/admin/x"},
		{"two Host headers, app first", get("/admin/x", app) + "\r\nHost: " + pub, wantRefuse, "app", "/admin/x"},
		{"Host list", get("/admin/x", pub+", "+app), wantRefuse, "app", "/admin/x"},
		{"no Host, HTTP/1.1", "GET /admin/x HTTP/1.1", wantRefuse, "app", "/admin/x"},
		{"no Host, HTTP/1.0", "GET /admin/x HTTP/1.0", wantRefuse, "app", "/admin/x"},
		{"percent-encoded host", get("/admin/x", "%77hoami.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"unicode host", get("/admin/x", "wh\u043eami.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"punycode host", get("/admin/x", "xn--whami-kye.example.com:{P}"), wantRefuse, "app", "/admin/x"},
		{"userinfo in Host", get("/admin/x", "nas.example.com@whoami.example.com:{P}"), wantRefuse, "app", "/admin/x"},
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

// traefikDiffers are the rows where real Traefik v3.7.13 does what nginx and Caddy do not, with
// what it does (asserted, so that a change in Traefik shows) and why deploy/traefik/README.md
// tells users so.
var traefikDiffers = map[string]struct {
	want, path, why string
}{
	// Traefik routes on the host name alone and reports the port the client wrote in Host (or in
	// an absolute request line) as X-Forwarded-Port: a rule host with a port is reachable through
	// any entry point by writing that port. Hence: no ports in rule hosts behind Traefik.
	"host with another port (trap rule)":         {wantServe, "/admin/x", "Traefik reports the client's port"},
	"absolute URI with another port (trap rule)": {wantServe, "/admin/x", "Traefik reports the client's port"},
	// Traefik's sanitizePath (path.Clean) turns /admin/x/.. into /admin, without the slash, and
	// both serves and reports that: the judged and the served path agree, but a rule written
	// ^/admin/ does not cover it. Hence: ^/admin(/|$) for a directory behind Traefik.
	"parent of a child": {wantServe, "/admin", "Traefik's sanitizePath drops the directory's slash"},
}

// identityRules are the rules described above.
func identityRules() []map[string]any {
	return []map[string]any{
		{"hosts": []string{"whoami.example.com:1"}, "policy": "bypass"},
		{"hosts": []string{"whoami.example.com"}, "paths": []string{"^/admin/"}, "policy": "deny"},
		{"hosts": []string{"whoami.example.com"}, "policy": "bypass"},
		{"hosts": []string{"nas.example.com"}, "policy": "bypass"},
	}
}

// rawExchange writes req on a new connection to addr and reads one response. Status 0 means
// the server closed the connection without answering.
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

// TestHostPathIdentity runs the table through real Traefik with the shipped files.
func TestHostPathIdentity(t *testing.T) {
	needSuite(t)
	port := reservePort(t)
	public, _ := url.Parse("http://auth.example.com:" + strconv.Itoa(port))
	apps := map[string]*app{"app": newApp(t), "public": newApp(t)}
	lk := startLatchkeyWith(t, public, identityRules())
	startTraefik(t, traefikConfig{Name: "identity", Port: port, Latchkey: lk.Addr,
		Apps: map[string]string{"latchkey": lk.Addr, "whoami": apps["app"].addr(), "nas": apps["public"].addr()}})
	sites := map[string]string{"app": "whoami.example.com", "public": "nas.example.com"}
	served := 0
	differ := 0
	for _, tc := range identityCases() {
		if d, ok := traefikDiffers[tc.name]; ok {
			tc.want, tc.path = d.want, d.path
			differ++
		}
		t.Run(tc.name, func(t *testing.T) {
			for _, a := range apps {
				a.reset()
			}
			req := strings.ReplaceAll(tc.raw, "{P}", strconv.Itoa(port)) + "\r\nConnection: close\r\n\r\n"
			status, body := rawExchange(t, "127.0.0.1:"+strconv.Itoa(port), req)
			var got []string
			for name, a := range apps {
				for _, r := range a.requests() {
					got = append(got, name+" "+r.Host+" "+r.URI)
				}
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("%q: "+format+"\nstatus %d, applications saw %q\nbody: %.300s",
					append([]any{req}, append(args, status, got, body)...)...)
			}
			if len(got) == 0 {
				switch tc.want {
				case wantServe:
					fail("want it served by %s at %s", sites[tc.site], tc.path)
				case wantDeny403:
					if status != http.StatusForbidden {
						fail("want Latchkey's 403 for %s%s", sites[tc.site], tc.path)
					}
				}
				return
			}
			// Something was served: it must be the site and path the request names, and the
			// rules must open them.
			if tc.want == wantDeny403 || tc.want == wantRefuse {
				fail("want nothing served")
			}
			if len(got) != 1 || len(apps[tc.site].requests()) != 1 {
				fail("want exactly one request, at %s", sites[tc.site])
			}
			r := apps[tc.site].requests()[0]
			rawPath, _, _ := strings.Cut(r.URI, "?")
			if p, err := proxy.NormalizePath(rawPath); err != nil || p != tc.path {
				fail("the application was sent %q, which is %q (%v), not the path judged, %q", r.URI, p, err, tc.path)
			}
			if siteName(r.Host) != sites[tc.site] {
				fail("the application got Host %q, not %s", r.Host, sites[tc.site])
			}
			if status != http.StatusOK {
				fail("status %d", status)
			}
			served++
		})
	}
	if differ != len(traefikDiffers) {
		t.Errorf("traefikDiffers names %d rows of which %d are in the table", len(traefikDiffers), differ)
	}
	if served < 5 {
		t.Errorf("only %d variants were served at all: the table is not testing anything", served)
	}
}
