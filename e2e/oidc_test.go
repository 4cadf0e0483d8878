package e2e

import (
	"context"
	"html/template"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// oauth2ProxyVersion is the release the OpenID Provider is tested against; CI installs it with
// `go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6`.
const oauth2ProxyVersion = "v7.15.6"

// findOAuth2Proxy looks for the binary in $OAUTH2_PROXY, PATH and the Go bin folder. Missing, the
// test skips, except under CI=true, where it fails.
func findOAuth2Proxy(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("OAUTH2_PROXY"); p != "" {
		return p
	}
	if p, err := exec.LookPath("oauth2-proxy"); err == nil {
		return p
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gobin = filepath.Join(strings.TrimSpace(string(out)), "bin")
		}
	}
	if p := filepath.Join(gobin, "oauth2-proxy"); gobin != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "oauth2-proxy not found (set OAUTH2_PROXY, or: go install github.com/oauth2-proxy/oauth2-proxy/v7@" + oauth2ProxyVersion + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// identityPage is the upstream behind oauth2-proxy: it shows the identity headers it received.
var identityPage = template.Must(template.New("app").Parse(`<!doctype html><title>app</title>
<p>user <span id="user">{{.User}}</span></p>
<p>email <span id="email">{{.Email}}</span></p>
<p>name <span id="username">{{.Username}}</span></p>
<p>groups <span id="groups">{{.Groups}}</span></p>`))

// TestOAuth2ProxyWithLatchkeyOIDC puts oauth2-proxy, configured as an OpenID Connect client of
// Latchkey, in front of an upstream. Chromium with a virtual authenticator opens the app, is sent
// through oauth2-proxy to Latchkey's authorization endpoint, signs in on Latchkey's login page
// with a passkey, allows the app on the consent page, and reaches the upstream, which sees the
// user oauth2-proxy passes from the ID token.
func TestOAuth2ProxyWithLatchkeyOIDC(t *testing.T) {
	needBrowser(t)
	bin := findOAuth2Proxy(t)
	srv := startServer(t, serverConfig{})
	link := addUser(t, srv, "alice", "--email", "alice@example.com", "--display-name", "Alice", "--groups", "family,media")
	_, creds := enrolUser(t, srv, link)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		identityPage.Execute(w, map[string]string{"User": r.Header.Get("X-Forwarded-User"), "Email": r.Header.Get("X-Forwarded-Email"),
			"Username": r.Header.Get("X-Forwarded-Preferred-Username"), "Groups": r.Header.Get("X-Forwarded-Groups")})
	}))
	t.Cleanup(upstream.Close)

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	app := "http://localhost:" + strconv.Itoa(port)
	out := cli(t, srv, "oidc", "client", "add", "Photos", "--redirect-uri", app+"/oauth2/callback", "--groups", "family")
	clientID, secret := lineValue(t, out, "client_id"), lineValue(t, out, "client_secret")
	issuer := lineValue(t, out, "issuer")
	if issuer != srv.URL+"/.latchkey/oidc" {
		t.Fatalf("issuer %q", issuer)
	}

	ctx, cancel := context.WithCancel(context.Background())
	proxy := exec.CommandContext(ctx, bin,
		"--provider=oidc", "--oidc-issuer-url="+issuer, "--client-id="+clientID, "--client-secret="+secret,
		"--redirect-url="+app+"/oauth2/callback", "--http-address=127.0.0.1:"+strconv.Itoa(port),
		"--upstream="+upstream.URL+"/", "--email-domain=*", "--cookie-secret=0123456789abcdef0123456789abcdef",
		"--cookie-secure=false", "--skip-provider-button=true", "--code-challenge-method=S256",
		"--scope=openid email profile groups", "--oidc-groups-claim=groups", "--pass-user-headers=true",
		"--reverse-proxy=false")
	logs := &lockedBuffer{}
	proxy.Stdout, proxy.Stderr = lineWriter{logs}, lineWriter{logs}
	if err := proxy.Start(); err != nil {
		t.Fatalf("starting oauth2-proxy: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		proxy.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", logs.String())
		}
	})
	// oauth2-proxy reads Latchkey's discovery document at start; wait until it listens (the bound
	// only keeps a broken start from hanging the test).
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(app + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy not answering /ping:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	tb := newTab(t, tabOptions{})
	auth := tb.addAuthenticator(authOptions{})
	tb.navigate(app + "/photos/2024")
	tb.waitURL(srv.URL + "/.latchkey/login?")
	tb.waitConditionalSettled()
	tb.shot("oidc-login")
	tb.addCredentials(auth, creds)
	tb.click("passkey-login")
	tb.waitURL(srv.URL + "/.latchkey/oidc/login?")
	tb.do(chromedp.WaitVisible(chromedp.ID("oidc-allow")))
	if h := eval[string](tb, `document.querySelector("h1").textContent`); h != "Allow Photos?" {
		t.Errorf("consent page title %q", h)
	}
	tb.shot("oidc-consent")
	tb.checkNoOverflow("consent page")
	tb.click("oidc-allow")
	tb.waitURL(app + "/photos/2024")
	for id, want := range map[string]string{"email": "alice@example.com", "username": "alice", "groups": "family,media"} {
		if got := tb.text(id); got != want {
			t.Errorf("upstream saw %s %q, want %q", id, got, want)
		}
	}
	if tb.text("user") == "" {
		t.Error("upstream saw no X-Forwarded-User")
	}
	tb.shot("oidc-upstream")
	creds = tb.credentials(auth) // with the sign counter as the first sign-in left it
	tb.removeAuthenticator(auth)

	// A second app session in a new browser, same passkey: no consent page this time.
	tb2 := newTab(t, tabOptions{})
	auth2 := tb2.addAuthenticator(authOptions{})
	tb2.navigate(app + "/")
	tb2.waitURL(srv.URL + "/.latchkey/login?")
	tb2.waitConditionalSettled()
	tb2.addCredentials(auth2, creds)
	tb2.click("passkey-login")
	tb2.waitURL(app + "/")
	if got := tb2.text("username"); got != "alice" {
		t.Errorf("second sign-in: upstream saw %q", got)
	}
}

// lineValue returns the value of a "key: value" line of a command's output.
func lineValue(t *testing.T, out, key string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+": "); ok && v != "" {
			return v
		}
	}
	t.Fatalf("no %q line in:\n%s", key, out)
	return ""
}

// lineWriter feeds a child's output into a lockedBuffer.
type lineWriter struct{ b *lockedBuffer }

func (w lineWriter) Write(p []byte) (int, error) {
	w.b.WriteLine(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
