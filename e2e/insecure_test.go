package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestInsecureContextSaysWhy: on http at an address other than localhost, browsers hide WebAuthn
// entirely. The login page must say that the connection is the reason (not that the browser
// lacks passkeys) and disable its button, and serve must warn at start.
func TestInsecureContextSaysWhy(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	public := "http://home.example.com:" + strconv.Itoa(port) // *.example.com resolves to 127.0.0.1
	srv := startServer(t, serverConfig{port: port, public: public})
	if !strings.Contains(srv.out.String(), "public_url is http on an address other than localhost") {
		t.Errorf("serve did not warn about an http public_url:\n%s", srv.out.String())
	}
	tb := newTab(t, tabOptions{})
	tb.navigate(public + "/.latchkey/login")
	if eval[bool](tb, `window.isSecureContext`) {
		t.Fatal("the page is a secure context: the test does not test anything")
	}
	tb.waitFor("the reason on the page", `(document.querySelector("[role=status], .status") || document.body).textContent.includes("secure (https) connection")`)
	if !eval[bool](tb, `document.getElementById("passkey-login").disabled`) {
		t.Error("the sign-in button is enabled in a page that cannot use passkeys")
	}
	if eval[bool](tb, `document.body.textContent.includes("does not support passkeys")`) {
		t.Error("the page blames the browser")
	}
	tb.shot("insecure-login")
	tb.do(chromedp.Navigate(public + "/.latchkey/login?lang=de"))
	tb.waitFor("the reason in German", `document.body.textContent.includes("keine sichere Verbindung") || document.body.textContent.includes("nicht über eine sichere Verbindung")`)
}
