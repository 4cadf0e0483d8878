package proxy_test

import (
	"bytes"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

var i18nTitle = regexp.MustCompile(`<title>([^<]*) · `)

// wantPage checks that an error page is in lang with the given title and message.
func wantPage(t *testing.T, r *lktest.Response, status int, lang, title, msg string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.Body)
	}
	if !bytes.Contains(r.Body, []byte(`<html lang="`+lang+`">`)) {
		t.Errorf("page not in %s:\n%s", lang, r.Body)
	}
	if m := i18nTitle.FindSubmatch(r.Body); m == nil || html.UnescapeString(string(m[1])) != title {
		t.Errorf("title %q, want %q", m, title)
	}
	if !bytes.Contains([]byte(html.UnescapeString(string(r.Body))), []byte(msg)) {
		t.Errorf("page does not say %q:\n%s", msg, r.Body)
	}
}

// TestProxyPagesInDutch: the proxy's forbidden page (forward auth and reverse proxy) and its
// "application not answering" page follow the browser's Accept-Language and the remembered
// language choice (the latchkey_lang cookie), which the reverse proxy's error handler must still
// see although it runs on the request prepared for the upstream.
func TestProxyPagesInDutch(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A path on the upstream: the language links must still name the address the person asked for.
	dead := "http://" + ln.Addr().String() + "/base"
	ln.Close() // nothing listens there now

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	env := lktest.New(t, lktest.Config{
		DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{
			{Hosts: []string{"ops.example.com"}, Groups: []string{"ops"}, Policy: "passkey"},
			{Hosts: []string{"dead.example.com", "slow.example.com"}, Policy: "passkey"},
		},
		Routes:          map[string]string{"ops.example.com": dead, "dead.example.com": dead, "slow.example.com": slow.URL},
		UpstreamTimeout: 300 * time.Millisecond,
	})
	session, _ := signIn(t, env, "alice")
	c := env.Client()
	const forbidden = "Je bent ingelogd, maar deze pagina is niet toegankelijk voor je account."

	for _, tc := range []struct {
		name string
		hdr  http.Header
	}{
		{"Accept-Language", http.Header{"Cookie": {session}, "Accept-Language": {"nl-NL,nl;q=0.9,en;q=0.5"}}},
		// The remembered choice wins over the browser's languages.
		{"latchkey_lang cookie", http.Header{"Cookie": {session + "; latchkey_lang=nl"}, "Accept-Language": {"de"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := http.Header{"Accept": {"text/html"}}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			t.Run("forward auth forbidden", func(t *testing.T) {
				r := c.Forward("ops.example.com", "/", hdr)
				wantPage(t, r, http.StatusForbidden, "nl", "Niet toegestaan", forbidden)
			})
			t.Run("reverse proxy forbidden", func(t *testing.T) {
				r := c.Do(http.MethodGet, "ops.example.com", "/x", nil, hdr)
				wantPage(t, r, http.StatusForbidden, "nl", "Niet toegestaan", forbidden)
			})
			t.Run("application not answering", func(t *testing.T) {
				r := c.Do(http.MethodGet, "dead.example.com", "/x", nil, hdr)
				wantPage(t, r, http.StatusBadGateway, "nl", "Applicatie reageert niet",
					"dead.example.com reageert niet. Latchkey heeft je doorgelaten; de applicatie zelf is uitgevallen of onbereikbaar.")
				if !bytes.Contains(r.Body, []byte(`href="/x?lang=de"`)) {
					t.Errorf("the language links do not name the address asked for:\n%s", r.Body)
				}
				noRemote(t, "error page", r.Header)
			})
			t.Run("application too slow", func(t *testing.T) {
				r := c.Do(http.MethodGet, "slow.example.com", "/x", nil, hdr)
				wantPage(t, r, http.StatusGatewayTimeout, "nl", "Applicatie reageert niet",
					"slow.example.com deed er te lang over om te antwoorden.")
			})
		})
	}
	t.Run("no language asked: English", func(t *testing.T) {
		r := c.Do(http.MethodGet, "dead.example.com", "/x", nil, http.Header{"Cookie": {session}, "Accept": {"text/html"}})
		wantPage(t, r, http.StatusBadGateway, "en", "Application not answering",
			"dead.example.com is not answering. Latchkey let you through; the application itself is down or unreachable. Try again in a moment.")
	})
	t.Run("nothing served here", func(t *testing.T) {
		r := c.Do(http.MethodGet, "nowhere.example.com", "/", nil, http.Header{"Accept": {"text/html"}, "Accept-Language": {"nl"}})
		wantPage(t, r, http.StatusNotFound, "nl", "Niet gevonden", "Op dit adres wordt niets aangeboden.")
	})
}
