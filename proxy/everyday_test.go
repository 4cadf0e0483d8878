package proxy_test

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// TestReverseProxyVaryCookie: a response to a signed-in request gets Vary: Cookie unless the
// application set its own caching headers, so a shared cache never serves one user's page to
// another; a signed-out (bypass) response is left alone.
func TestReverseProxyVaryCookie(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/vary":
			w.Header().Set("Vary", "Accept-Encoding")
		case "/vary-cookie":
			w.Header().Set("Vary", "accept-encoding, cookie")
		}
		w.Write([]byte("page of " + r.Header.Get("Remote-User")))
	}))
	t.Cleanup(up.Close)
	env := lktest.New(t, lktest.Config{
		DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{{Hosts: []string{"app.example.com"}, Paths: []string{"^/open/"}, Policy: "bypass"},
			{Hosts: []string{"app.example.com"}, Policy: "passkey"}},
		Routes: map[string]string{"app.example.com": up.URL},
	})
	cookie, _ := signIn(t, env, "alice")
	c := env.Client()
	for _, tc := range []struct {
		path, cookie string
		want         []string
	}{
		{"/page", cookie, []string{"Cookie"}},
		{"/private", cookie, nil},
		{"/vary", cookie, []string{"Accept-Encoding", "Cookie"}},
		{"/vary-cookie", cookie, []string{"accept-encoding, cookie"}},
		{"/open/x", "", nil},
		{"/open/x", cookie, []string{"Cookie"}}, // a bypass path seen by a signed-in user is personal too
	} {
		hdr := http.Header{}
		if tc.cookie != "" {
			hdr.Set("Cookie", tc.cookie)
		}
		r := c.Do(http.MethodGet, "app.example.com", tc.path, nil, hdr)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, r.StatusCode, r.Body)
		}
		if got := r.Header.Values("Vary"); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s (signed in %v): Vary %q, want %q", tc.path, tc.cookie != "", got, tc.want)
		}
	}
}

// TestUpstreamErrorPageNamesTheApplication: the 502 page says which application is down and,
// to a signed-in person, offers their account on the portal rather than "Sign in".
func TestUpstreamErrorPageNamesTheApplication(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	env := lktest.New(t, lktest.Config{
		DefaultPolicy: "deny",
		Rules:         []proxy.RuleConfig{{Hosts: []string{"grafana.example.com"}, Policy: "passkey"}},
		Routes:        map[string]string{"grafana.example.com": dead},
	})
	cookie, _ := signIn(t, env, "alice")
	r := env.Client().Do(http.MethodGet, "grafana.example.com", "/d/1", nil, http.Header{"Cookie": {cookie}, "Accept": {"text/html"}})
	if r.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", r.StatusCode)
	}
	for _, want := range []string{"grafana.example.com is not answering", "Signed in as <strong>alice</strong>", `href="` + env.Origin() + `/.latchkey/account"`} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("the 502 page lacks %q:\n%s", want, r.Body)
		}
	}
	if bytes.Contains(r.Body, []byte(">Sign in<")) {
		t.Error("a signed-in person is offered Sign in")
	}
}
