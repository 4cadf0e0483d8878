package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stepUpMaxAge is the max_age of the step-up rule: long enough for the fresh visit right after
// enrolment, short enough to wait out in a test.
const stepUpMaxAge = 3 * time.Second

// TestStepUpRoundTrip runs step-up (issue 11) in reverse-proxy mode: public_url's host is routed
// to an application that shows Remote-User; ^/sensitive asks for a passkey check younger than
// max_age, the rest of the host for any session. Once the session's check is older than
// max_age, /sensitive goes through the login page in step-up mode and back; the rest of the host
// still opens. On the step-up page another user's passkey is refused with a clear message and
// does not replace the session. --demo is not used: it puts its own rule for the host first,
// and the first matching rule wins.
func TestStepUpRoundTrip(t *testing.T) {
	needBrowser(t)
	app := echoUpstream(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	host := "localhost:" + strconv.Itoa(port)
	srv := startServer(t, serverConfig{port: port, yaml: fmt.Sprintf(`access_control:
  default_policy: deny
  rules:
    - hosts: [%[1]q]
      paths: ["^/sensitive"]
      policy: passkey
      max_age: %[2]s
    - hosts: [%[1]q]
      policy: passkey
routes:
  - host: %[1]q
    upstream: %[3]q
`, host, stepUpMaxAge, app.URL)})
	sensitive := srv.URL + "/sensitive/payroll?month=2025-01&q=a%20b"
	ordinary := srv.URL + "/dashboards/1"

	tb := newTab(t, tabOptions{})
	auth := enrol(t, tb, srv)
	// The session's passkey check happened before this instant; max_age counts from it.
	enrolled := time.Now()
	admin := tb.credentials(auth)

	// Fresh: the step-up rule lets the session through.
	tb.navigate(sensitive)
	tb.waitURL(sensitive)
	if got := tb.text("remote-user"); got != "admin" {
		t.Fatalf("fresh session: upstream saw Remote-User %q, want admin", got)
	}
	if got := tb.text("cookies"); strings.Contains(got, "latchkey_session") {
		t.Errorf("the upstream received the session cookie: %q", got)
	}
	if time.Since(enrolled) >= stepUpMaxAge {
		t.Fatalf("the fresh visit came %s after enrolment, later than max_age %s; the machine is too slow for this test", time.Since(enrolled), stepUpMaxAge)
	}

	// While the session ages: a second user, bob, enrols in his own browser context.
	bobLink := addUser(t, srv, "bob", "--groups", "staff")
	_, bob := enrolUser(t, srv, bobLink)

	// Unplugged before the step-up page loads: the virtual authenticator would answer its
	// conditional request at once, and the test wants to press the button itself.
	tb.removeAuthenticator(auth)
	second := tb.addAuthenticator(authOptions{})
	if wait := time.Until(enrolled.Add(stepUpMaxAge + 300*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}

	// An old session still opens pages without max_age.
	tb.navigate(ordinary)
	tb.waitURL(ordinary)
	if got := tb.text("remote-user"); got != "admin" {
		t.Errorf("old session on a rule without max_age: upstream saw Remote-User %q, want admin", got)
	}

	// ...but not /sensitive: the login page in step-up mode, with the original URL as rd.
	tb.navigate(sensitive)
	tb.waitURL(srv.URL + "/.latchkey/login?")
	loc := tb.location()
	if !strings.Contains(loc, "stepup=1") {
		t.Errorf("step-up login URL %s has no stepup=1", loc)
	}
	if rd := eval[string](tb, `document.getElementById("page").dataset.rd`); rd != sensitive {
		t.Errorf("step-up page rd = %q, want %q", rd, sensitive)
	}
	if h := eval[string](tb, `document.querySelector("h1").textContent`); !strings.Contains(h, "Confirm it") {
		t.Errorf("step-up page heading %q, want \"Confirm it's you\"", h)
	}
	// A step-up confirms the account already signed in: no account field, no autofill request.
	if n := eval[int](tb, `(window.__lkGets || []).filter(g => g.mediation === "conditional").length`); n != 0 {
		t.Errorf("the step-up page started %d conditional requests; it should start none", n)
	}
	if b := eval[string](tb, `document.getElementById("passkey-login").textContent`); !strings.Contains(b, "Confirm") {
		t.Errorf("step-up button says %q, want it to ask to confirm", b)
	}
	if st := tb.status(); st != "" {
		t.Errorf("the step-up page shows %q before anything was done", st)
	}
	tb.shot("stepup")
	tb.checkNoLayoutShift("step-up page")

	// Bob's passkey, on the second authenticator, is refused: the step-up is for admin's session.
	tb.addCredentials(second, bob)
	tb.click("passkey-login")
	msg := tb.waitStatus("error")
	if !strings.Contains(msg, "account you are signed in with") {
		t.Errorf("another user's passkey on the step-up page: #status = %q, want it to say to use the signed-in account's passkey", msg)
	}
	if n := eval[int](tb, `(window.__lkGets || []).filter(g => g.mediation === "conditional").length`); n != 0 {
		t.Errorf("the step-up page started %d conditional requests by the end; it should start none", n)
	}
	for _, bad := range []string{"Error:", "undefined", "{", "403"} {
		if strings.Contains(msg, bad) {
			t.Errorf("#status = %q looks like an internal error (%q)", msg, bad)
		}
	}
	if loc := tb.location(); !strings.HasPrefix(loc, srv.URL+"/.latchkey/login?") {
		t.Errorf("the refused step-up left the login page for %s", loc)
	}
	if !eval[bool](tb, `!document.getElementById("passkey-login").disabled`) {
		t.Error("the button stays disabled after the refusal; no retry is possible")
	}
	tb.shot("stepup-other-user-refused")

	// Admin's own passkey: back on /sensitive, still admin.
	tb.removeAuthenticator(second)
	tb.addCredentials(tb.addAuthenticator(authOptions{}), admin)
	tb.click("passkey-login")
	tb.waitURL(sensitive)
	if got := tb.text("remote-user"); got != "admin" {
		t.Errorf("after step-up: upstream saw Remote-User %q, want admin", got)
	}
	if got := tb.location(); got != sensitive {
		t.Errorf("after step-up the browser is on %s, want %s", got, sensitive)
	}
	tb.shot("sensitive-after-stepup")

	// The step-up refreshed the session itself rather than adding one: admin still has the one
	// session of the enrolment.
	tb.navigate(srv.URL + "/.latchkey/account")
	tb.waitURL(srv.URL + "/.latchkey/account")
	if got := tb.text("signed-in-user"); got != "admin" {
		t.Errorf("account page after step-up signed in as %q, want admin", got)
	}
	if n := eval[int](tb, `document.querySelectorAll("#sessions li[data-id]").length`); n != 1 {
		t.Errorf("admin has %d sessions after the step-up, want the 1 it refreshed", n)
	}
	tb.navigate(sensitive)
	tb.waitURL(sensitive) // fresh again: no second trip through the login page
}
