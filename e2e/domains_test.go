package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// domainsSetup is the several-domains flow's listener, prepared before the browser starts.
type domainsSetup struct {
	port      int
	apexPort  int    // example.net itself: a web server that is not Latchkey (the broken setup)
	cert, key string // PEM files
	spki      string // base64 SHA-256 of the certificate's public key, for Chromium's flag
}

func (d domainsSetup) resolverRules() string {
	to := "127.0.0.1:" + strconv.Itoa(d.port)
	rules := []string{"MAP example.net 127.0.0.1:" + strconv.Itoa(d.apexPort)}
	for _, h := range []string{"*.example.net", "*.example.org", "example.org"} {
		rules = append(rules, "MAP "+h+" "+to)
	}
	return strings.Join(rules, ", ")
}

// prepareDomains makes a self-signed certificate for example.net and example.org (and their
// subdomains) and reserves the listener's port.
func prepareDomains(dir string) (domainsSetup, error) {
	var d domainsSetup
	port, err := freePort()
	if err != nil {
		return d, err
	}
	d.port = port
	if d.apexPort, err = freePort(); err != nil {
		return d, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return d, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "latchkey several-domains test"},
		DNSNames:     []string{"example.net", "*.example.net", "example.org", "*.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return d, err
	}
	pkDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return d, err
	}
	sum := sha256.Sum256(pkDER)
	d.spki = base64.StdEncoding.EncodeToString(sum[:])
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return d, err
	}
	d.cert, d.key = filepath.Join(dir, "domains-cert.pem"), filepath.Join(dir, "domains-key.pem")
	if err := os.WriteFile(d.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return d, err
	}
	if err := os.WriteFile(d.key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return d, err
	}
	return d, nil
}

// TestSeveralDomainsBrowser is issue 23 in real Chromium: one Latchkey over TLS serves
// example.net and example.org (both resolved to 127.0.0.1, the certificate made above). The
// passkey enrolled on auth.example.net (the RP ID) signs in on auth.example.org through Related
// Origin Requests, which makes Chromium fetch https://auth.example.net/.well-known/webauthn; a
// session cookie of example.net is refused on example.org; and the account page's continue step
// signs a fresh browser in on example.org without a second passkey prompt.
func TestSeveralDomainsBrowser(t *testing.T) {
	needBrowser(t)
	app := echoUpstream(t)
	d := suite.domains
	yaml := fmt.Sprintf(`server:
  tls: {cert_file: %q, key_file: %q}
session:
  cookies:
    - {domain: example.net, public_url: "https://auth.example.net"}
    - {domain: example.org, public_url: "https://auth.example.org"}
access_control:
  default_policy: passkey
routes:
  - {host: app.example.net, upstream: %q}
  - {host: app.example.org, upstream: %q}
`, d.cert, d.key, app.URL, app.URL)
	srv := startServer(t, serverConfig{port: d.port, public: "https://auth.example.net", yaml: yaml})

	// Enrol on example.net, the RP ID's domain.
	tb := newTab(t, tabOptions{})
	auth := enrol(t, tb, srv)
	if creds := tb.credentials(auth); len(creds) != 1 || creds[0].RpID != "auth.example.net" {
		t.Fatalf("credential made for %+v, want RP ID auth.example.net", creds)
	}
	tb.click("continue")
	tb.waitURL("https://auth.example.net/.latchkey/account")
	if got := tb.text("passkeys"); !strings.Contains(got, "Works on example.net; on example.org in browsers that support related origins") {
		t.Errorf("account page passkey row says %q", got)
	}

	// The example.net cookie, planted for example.org by hand, is refused there: the app on
	// example.org sends the browser to example.org's own portal.
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{"https://auth.example.net/"}})
	if err != nil {
		t.Fatal(err)
	}
	var netCookie string
	for _, c := range res.Cookies {
		if c.Name == "latchkey_session" {
			netCookie = c.Value
			if c.Domain != ".example.net" || !c.Secure || !c.HTTPOnly {
				t.Errorf("example.net session cookie: domain %q secure %t httponly %t", c.Domain, c.Secure, c.HTTPOnly)
			}
		}
	}
	if netCookie == "" {
		t.Fatal("no session cookie for example.net after enrolment")
	}
	yes := true
	if _, err := chromedp.Call(tb.ctx, network.SetCookie, network.SetCookieParams{Name: "latchkey_session", Value: netCookie,
		Domain: ".example.org", Path: "/", Secure: &yes, HTTPOnly: &yes}); err != nil {
		t.Fatal(err)
	}
	tb.navigate("https://app.example.org/dash")
	tb.waitURL("https://auth.example.org/.latchkey/login?rd=")
	tb.shot("example.org-login-with-example.net-cookie")

	// Sign in on example.org with the example.net passkey: Related Origin Requests. The login
	// page's conditional request is answered at once by the virtual authenticator (it holds a
	// passkey of the RP ID), so no click is needed.
	tb.waitFor("the app or an error", `location.host === "app.example.org" || (document.getElementById("status") || {className: ""}).className.includes("error")`)
	if !strings.HasPrefix(tb.location(), "https://app.example.org/dash") {
		t.Fatalf("sign-in on auth.example.org with the example.net passkey did not finish: status %q at %s", tb.status(), tb.location())
	}
	if u := tb.text("remote-user"); u != "admin" {
		t.Errorf("app.example.org sees Remote-User %q, want admin", u)
	}
	if c := tb.text("cookies"); strings.Contains(c, "latchkey_session") {
		t.Errorf("the session cookie reached the app: %q", c)
	}
	tb.shot("app.example.org-signed-in")

	// The continue step, in a fresh browser holding the same passkey: sign in on example.net,
	// continue to example.org, no passkey prompt there.
	fresh := newTab(t, tabOptions{})
	fa := fresh.addAuthenticator(authOptions{})
	fresh.addCredentials(fa, tb.credentials(auth))
	fresh.navigate("https://auth.example.net/.latchkey/login")
	fresh.waitURL("https://auth.example.net/.latchkey/account")
	before := fresh.credentials(fa)[0].SignCount
	fresh.shot("account-with-continue")
	fresh.click("continue-example-org")
	fresh.waitURL("https://auth.example.org/.latchkey/continue?token=")
	fresh.shot("continue-page")
	fresh.click("continue-confirm")
	fresh.waitURL("https://auth.example.org/.latchkey/account")
	if u := fresh.text("signed-in-user"); u != "admin" {
		t.Errorf("signed in on example.org as %q after continuing", u)
	}
	if g := fresh.gets(); len(g) != 0 {
		t.Errorf("the example.org account page asked for a passkey: %+v", g)
	}
	if after := fresh.credentials(fa)[0].SignCount; after != before {
		t.Errorf("the continue step used the passkey (sign count %v → %v)", before, after)
	}
	fresh.navigate("https://app.example.org/")
	fresh.waitURL("https://app.example.org/")
	if u := fresh.text("remote-user"); u != "admin" {
		t.Errorf("app.example.org after continuing sees Remote-User %q", u)
	}
}

// TestSeveralDomainsBrokenWellKnown is the broken setup the README and doctor warn about: the
// RP ID is example.net, whose web server (not Latchkey) does not serve /.well-known/webauthn.
// Real Chromium then refuses the example.net passkey on auth.example.org, and the login page
// says what to do instead: sign in on example.net's portal and continue.
func TestSeveralDomainsBrokenWellKnown(t *testing.T) {
	needBrowser(t)
	d := suite.domains
	apex := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(d.apexPort))
	if err != nil {
		t.Fatal(err)
	}
	go apex.ServeTLS(ln, d.cert, d.key)
	t.Cleanup(func() { apex.Close() })
	yaml := fmt.Sprintf(`server:
  tls: {cert_file: %q, key_file: %q}
webauthn:
  rp_id: example.net
session:
  cookies:
    - {domain: example.net, public_url: "https://auth.example.net"}
    - {domain: example.org, public_url: "https://auth.example.org"}
`, d.cert, d.key)
	srv := startServer(t, serverConfig{port: d.port, public: "https://auth.example.net", yaml: yaml})
	tb := newTab(t, tabOptions{})
	enrol(t, tb, srv)
	tb.navigate("https://auth.example.org/.latchkey/login")
	tb.waitConditionalSettled()
	tb.click("passkey-login")
	msg := tb.waitStatus("error")
	for _, want := range []string{"cannot use your example.net passkey on auth.example.org", "https://example.net/.well-known/webauthn",
		"Sign in at https://auth.example.net", "Continue to example.org"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal message %q lacks %q", msg, want)
		}
	}
	tb.shot("related-origin-refused")
	if g := tb.gets(); len(g) == 0 || !strings.HasPrefix(g[len(g)-1].State, "rejected:SecurityError") {
		t.Errorf("Chromium's answer to the related-origin request: %+v, want a SecurityError", g)
	}
}
