package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// overflowScript lists the elements that stick out of the viewport sideways (a page that scrolls
// horizontally on a phone), as "tag#id.class" strings.
const overflowScript = `(() => {
  const out = [];
  const w = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > w) out.push("document " + document.documentElement.scrollWidth + " > " + w);
  for (const e of document.querySelectorAll("main *")) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5)) out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : ""));
  }
  return out;
})()`

// TestPolishAccountPhone: on a 390 px phone the account page fits the screen, names this
// browser's session in short (the whole user agent in its title), links to the API tokens, and
// removing the passkey this browser signed in with lands on the login page. A dead recovery link
// gets an error page titled in plain words.
func TestPolishAccountPhone(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true})
	tb := newTab(t, tabOptions{phone: true})
	auth := enrol(t, tb, srv)
	tb.click("continue")
	tb.waitURL(srv.URL + "/.latchkey/account")

	if bad := eval[[]string](tb, overflowScript); len(bad) > 0 {
		tb.shot("account-overflow")
		t.Errorf("the account page is wider than a 390 px phone: %v", bad)
	}
	device := eval[string](tb, `(document.querySelector("#sessions .session-device") || {}).textContent || ""`)
	if device != "Chrome on Linux" {
		t.Errorf("this browser's session is shown as %q, want Chrome on Linux", device)
	}
	if !eval[bool](tb, `(document.querySelector("#sessions .session-device") || {}).title === navigator.userAgent`) {
		t.Error("the session's title is not the browser's whole user agent")
	}
	if !tb.visible("tokens-link") || eval[string](tb, `document.getElementById("tokens-link").getAttribute("href")`) != "/.latchkey/tokens" {
		t.Error("no visible link to the API tokens")
	}
	tb.shot("account-phone")

	// Unplugged first, so that the login page's conditional request cannot sign straight back in.
	tb.removeAuthenticator(auth)
	tb.answerDialogs("")
	tb.do(chromedp.Click(chromedp.CSS(`#passkeys li [data-action=remove]`)))
	tb.waitURL(srv.URL + "/.latchkey/login")
	tb.shot("after-removing-own-passkey")

	tb.navigate(srv.URL + "/.latchkey/recover?token=not-a-token")
	if h := eval[string](tb, `document.querySelector("h1").textContent`); h != "Link no longer valid" {
		t.Errorf("a dead recovery link's page says %q", h)
	}
	if bad := eval[[]string](tb, overflowScript); len(bad) > 0 {
		t.Errorf("the error page is wider than a 390 px phone: %v", bad)
	}
	tb.shot("dead-link-phone")
}
