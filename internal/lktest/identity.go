package lktest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// What a host or path variant must lead to, through a real proxy with the shipped files.
const (
	WantServe   = "serve"   // 200, and exactly the intended site's upstream got it, at the intended path
	WantDeny403 = "deny403" // Latchkey's deny rule answered: 403, and no upstream got anything
	WantRefuse  = "refuse"  // no upstream got anything (the proxy or Latchkey refused it somehow)
	WantMaybe   = "maybe"   // refused, or served as for serve; never served anywhere else
)

// IdentityCase is one host or path variant (issue 16): the site that serves it and the rule
// Latchkey applies must agree.
type IdentityCase struct {
	Name string
	// Raw is the request head without the final blank line; "{P}" is the port the proxy
	// listens on. "Connection: close" is added by the caller.
	Raw  string
	Want string
	Site string // app or public: the site the request names (request line before Host)
	Path string // the normalised path it names
}

// IdentitySites names the two protected sites under example.com (the first label of each), and
// the spellings of the app's label that look like it but are other names (percent-encoded,
// Unicode look-alike, its punycode).
type IdentitySites struct {
	App, Public                         string
	AppPercent, AppUnicode, AppPunycode string
}

// IdentityCases is the table of host and path variants that the nginx, Caddy, reverse-proxy and
// Traefik tests all run: app's ^/admin/ is denied, public is open.
func IdentityCases(s IdentitySites) []IdentityCase {
	app, pub := "{APP}.example.com:{P}", "{PUB}.example.com:{P}"
	get := func(uri, host string) string { return "GET " + uri + " HTTP/1.1\r\nHost: " + host }
	cases := []IdentityCase{
		// Host identity.
		{"app open path", get("/x", app), WantServe, "app", "/x"},
		{"app admin denied", get("/admin/x", app), WantDeny403, "app", "/admin/x"},
		{"public admin open", get("/admin/x", pub), WantServe, "public", "/admin/x"},
		{"host letter case", get("/admin/x", "{APPUP}.Example.COM:{P}"), WantDeny403, "app", "/admin/x"},
		{"host letter case open path", get("/x", "{APPUP}.Example.COM:{P}"), WantServe, "app", "/x"},
		{"host trailing dot", get("/admin/x", "{APP}.example.com.:{P}"), WantRefuse, "app", "/admin/x"},
		{"host trailing dot open path", get("/x", "{APP}.example.com.:{P}"), WantMaybe, "app", "/x"},
		{"host without port", get("/admin/x", "{APP}.example.com"), WantDeny403, "app", "/admin/x"},
		{"host with another port (trap rule)", get("/admin/x", "{APP}.example.com:1"), WantDeny403, "app", "/admin/x"},
		{"host with port and leading zero", get("/admin/x", "{APP}.example.com:0{P}"), WantRefuse, "app", "/admin/x"},
		{"public with another port", get("/admin/x", "{PUB}.example.com:1"), WantServe, "public", "/admin/x"},
		{"absolute URI with another port (trap rule)", get("http://{APP}.example.com:1/admin/x", pub), WantDeny403, "app", "/admin/x"},
		{"client X-Forwarded-Port (trap rule)", get("/admin/x", app) + "\r\nX-Forwarded-Port: 1", WantDeny403, "app", "/admin/x"},
		{"client X-Forwarded-Host", get("/admin/x", app) + "\r\nX-Forwarded-Host: {PUB}.example.com:{P}", WantDeny403, "app", "/admin/x"},
		{"client X-Original-URL", get("/admin/x", app) + "\r\nX-Original-URL: http://{PUB}.example.com:{P}/admin/x", WantRefuse, "app", "/admin/x"},
		{"absolute URI names app, Host names public", get("http://{APP}.example.com:{P}/admin/x", pub), WantDeny403, "app", "/admin/x"},
		{"absolute URI names public, Host names app", get("http://{PUB}.example.com:{P}/admin/x", app), WantServe, "public", "/admin/x"},
		{"absolute URI without port", get("http://{APP}.example.com/admin/x", pub), WantDeny403, "app", "/admin/x"},
		{"absolute URI upper case", get("http://{APPUP}.example.com:{P}/admin/x", pub), WantDeny403, "app", "/admin/x"},
		{"absolute URI trailing dot", get("http://{APP}.example.com.:{P}/admin/x", pub), WantRefuse, "app", "/admin/x"},
		{"absolute URI https on plain port", get("https://{APP}.example.com:{P}/admin/x", pub), WantRefuse, "app", "/admin/x"},
		{"absolute URI with userinfo", get("http://{PUB}.example.com@{APP}.example.com:{P}/admin/x", pub), WantRefuse, "app", "/admin/x"},
		{"two Host headers", get("/admin/x", pub) + "\r\nHost: " + app, WantRefuse, "app", "/admin/x"},
		{"two Host headers, app first", get("/admin/x", app) + "\r\nHost: " + pub, WantRefuse, "app", "/admin/x"},
		{"Host list", get("/admin/x", pub+", "+app), WantRefuse, "app", "/admin/x"},
		{"no Host, HTTP/1.1", "GET /admin/x HTTP/1.1", WantRefuse, "app", "/admin/x"},
		{"no Host, HTTP/1.0", "GET /admin/x HTTP/1.0", WantRefuse, "app", "/admin/x"},
		{"percent-encoded host", get("/admin/x", "{APP%}.example.com:{P}"), WantRefuse, "app", "/admin/x"},
		{"unicode host", get("/admin/x", "{APPU}.example.com:{P}"), WantRefuse, "app", "/admin/x"},
		{"punycode host", get("/admin/x", "{APPX}.example.com:{P}"), WantRefuse, "app", "/admin/x"},
		{"userinfo in Host", get("/admin/x", "{PUB}.example.com@{APP}.example.com:{P}"), WantRefuse, "app", "/admin/x"},
		{"IP literal host", get("/admin/x", "127.0.0.1:{P}"), WantRefuse, "app", "/admin/x"},

		// Path identity: every spelling of the directory /admin/ is the directory.
		{"directory itself", get("/admin/", app), WantDeny403, "app", "/admin/"},
		{"directory without slash is another path", get("/admin", app), WantServe, "app", "/admin"},
		{"double slash first", get("//admin/", app), WantDeny403, "app", "/admin/"},
		{"dot segment first", get("/./admin/", app), WantDeny403, "app", "/admin/"},
		{"parent segment first", get("/x/../admin/", app), WantDeny403, "app", "/admin/"},
		{"encoded letter", get("/%61dmin/", app), WantDeny403, "app", "/admin/"},
		{"encoded letters upper hex", get("/%41%44MIN/", app), WantServe, "app", "/ADMIN/"},
		{"double slash inside", get("/admin//x", app), WantDeny403, "app", "/admin/x"},
		{"trailing double slash", get("/admin//", app), WantDeny403, "app", "/admin/"},
		{"parent of a child", get("/admin/x/..", app), WantDeny403, "app", "/admin/"},
		{"encoded dot segment", get("/admin/%2e/", app), WantDeny403, "app", "/admin/"},
		{"encoded parent segment", get("/x/%2e%2e/admin/", app), WantDeny403, "app", "/admin/"},
		{"mixed encoded parent", get("/admin/.%2e/admin/", app), WantDeny403, "app", "/admin/"},
		{"above the root", get("/../admin/", app), WantMaybe, "app", "/admin/"},
		{"query is not path", get("/admin/?next=/x", app), WantDeny403, "app", "/admin/"},
		{"path in query", get("/x?/admin/", app), WantServe, "app", "/x"},
		{"letter case is another path", get("/ADMIN/", app), WantServe, "app", "/ADMIN/"},
		{"encoded slash", get("/admin%2Fx", app), WantRefuse, "app", "/admin/x"},
		{"encoded slash after parent", get("/x/..%2fadmin/", app), WantRefuse, "app", "/admin/"},
		{"path parameter", get("/admin;x/", app), WantRefuse, "app", "/admin/"},
		{"backslash", get("/admin\\x/", app), WantRefuse, "app", "/admin/"},
		{"encoded backslash", get("/admin%5Cx/", app), WantRefuse, "app", "/admin/"},
		{"encoded NUL", get("/admin/%00", app), WantRefuse, "app", "/admin/"},
		{"double encoding", get("/%2561dmin/", app), WantRefuse, "app", "/admin/"},
	}
	r := strings.NewReplacer("{APP%}", s.AppPercent, "{APPU}", s.AppUnicode, "{APPX}", s.AppPunycode,
		"{APPUP}", strings.ToUpper(s.App), "{APP}", s.App, "{PUB}", s.Public)
	for i := range cases {
		cases[i].Raw = r.Replace(cases[i].Raw)
	}
	return cases
}

// RawExchange writes req on a new connection to addr and reads one response. Status 0 means
// the server closed the connection without answering (nginx's 444).
func RawExchange(t testing.TB, addr, req string) (int, string) {
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

// SiteName is the host name of a Host header as a server compares it.
func SiteName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
