package e2e

import (
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// appPage is the protected application behind Nginx: it shows the identity headers and the
// cookies it received, like the demo upstream does.
var appPage = template.Must(template.New("app").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>App</title></head><body><h1>Dashboard for <span id="remote-user">{{.User}}</span></h1>
<p>Groups: <span id="remote-groups">{{.Groups}}</span></p><p>Cookie header: <code id="cookies">{{.Cookies}}</code></p></body></html>`))

// TestForwardAuthNginx runs flows 1 and 3 through a real Nginx with the auth_request snippets
// that deploy/nginx ships: the portal is auth.example.com and the protected application
// app.example.com (both resolved to 127.0.0.1 by the browser), one session cookie for the
// parent domain, and the application sees Remote-User but never the session cookie.
func TestForwardAuthNginx(t *testing.T) {
	needBrowser(t)
	lktest.NeedBinary(t, "nginx", "nginx")
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		appPage.Execute(w, map[string]string{"User": r.Header.Get("Remote-User"),
			"Groups": r.Header.Get("Remote-Groups"), "Cookies": r.Header.Get("Cookie")})
	}))
	t.Cleanup(app.Close)

	port := suite.nginxApp // declared a secure origin in the browser's flags
	lkPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	appHost := "app.example.com:" + strconv.Itoa(port)
	srv := startServer(t, serverConfig{
		port:   lkPort,
		public: "http://auth.example.com:" + strconv.Itoa(port),
		yaml: fmt.Sprintf(`session:
  cookie_domain: example.com
access_control:
  default_policy: deny
  rules:
    - hosts: [%q]
      policy: passkey
`, appHost),
	})
	lktest.StartNginx(t, lktest.ProxyConfig{Port: port, Latchkey: "127.0.0.1:" + strconv.Itoa(lkPort), App: app.Listener.Addr().String()})

	tb := newTab(t, tabOptions{})
	auth := enrol(t, tb, srv)
	creds := tb.credentials(auth)
	tb.removeAuthenticator(auth)

	tb2 := newTab(t, tabOptions{})
	a := tb2.addAuthenticator(authOptions{})
	want := "http://" + appHost + "/dashboards/7?panel=2&from=now-6h"
	tb2.navigate(want)
	tb2.waitURL(srv.URL + "/.latchkey/login?")
	tb2.waitConditionalSettled()
	tb2.shot("login")
	tb2.addCredentials(a, creds)
	tb2.click("passkey-login")
	tb2.waitURL(want)
	if got := tb2.text("remote-user"); got != "admin" {
		t.Errorf("application saw Remote-User %q, want admin", got)
	}
	if got := tb2.text("remote-groups"); got != "admins" {
		t.Errorf("application saw Remote-Groups %q, want admins", got)
	}
	if got := tb2.text("cookies"); strings.Contains(got, "latchkey_session") {
		t.Errorf("the application received the session cookie: %q", got)
	}
	tb2.shot("app")
}
