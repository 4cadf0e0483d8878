package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestAccountInlineStepUp (issue 16): on the account page, an account-changing action whose
// session checked a passkey more than five minutes ago asks for the passkey in place (the same
// step-up ceremony as the admin console's), then finishes: no reload, no navigation, no prompt.
// A cancelled prompt leaves the change undone; the tokens page asks the same way; sign out
// everywhere revokes the API token too (its box is checked by default) and says what it ended.
// The server runs in this process (internal/lktest, a real HTTP server and SQLite file) so that
// its clock can be moved past the five minutes instead of waiting them out.
func TestAccountInlineStepUp(t *testing.T) {
	needBrowser(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	user, token := env.AddUser("alice")
	account := env.Origin() + "/.latchkey/account"

	tb := newTab(t, tabOptions{})
	tb.addAuthenticator(authOptions{})
	tb.navigate(env.Origin() + "/.latchkey/enroll?token=" + url.QueryEscape(token))
	tb.click("passkey-register")
	tb.waitFor("recovery codes", `!document.getElementById("codes").hidden`)
	first := eval[[]string](tb, `[...document.querySelectorAll("#code-list li")].map(li => li.textContent)`)
	tb.navigate(account)
	tb.waitURL(account)
	tb.waitFor("the account page", `document.readyState === "complete" && !!document.getElementById("codes-regenerate")`)

	// Six minutes on: the enrolment's passkey check is too old for account changes.
	env.Clock.Advance(6 * time.Minute)
	// A marker that a reload or a navigation would lose.
	eval[bool](tb, `(() => { window.__lkSamePage = true; return true; })()`)
	tb.answerDialogs("") // the "old codes stop working" confirmation
	tb.click("codes-regenerate")
	tb.waitFor("new recovery codes", `!document.getElementById("codes").hidden && document.querySelectorAll("#code-list li").length === 10`)
	tb.waitFor("the result in #status", statusHas("New recovery codes"))
	if !eval[bool](tb, `window.__lkSamePage === true`) || tb.location() != account {
		t.Errorf("the page reloaded or left for %s during the step-up", tb.location())
	}
	gets := tb.gets()
	if len(gets) != 1 || gets[0].Mediation == "conditional" {
		t.Errorf("passkey requests during the action: %+v, want one modal step-up request", gets)
	}
	codes := eval[[]string](tb, `[...document.querySelectorAll("#code-list li")].map(li => li.textContent)`)
	for _, c := range codes {
		for _, old := range first {
			if c == old {
				t.Fatalf("the enrolment's code %s came back", c)
			}
		}
	}
	if n := env.Count("audit", "event = 'recovery_codes_regenerated' AND user_id = ?", user.ID); n != 1 {
		t.Errorf("%d recovery_codes_regenerated rows, want 1", n)
	}
	// The step-up renewed this session; it made no second one.
	if n := env.Count("sessions", "user_id = ? AND revoked_at = 0", user.ID); n != 1 {
		t.Errorf("%d live sessions after the step-up, want 1", n)
	}
	tb.shot("account-stepup-codes")

	// Within the five minutes the next change needs no second passkey request.
	setEmail(tb, "alice@example.net")
	tb.click("email-save")
	tb.waitFor("the saved address in #status", statusHas("E-mail address saved"))
	if n := len(tb.gets()); n != 1 {
		t.Errorf("%d passkey requests after a change within five minutes, want still 1", n)
	}
	if n := env.Count("users", "id = ? AND email = 'alice@example.net'", user.ID); n != 1 {
		t.Errorf("the new address was not stored")
	}

	// Stale again, and a refused step-up: the action does not happen and the page says why.
	env.Clock.Advance(6 * time.Minute)
	setEmail(tb, "alice@example.org")
	// The person cancels the browser's passkey prompt.
	eval[bool](tb, `(() => { navigator.credentials.get = () => Promise.reject(new DOMException("cancelled", "NotAllowedError")); return true; })()`)
	tb.click("email-save")
	tb.waitFor("the refusal in #status", statusHas("No passkey was used"))
	if !eval[bool](tb, `document.querySelector("#email-section > .status").classList.contains("error")`) {
		t.Error("the cancelled step-up is not shown as an error next to the e-mail form")
	}
	if n := env.Count("users", "id = ? AND email = 'alice@example.org'", user.ID); n != 0 {
		t.Error("the address changed without a passkey check")
	}
	tb.shot("account-stepup-cancelled")

	// The tokens page (its own script) renews the check the same way, still stale here.
	tokens := env.Origin() + "/.latchkey/tokens"
	tb.navigate(tokens)
	tb.waitURL(tokens)
	tb.do(chromedp.SendKeys(chromedp.ID("token-name"), "backup"), chromedp.SendKeys(chromedp.ID("token-hosts"), "app.localhost"))
	tb.click("token-create")
	tb.waitFor("the new token", `!document.getElementById("token-new").hidden && document.getElementById("token-value").textContent.startsWith("lk_")`)
	if n := len(tb.gets()); n != 1 {
		t.Errorf("%d passkey requests on the tokens page, want the 1 step-up", n)
	}
	if n := env.Count("api_tokens", "user_id = ? AND revoked_at = 0", user.ID); n != 1 {
		t.Errorf("%d live tokens, want 1", n)
	}
	tb.shot("tokens-stepup-created")

	// Sign out everywhere needs no step-up (it only ends access); its box, checked by default,
	// revokes the token too, and the page says what ended.
	tb.navigate(account)
	tb.waitURL(account)
	tb.answerDialogs("")
	tb.click("revoke-all")
	tb.waitFor("what sign out everywhere ended", statusHas("1 session ended. 1 API token revoked."))
	if n := env.Count("api_tokens", "user_id = ? AND revoked_at = 0", user.ID); n != 0 {
		t.Errorf("%d live tokens after signing out everywhere", n)
	}
	if !tb.visible("sign-in-again") {
		t.Error("no way back in after signing out everywhere")
	}
	if n := env.Count("sessions", "user_id = ? AND revoked_at = 0", user.ID); n != 0 {
		t.Errorf("%d live sessions after signing out everywhere", n)
	}
	tb.shot("account-signed-out-everywhere")
}

// statusHas is a waitFor condition: a status line (#status, or the one next to an action)
// contains text.
func statusHas(text string) string {
	b, _ := json.Marshal(text)
	return fmt.Sprintf(`[...document.querySelectorAll(".status")].some(s => s.textContent.includes(%s))`, b)
}

func setEmail(tb *tab, v string) {
	tb.t.Helper()
	b, _ := json.Marshal(v)
	eval[bool](tb, fmt.Sprintf(`(() => { document.getElementById("email-input").value = %s; return true; })()`, b))
}

// TestAdminInlineStepUp: an admin page left open past the five minutes renews the passkey check
// in place when an action needs it, then carries the action out (here: disabling a user, which
// ends their sessions, tokens and links, audited with the admin as actor).
func TestAdminInlineStepUp(t *testing.T) {
	needBrowser(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	_, rootToken := env.AddUser("root", "admins")
	carol, _ := env.AddUser("carol")

	tb := newTab(t, tabOptions{})
	tb.addAuthenticator(authOptions{})
	tb.navigate(env.Origin() + "/.latchkey/enroll?token=" + url.QueryEscape(rootToken))
	tb.click("passkey-register")
	tb.waitFor("recovery codes", `!document.getElementById("codes").hidden`)
	userPage := env.Origin() + "/.latchkey/admin/users/" + carol.ID
	tb.navigate(userPage)
	tb.waitURL(userPage)
	tb.waitFor("carol's page", `!!document.getElementById("user-disable")`)

	env.Clock.Advance(6 * time.Minute)
	tb.answerDialogs("")
	tb.click("user-disable")
	tb.waitFor("carol disabled", `document.readyState === "complete" && !!document.getElementById("user-disabled")`)
	if loc := tb.location(); loc != userPage {
		t.Errorf("the admin ended up on %s, want %s (no trip through the login page)", loc, userPage)
	}
	if n := env.Count("audit", "event = 'user_disabled' AND user_id = ? AND detail LIKE 'actor=root target=carol %'", carol.ID); n != 1 {
		t.Errorf("%d user_disabled rows naming root and carol, want 1", n)
	}
	if n := env.Count("audit", "event = 'login'"); n != 1 {
		t.Errorf("%d login rows, want the 1 step-up", n)
	}
	tb.shot("admin-stepup-disabled")
}
