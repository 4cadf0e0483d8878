package e2e

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// protectedPath is a page of the demo upstream with a query, to check that the original URL
// survives the round trip through the login page intact.
const protectedPath = "/reports/q3?from=e2e&name=a%20b&x=%2F"

// enrol runs flow 1 in tb: open the bootstrap enrolment link, see the personal-device warning,
// create a passkey, see the ten recovery codes once. It returns the authenticator holding it.
func enrol(t *testing.T, tb *tab, srv *server) cdpwebauthn.AuthenticatorID {
	t.Helper()
	auth := tb.addAuthenticator(authOptions{})
	tb.navigate(srv.EnrolURL)
	tb.do(chromedp.WaitVisible(chromedp.ID("personal-device-warning")))
	if w := tb.text("personal-device-warning"); !strings.Contains(w, "own device") {
		t.Errorf("personal-device warning says %q", w)
	}
	tb.shot("enrol")
	tb.checkNoLayoutShift("enrolment page")
	tb.click("passkey-register")
	tb.waitFor("recovery codes", `!document.getElementById("codes").hidden`)
	if n := eval[int](tb, `document.querySelectorAll("#code-list li").length`); n != 10 {
		t.Errorf("%d recovery codes shown, want 10", n)
	}
	if !tb.visible("codes") || !tb.visible("continue") {
		t.Error("recovery codes or the continue link are not visible")
	}
	if tb.visible("passkey-register") {
		t.Error("the register button is still shown after enrolment")
	}
	if got := len(tb.credentials(auth)); got != 1 {
		t.Errorf("the authenticator holds %d credentials, want 1", got)
	}
	tb.shot("recovery-codes")
	return auth
}

// TestEnrolSignOutSignIn runs flows 1, 2 and 3 against `latchkey serve --demo`: enrolment with
// recovery codes shown once, sign-out, and a sign-in that starts at a protected URL and lands
// back on it with the upstream seeing Remote-User. The phone variant runs at 390x844 in dark
// mode without the browser's WebAuthn JSON helpers, so the page's own base64url code is used.
func TestEnrolSignOutSignIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts tabOptions
	}{
		{"desktop", tabOptions{}},
		{"phone-dark-fallback", tabOptions{phone: true, dark: true, noJSONHelpers: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, serverConfig{demo: true})
			tb := newTab(t, tc.opts)
			tb.navigate(srv.URL + "/.latchkey/healthz") // a secure context, where PublicKeyCredential exists
			helpers := eval[bool](tb, `typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
				typeof PublicKeyCredential.prototype.toJSON === "function"`)
			if helpers == tc.opts.noJSONHelpers {
				t.Fatalf("JSON helpers present: %v, want %v", helpers, !tc.opts.noJSONHelpers)
			}

			// Flow 1: enrolment; the codes are shown once.
			auth := enrol(t, tb, srv)
			codes := eval[[]string](tb, `[...document.querySelectorAll("#code-list li")].map(li => li.textContent)`)
			tb.do(chromedp.Reload())
			tb.waitFor("the page after a reload", `document.readyState === "complete"`)
			body := eval[string](tb, `document.body.innerText`)
			for _, c := range codes {
				if strings.Contains(body, c) {
					t.Fatalf("recovery code %s is shown again after a reload", c)
				}
			}
			if tb.visible("passkey-register") {
				t.Error("the used enrolment link still offers to create a passkey")
			}
			tb.shot("enrol-link-used")

			// Flow 2: the account page, then sign out.
			tb.navigate(srv.URL + "/.latchkey/account")
			tb.waitURL(srv.URL + "/.latchkey/account")
			if got := tb.text("signed-in-user"); got != "admin" {
				t.Errorf("account page signed in as %q, want admin", got)
			}
			tb.shot("account")
			// Unplugged first: the login page that sign-out leads to would otherwise sign
			// straight back in through the virtual authenticator's answer to conditional UI.
			creds := tb.credentials(auth)
			tb.removeAuthenticator(auth)
			tb.click("logout")
			tb.waitURL(srv.URL + "/.latchkey/login")
			tb.shot("signed-out")
			tb.navigate(srv.URL + "/.latchkey/account")
			tb.waitFor("the account page to refuse", `!document.getElementById("signed-in-user")`)

			// Flow 3: a protected URL in a fresh browser context. The virtual authenticator
			// answers the page's conditional request at once (see TestConditionalUI), so it
			// starts empty: the conditional request fails silently, and the passkey is added
			// before the button is pressed.
			tb2 := newTab(t, tc.opts)
			auth2 := tb2.addAuthenticator(authOptions{})
			want := srv.URL + protectedPath
			tb2.navigate(want)
			tb2.waitURL(srv.URL + "/.latchkey/login?")
			tb2.waitConditionalSettled()
			if st := tb2.status(); st != "" {
				t.Errorf("a failed conditional request shows %q; it should stay silent", st)
			}
			rd := eval[string](tb2, `document.getElementById("page").dataset.rd`)
			if rd != want {
				t.Errorf("login page rd = %q, want %q", rd, want)
			}
			tb2.shot("login")
			tb2.checkNoLayoutShift("login page")
			tb2.addCredentials(auth2, creds)
			tb2.click("passkey-login")
			tb2.waitURL(want)
			if got := tb2.text("remote-user"); got != "admin" {
				t.Errorf("upstream saw Remote-User %q, want admin", got)
			}
			if u, _ := url.Parse(tb2.location()); u.RawQuery != "from=e2e&name=a%20b&x=%2F" {
				t.Errorf("query after sign-in = %q", u.RawQuery)
			}
			tb2.shot("upstream")
		})
	}
}

// enrolled starts a demo server, enrols its admin in a throwaway tab and returns the server and
// the passkey, unplugged from that tab, for other tabs to use.
func enrolled(t *testing.T) (*server, []*cdpwebauthn.Credential) {
	t.Helper()
	srv := startServer(t, serverConfig{demo: true})
	tb := newTab(t, tabOptions{})
	auth := enrol(t, tb, srv)
	creds := tb.credentials(auth)
	tb.removeAuthenticator(auth)
	return srv, creds
}

// TestConditionalUI covers flow 4, passkey autofill. What Chromium's virtual authenticator
// can show: it has no autofill menu; it answers a conditional request at once when it holds a
// discoverable passkey for the RP (as if the person picked the suggestion), rejects it at once
// when it holds none, and leaves it pending while presence simulation is off.
func TestConditionalUI(t *testing.T) {
	srv, creds := enrolled(t)
	want := srv.URL + protectedPath

	t.Run("autofill signs in", func(t *testing.T) {
		tb := newTab(t, tabOptions{})
		tb.addCredentials(tb.addAuthenticator(authOptions{}), creds)
		tb.navigate(want)
		tb.waitURL(want) // through the login page, with no click
		if got := tb.text("remote-user"); got != "admin" {
			t.Errorf("upstream saw Remote-User %q, want admin", got)
		}
		tb.shot("upstream")
	})

	t.Run("pending until the button replaces it", func(t *testing.T) {
		tb := newTab(t, tabOptions{})
		tb.addCredentials(tb.addAuthenticator(authOptions{noTouch: true}), creds)
		tb.navigate(want)
		tb.waitURL(srv.URL + "/.latchkey/login?")
		ac := eval[string](tb, `document.getElementById("username").getAttribute("autocomplete")`)
		if ac != "username webauthn" {
			t.Errorf("username input autocomplete = %q, want \"username webauthn\"", ac)
		}
		tb.waitFor("a conditional request", `(window.__lkGets || []).length > 0`)
		if g := tb.gets(); len(g) != 1 || g[0].Mediation != "conditional" || g[0].State != "pending" {
			t.Fatalf("requests after load = %+v, want one pending conditional request", g)
		}
		tb.shot("login-conditional-pending")
		tb.click("passkey-login")
		tb.waitFor("the button's request", `(window.__lkGets || []).length === 2`)
		tb.waitFor("the conditional request to be aborted", `window.__lkGets[0].state === "rejected:AbortError"`)
		if g := tb.gets(); g[1].Mediation != "optional" || g[1].State != "pending" {
			t.Errorf("button request = %+v, want a pending modal request", g[1])
		}
		if st := tb.status(); strings.Contains(st, "cancel") || eval[bool](tb, `document.getElementById("status").classList.contains("error")`) {
			t.Errorf("aborting the conditional request shows %q", st)
		}
	})
}

// TestAccountPasskeys covers flow 5: add a second passkey from the account page (made by a
// second authenticator), rename it, remove it.
func TestAccountPasskeys(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true})
	tb := newTab(t, tabOptions{})
	first := enrol(t, tb, srv)
	tb.click("continue")
	tb.waitURL(srv.URL + "/.latchkey/account")
	rows := func() int { return eval[int](tb, `document.querySelectorAll("#passkeys li").length`) }
	if n := rows(); n != 1 {
		t.Fatalf("%d passkeys listed after enrolment, want 1", n)
	}
	// Only the new authenticator is plugged in, so the browser cannot offer the first one
	// (which excludeCredentials would refuse anyway).
	tb.removeAuthenticator(first)
	second := tb.addAuthenticator(authOptions{})
	tb.click("passkey-add")
	tb.waitFor("two passkeys", `document.querySelectorAll("#passkeys li").length === 2`)
	creds := tb.credentials(second)
	if len(creds) != 1 {
		t.Fatalf("the second authenticator holds %d passkeys, want 1", len(creds))
	}
	id := base64.RawURLEncoding.EncodeToString(creds[0].CredentialID)
	row := `#passkeys li[data-id="` + id + `"]`
	if !eval[bool](tb, `!!document.querySelector('`+row+`')`) {
		t.Fatalf("no row for the new passkey %s", id)
	}
	tb.shot("account-two-passkeys")

	tb.answerDialogs("Work laptop")
	tb.do(chromedp.Click(chromedp.CSS(row + ` [data-action=rename]`)))
	tb.waitFor("the rename done", statusHas("Renamed to “Work laptop”."))
	tb.do(chromedp.Reload())
	tb.waitFor("the renamed passkey", `(document.querySelector('`+row+` .passkey-name') || {}).textContent === "Work laptop"`)
	tb.shot("account-renamed")

	tb.answerDialogs("")
	tb.do(chromedp.Click(chromedp.CSS(row + ` [data-action=remove]`)))
	tb.waitFor("the removal done", statusHas("“Work laptop” removed."))
	tb.do(chromedp.Reload())
	tb.waitFor("one passkey", `document.querySelectorAll("#passkeys li").length === 1`)
	if eval[bool](tb, `!!document.querySelector('`+row+`')`) {
		t.Error("the removed passkey is still listed")
	}
	tb.shot("account-removed")
}

// TestUserVerification covers flow 6: an authenticator that fails user verification cannot
// sign in, and an assertion whose UV flag the authenticator clears is refused by the server.
func TestUserVerification(t *testing.T) {
	srv, creds := enrolled(t)
	for _, tc := range []struct {
		name    string
		auth    authOptions
		badUV   bool
		message string // what #status must say
	}{
		{"verification fails", authOptions{uvFails: true}, false, "could not verify you"},
		{"UV flag cleared", authOptions{}, true, "Passkey not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTab(t, tabOptions{})
			a := tb.addAuthenticator(tc.auth)
			if tc.badUV {
				if _, err := chromedp.Call(tb.ctx, cdpwebauthn.SetResponseOverrideBits, cdpwebauthn.SetResponseOverrideBitsParams{
					AuthenticatorID: a, IsBadUV: new(true),
				}); err != nil {
					t.Fatal(err)
				}
			}
			tb.navigate(srv.URL + protectedPath)
			tb.waitURL(srv.URL + "/.latchkey/login?")
			tb.waitConditionalSettled()
			tb.addCredentials(a, creds)
			tb.click("passkey-login")
			msg := tb.waitStatus("error")
			if !strings.Contains(msg, tc.message) {
				t.Errorf("#status = %q, want it to contain %q", msg, tc.message)
			}
			tb.shot("refused")
			if loc := tb.location(); !strings.HasPrefix(loc, srv.URL+"/.latchkey/login?") {
				t.Errorf("left the login page for %s", loc)
			}
			if !eval[bool](tb, `!document.getElementById("passkey-login").disabled`) {
				t.Error("the sign-in button stays disabled; no retry is possible")
			}
		})
	}
}

// TestCancel covers flow 7: no passkey chosen (the authenticator holds none for this site)
// gives a retry message, not a blank page or a stack trace. It runs on a phone-sized screen.
func TestCancel(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true})
	tb := newTab(t, tabOptions{phone: true})
	tb.addAuthenticator(authOptions{})
	tb.navigate(srv.URL + "/.latchkey/login")
	tb.waitConditionalSettled()
	tb.click("passkey-login")
	msg := tb.waitStatus("error")
	if !strings.Contains(msg, "Try again") {
		t.Errorf("#status = %q, want a retry message", msg)
	}
	for _, bad := range []string{"Error:", "at ", "undefined", "{"} {
		if strings.Contains(msg, bad) {
			t.Errorf("#status = %q looks like an internal error (%q)", msg, bad)
		}
	}
	if !eval[bool](tb, `!document.getElementById("passkey-login").disabled`) {
		t.Error("the sign-in button stays disabled after a cancel")
	}
	tb.shot("cancelled")
}
