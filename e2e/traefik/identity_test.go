package traefiktest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// Issue 16: what the proxy serves and what Latchkey judges must be the same site and the same
// path, for every way a client can write them. TestHostPathIdentity sends the table that the
// nginx, Caddy and reverse-proxy runs use (lktest.IdentityCases) as raw
// requests through real Traefik with the shipped files, the sites being the shipped routers:
// whoami.example.com (from the compose labels) and nas.example.com (dynamic/latchkey.yml).
//
// The rules make the outcome depend on the rule applied: /admin/ on whoami is denied,
// everything else on it and everything on nas is open (bypass), and a trap rule opens whoami on
// a port nobody listens on (1), which only a request judged on a port the client wrote into Host
// could reach.

// traefikDiffers are the rows where real Traefik v3.7.13 does what nginx and Caddy do not, with
// what it does (asserted, so that a change in Traefik shows) and why deploy/traefik/README.md
// tells users so.
var traefikDiffers = map[string]struct {
	want, path, why string
}{
	// Traefik routes on the host name alone and reports the port the client wrote in Host (or in
	// an absolute request line) as X-Forwarded-Port: a rule host with a port is reachable through
	// any entry point by writing that port. Hence: no ports in rule hosts behind Traefik.
	"host with another port (trap rule)":         {lktest.WantServe, "/admin/x", "Traefik reports the client's port"},
	"absolute URI with another port (trap rule)": {lktest.WantServe, "/admin/x", "Traefik reports the client's port"},
	// Traefik's sanitizePath (path.Clean) turns /admin/x/.. into /admin, without the slash, and
	// both serves and reports that: the judged and the served path agree, but a rule written
	// ^/admin/ does not cover it. Hence: ^/admin(/|$) for a directory behind Traefik.
	"parent of a child": {lktest.WantServe, "/admin", "Traefik's sanitizePath drops the directory's slash"},
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
	for _, tc := range lktest.IdentityCases(lktest.IdentitySites{App: "whoami", Public: "nas", AppPercent: "%77hoami", AppUnicode: "wh\u043eami", AppPunycode: "xn--whami-kye"}) {
		if d, ok := traefikDiffers[tc.Name]; ok {
			tc.Want, tc.Path = d.want, d.path
			differ++
		}
		t.Run(tc.Name, func(t *testing.T) {
			for _, a := range apps {
				a.reset()
			}
			req := strings.ReplaceAll(tc.Raw, "{P}", strconv.Itoa(port)) + "\r\nConnection: close\r\n\r\n"
			status, body := lktest.RawExchange(t, "127.0.0.1:"+strconv.Itoa(port), req)
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
				switch tc.Want {
				case lktest.WantServe:
					fail("want it served by %s at %s", sites[tc.Site], tc.Path)
				case lktest.WantDeny403:
					if status != http.StatusForbidden {
						fail("want Latchkey's 403 for %s%s", sites[tc.Site], tc.Path)
					}
				}
				return
			}
			// Something was served: it must be the site and path the request names, and the
			// rules must open them.
			if tc.Want == lktest.WantDeny403 || tc.Want == lktest.WantRefuse {
				fail("want nothing served")
			}
			if len(got) != 1 || len(apps[tc.Site].requests()) != 1 {
				fail("want exactly one request, at %s", sites[tc.Site])
			}
			r := apps[tc.Site].requests()[0]
			rawPath, _, _ := strings.Cut(r.URI, "?")
			if p, err := proxy.NormalizePath(rawPath); err != nil || p != tc.Path {
				fail("the application was sent %q, which is %q (%v), not the path judged, %q", r.URI, p, err, tc.Path)
			}
			if lktest.SiteName(r.Host) != sites[tc.Site] {
				fail("the application got Host %q, not %s", r.Host, sites[tc.Site])
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
