package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// Issue 20 in the browser: passkeys named at creation and renamed in place, in-page dialogs, the
// WebAuthn Signal API, recovery codes to download and print, the recovery flow's follow-ups,
// dates in words. Every page is captured at 1280x800 and 390x844, light and dark.

var sizes = []struct {
	name string
	opts tabOptions
}{
	{"desktop", tabOptions{}},
	{"phone-dark", tabOptions{phone: true, dark: true}},
}

// cliPasskeys is `latchkey passkey list NAME` as rows of columns (split on runs of 2+ spaces).
func cliPasskeys(t *testing.T, srv *server, name string) [][]string {
	t.Helper()
	var rows [][]string
	split := regexp.MustCompile(`\s{2,}`)
	for i, line := range strings.Split(strings.TrimSpace(cli(t, srv, "passkey", "list", name)), "\n") {
		if i == 0 {
			if !strings.HasPrefix(line, "ID") {
				t.Fatalf("passkey list header %q", line)
			}
			continue
		}
		rows = append(rows, split.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

// waitCredentials waits until the authenticator holds n passkeys (the Signal API acts on it
// after the page's request).
func (tb *tab) waitCredentials(id cdpwebauthn.AuthenticatorID, n int, what string) {
	tb.t.Helper()
	deadline := time.Now().Add(step)
	for {
		got := len(tb.credentials(id))
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("%s: the authenticator holds %d passkeys, want %d", what, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// download clicks the link with this id and returns the file the browser saved under name.
func (tb *tab) download(id, name string) string {
	tb.t.Helper()
	dir := tb.t.TempDir()
	c := chromedp.FromContext(tb.ctx)
	if _, err := chromedp.Call(tb.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: c.BrowserContextID, DownloadPath: dir}); err != nil {
		tb.t.Fatalf("allowing downloads: %v", err)
	}
	tb.click(id)
	deadline := time.Now().Add(step)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			tb.t.Fatalf("no download %s after clicking #%s (folder holds %v)", name, id, entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setValue replaces an input's value as typing would.
func (tb *tab) setValue(id, v string) {
	tb.t.Helper()
	b, _ := json.Marshal(v)
	eval[bool](tb, fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = %s; e.dispatchEvent(new Event("input")); return true; })()`, id, b))
}

// TestNewPasskeyNamedInPlace: the enrolment page shows the new passkey's name (from its
// provider and the browser) in an editable field, and saving it renames the passkey; the account
// page lists it with "last used" set by the sign-in that just happened, in words, with the exact
// local time on hover; a passkey added on the account page joins the list in place with its name
// field; removing it asks in the in-page dialog, updates the list in place, says so next to the
// list and tells the authenticator (Signal API) to drop it; and that passkey's later sign-in is
// told it was removed, while the authenticator drops it again. The CLI names and identifies the
// passkeys as the console does.
func TestNewPasskeyNamedInPlace(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			srv := startServer(t, serverConfig{demo: true, yaml: "admin:\n  group: admins\n"})
			tb := newTab(t, sz.opts)
			first := enrol(t, tb, srv)
			tb.waitFor("the name field", `!document.getElementById("new-passkey").hidden`)
			if v := eval[string](tb, `document.getElementById("new-passkey-name").value`); v != "Chrome on Linux" {
				t.Errorf("the new passkey is called %q, want Chrome on Linux (unknown provider, this browser)", v)
			}
			tb.shot("enrol-name-field")
			tb.setValue("new-passkey-name", "Work laptop")
			tb.click("new-passkey-save")
			tb.waitFor("the name saved", `document.querySelector("#new-passkey > .status").textContent.includes("Work laptop")`)
			if rows := cliPasskeys(t, srv, "admin"); len(rows) != 1 || rows[0][1] != "Work laptop" {
				t.Fatalf("passkey list after renaming at enrolment: %v", rows)
			}
			tb.checkNoOverflow("enrolment page with codes and name")
			tb.shot("enrol-named")

			tb.click("continue")
			tb.waitURL(srv.URL + "/.latchkey/account")
			if got := eval[string](tb, `document.querySelector("#passkeys .passkey-name").textContent`); got != "Work laptop" {
				t.Errorf("the account page names the passkey %q", got)
			}
			// The enrolment signed in with the passkey: it was used just now, and the page says so.
			type shown struct{ Text, Title, DateTime string }
			lastUsed := func(tb *tab) shown {
				return eval[shown](tb, `(() => { const e = document.querySelector("#passkeys li .last-used time");
					return e ? {Text: e.textContent, Title: e.title, DateTime: e.dateTime} : {}; })()`)
			}
			if lu := lastUsed(tb); lu.Text != "just now" || lu.Title == "" || strings.Contains(lu.Title, "UTC") {
				t.Errorf("last used shows %+v, want \"just now\" with the local time as its title", lu)
			}

			// A sign-in in another browser: last used is the time that sign-in wrote.
			creds := tb.credentials(first)
			tb2 := newTab(t, sz.opts)
			tb2.addCredentials(tb2.addAuthenticator(authOptions{}), creds)
			tb2.navigate(srv.URL + "/.latchkey/login")
			tb2.waitURL(srv.URL + "/.latchkey/account") // the conditional request signs in
			lu := lastUsed(tb2)
			at, err := time.Parse(time.RFC3339, lu.DateTime)
			rows := cliPasskeys(t, srv, "admin")
			if err != nil || len(rows) != 1 || at.UTC().Format("2006-01-02 15:04") != rows[0][5] || lu.Text != "just now" {
				t.Errorf("after a sign-in the page shows last used %+v; the store says %v", lu, rows)
			}

			// A second passkey, added on the account page: the list grows in place.
			eval[bool](tb, `(() => { window.__lkSamePage = true; return true; })()`)
			tb.removeAuthenticator(first)
			second := tb.addAuthenticator(authOptions{})
			tb.click("passkey-add")
			tb.waitFor("two passkeys in place", `document.querySelectorAll("#passkeys li[data-id]").length === 2 && !document.getElementById("new-passkey").hidden`)
			if v := eval[string](tb, `document.getElementById("new-passkey-name").value`); v != "Chrome on Linux" {
				t.Errorf("the added passkey is called %q, want Chrome on Linux", v)
			}
			if !eval[bool](tb, `document.activeElement.id === "new-passkey-name"`) {
				t.Error("focus is not on the new passkey's name")
			}
			tb.shot("account-added-name-field")
			tb.setValue("new-passkey-name", "Phone")
			tb.click("new-passkey-save")
			tb.waitFor("the list renamed in place", `[...document.querySelectorAll("#passkeys .passkey-name")].some(e => e.textContent === "Phone")`)
			secondCreds := tb.credentials(second)
			secondID := base64.RawURLEncoding.EncodeToString(secondCreds[0].CredentialID)

			// The console's user page and the CLI show the same names and IDs.
			tb.navigate(srv.URL + "/.latchkey/admin")
			tb.waitURL(srv.URL + "/.latchkey/admin")
			tb.do(chromedp.Click(chromedp.CSS(`#users tbody tr[data-name="admin"] a`)))
			tb.waitURL(srv.URL + "/.latchkey/admin/users/")
			type pk struct{ ID, Name string }
			console := eval[[]pk](tb, `[...document.querySelectorAll("#passkeys li[data-id]")].map(li => ({ID: li.querySelector(".passkey-id").textContent, Name: li.querySelector(".passkey-name").textContent}))`)
			rows = cliPasskeys(t, srv, "admin")
			if len(console) != len(rows) {
				t.Fatalf("console lists %v, the CLI %v", console, rows)
			}
			for i := range rows {
				if console[i].ID != rows[i][0] || console[i].Name != rows[i][1] {
					t.Errorf("passkey %d: console %+v, CLI %v", i, console[i], rows[i])
				}
			}
			if sessions := eval[string](tb, `document.getElementById("sessions").textContent`); !strings.Contains(sessions, "Chrome on Linux") || !strings.Contains(sessions, "Work laptop") {
				t.Errorf("the user page's sessions lack the device or the passkey's name: %q", sessions)
			}
			tb.shot("admin-user-passkeys")
			tb.checkNoOverflow("admin user page")

			// Remove "Phone" from the account page, through the dialog.
			tb.navigate(srv.URL + "/.latchkey/account")
			tb.waitURL(srv.URL + "/.latchkey/account")
			eval[bool](tb, `(() => { window.__lkSamePage = true; return true; })()`)
			tb.do(chromedp.Click(chromedp.CSS(`#passkeys li[data-id="` + secondID + `"] [data-action=remove]`)))
			if title := tb.dialogOpen(); title != "Remove “Phone”?" {
				t.Errorf("the dialog asks %q", title)
			}
			if !eval[bool](tb, `document.activeElement.id === "lk-dialog-cancel"`) {
				t.Error("a dangerous dialog does not start on Cancel")
			}
			tb.shot("account-remove-dialog")
			// Escape cancels and gives the focus back to the button.
			tb.do(chromedp.KeyEvent("\x1b"))
			tb.waitFor("the dialog closed by Escape", `!document.getElementById("lk-dialog").open && document.activeElement.dataset.action === "remove"`)
			if n := eval[int](tb, `document.querySelectorAll("#passkeys li[data-id]").length`); n != 2 {
				t.Fatalf("Escape removed something: %d passkeys", n)
			}
			tb.answerDialogs("")
			tb.do(chromedp.Click(chromedp.CSS(`#passkeys li[data-id="` + secondID + `"] [data-action=remove]`)))
			tb.waitFor("one passkey in place", `document.querySelectorAll("#passkeys li[data-id]").length === 1`)
			if h := tb.text("last-passkey-hint"); !tb.visible("last-passkey-hint") || !strings.Contains(h, "only passkey") {
				t.Errorf("down to one passkey, the page says %q (shown: %v)", h, tb.visible("last-passkey-hint"))
			}
			if msg := tb.statusIn("passkeys-section"); !strings.Contains(msg, "Phone") || !strings.Contains(msg, "removed") {
				t.Errorf("next to the passkeys: %q", msg)
			}
			if !eval[bool](tb, `window.__lkSamePage === true`) {
				t.Error("the account page reloaded")
			}
			// signalAllAcceptedCredentials: the authenticator drops the removed passkey.
			tb.waitCredentials(second, 0, "after removing the passkey")
			tb.shot("account-removed-in-place")

			// The removed passkey, still in a password manager elsewhere, signs in: the page says
			// what happened and the authenticator drops it (signalUnknownCredential).
			tb3 := newTab(t, sz.opts)
			stale := tb3.addAuthenticator(authOptions{})
			tb3.addCredentials(stale, secondCreds)
			tb3.navigate(srv.URL + "/.latchkey/login")
			msg := tb3.waitStatus("error")
			if !strings.Contains(msg, "This passkey was removed from your account, or was never registered here") {
				t.Errorf("a removed passkey's sign-in says %q", msg)
			}
			tb3.waitCredentials(stale, 0, "after signing in with a removed passkey")
			tb3.shot("login-removed-passkey")
			if out := cli(t, srv, "audit", "--since", "1h"); !strings.Contains(out, "passkey not registered (removed or unknown)") {
				t.Errorf("the audit log does not say the passkey was not registered:\n%s", out)
			}
		})
	}
}

// TestLastPasskey: the account page says plainly what removing the only passkey means, and while
// no unused recovery code exists it explains the refusal before and next to the button.
func TestLastPasskey(t *testing.T) {
	needBrowser(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	user, token := env.AddUser("alice")
	account := env.Origin() + "/.latchkey/account"
	tb := newTab(t, tabOptions{phone: true})
	tb.addAuthenticator(authOptions{})
	tb.navigate(env.Origin() + "/.latchkey/enroll?token=" + url.QueryEscape(token))
	tb.click("passkey-register")
	tb.waitFor("recovery codes", `!document.getElementById("codes").hidden`)
	tb.navigate(account)
	tb.waitURL(account)
	if h := tb.text("last-passkey-hint"); !strings.Contains(h, "you will sign in with a recovery code until you add a passkey") {
		t.Errorf("with codes left the page says %q", h)
	}
	tb.do(chromedp.Click(chromedp.CSS(`#passkeys [data-action=remove]`)))
	tb.dialogOpen()
	if text := tb.text("lk-dialog-text"); !strings.Contains(text, "you will sign in with a recovery code (10 left) until you add a passkey") {
		t.Errorf("the dialog says %q", text)
	}
	tb.shot("last-passkey-dialog")
	tb.click("lk-dialog-cancel")

	// Every code used: the passkey cannot go, and the page says why.
	codes, err := env.Store.RecoveryCodes(t.Context(), user.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if err := env.Store.UseRecoveryCode(t.Context(), c.ID); err != nil {
			t.Fatal(err)
		}
	}
	tb.navigate(account)
	tb.waitURL(account)
	if h := tb.text("last-passkey-hint"); !strings.Contains(h, "no unused recovery code, so it cannot be removed") {
		t.Errorf("with no code left the page says %q", h)
	}
	tb.answerDialogs("")
	tb.do(chromedp.Click(chromedp.CSS(`#passkeys [data-action=remove]`)))
	tb.waitFor("the refusal", `document.querySelector("#passkeys-section > .status").classList.contains("error")`)
	if msg := tb.statusIn("passkeys-section"); !strings.Contains(msg, "would lock you out") {
		t.Errorf("the refusal next to the passkeys says %q", msg)
	}
	if n := env.Count("credentials", "user_id = ?", user.ID); n != 1 {
		t.Errorf("%d passkeys left, want the 1", n)
	}
	tb.checkNoOverflow("account page, last passkey")
	tb.shot("last-passkey-refused")
}

// TestRecoveryCodesSaved: after enrolment and after making new codes the page offers the codes
// as a text file (a Blob URL) and for print (a print stylesheet that shows only the codes), and
// the two columns of codes never touch, on a phone and on a desktop.
func TestRecoveryCodesSaved(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			srv := startServer(t, serverConfig{demo: true})
			tb := newTab(t, sz.opts)
			enrol(t, tb, srv)
			checkCodes(t, tb, "after enrolment")
			tb.click("continue")
			tb.waitURL(srv.URL + "/.latchkey/account")
			tb.answerDialogs("")
			tb.click("codes-regenerate")
			tb.waitFor("new codes", `!document.getElementById("codes").hidden`)
			// The message follows the codes once the page has updated the note on the last passkey.
			tb.waitFor("the message next to the button", `document.querySelector("#codes-section > .status.ok").textContent.includes("New recovery codes made")`)
			checkCodes(t, tb, "after making new codes")
			tb.shot("account-new-codes")
		})
	}
}

func checkCodes(t *testing.T, tb *tab, where string) {
	t.Helper()
	codes := eval[[]string](tb, `[...document.querySelectorAll("#code-list li")].map(li => li.textContent)`)
	if len(codes) != 10 {
		t.Fatalf("%s: %d codes", where, len(codes))
	}
	// Download: the link is a Blob URL whose text holds every code.
	href := eval[string](tb, `document.getElementById("download-codes").href`)
	if !strings.HasPrefix(href, "blob:") || eval[string](tb, `document.getElementById("download-codes").getAttribute("download")`) != "latchkey-recovery-codes.txt" {
		t.Errorf("%s: download link %q", where, href)
	}
	text := tb.download("download-codes", "latchkey-recovery-codes.txt")
	for _, c := range codes {
		if !strings.Contains(text, c) {
			t.Errorf("%s: the downloaded file lacks %s:\n%s", where, c, text)
		}
	}
	// The columns: between a code and the next column's number, at least 16 px.
	gap := eval[float64](tb, `(() => {
		const items = [...document.querySelectorAll("#code-list li")];
		let min = Infinity;
		for (const a of items) for (const b of items) {
			const ra = document.createRange(); ra.selectNodeContents(a);
			const ta = ra.getBoundingClientRect(), bb = b.getBoundingClientRect();
			if (bb.left > ta.right - 1 && Math.abs(bb.top - a.getBoundingClientRect().top) < 4) min = Math.min(min, bb.left - ta.right);
		}
		return min === Infinity ? 1000 : min;
	})()`)
	if gap < 16 {
		t.Errorf("%s: the code columns are %.1f px apart", where, gap)
	}
	tb.checkNoOverflow(where)
	// Print: only the codes are visible.
	tb.emulateMedia("print")
	visible := eval[[]string](tb, `[...document.querySelectorAll("h1, #status, .brand, #code-list, #download-codes, #personal-device-warning, #passkeys, #codes-regenerate")]
		.filter(e => getComputedStyle(e).visibility === "visible" && e.checkVisibility()).map(e => e.id || e.tagName.toLowerCase())`)
	if len(visible) != 1 || visible[0] != "code-list" {
		t.Errorf("%s: printing shows %v, want only the code list", where, visible)
	}
	tb.shot("print")
	tb.emulateMedia("")
}

// TestRecoveryFollowUps: a recovery (a code typed in lower case without dashes) gives a
// restricted session whose pages link straight to creating a passkey; after the new passkey the
// account page offers to sign out the other sessions and to remove the lost passkey, one click
// and one dialog each.
func TestRecoveryFollowUps(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true})
	lost := newTab(t, tabOptions{})
	auth := enrol(t, lost, srv)
	codes := eval[[]string](lost, `[...document.querySelectorAll("#code-list li")].map(li => li.textContent)`)
	creds := lost.credentials(auth)
	lost.removeAuthenticator(auth) // the device is gone; its session lives on

	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			code := codes[0]
			if sz.opts.phone {
				code = codes[1]
			}
			tb := newTab(t, sz.opts)
			tb.navigate(srv.URL + "/.latchkey/recover")
			tb.do(chromedp.SendKeys(chromedp.ID("recover-user"), "admin"),
				chromedp.SendKeys(chromedp.ID("recover-code"), strings.ToLower(strings.ReplaceAll(code, "-", ""))))
			tb.do(chromedp.Click(chromedp.CSS(`#recover-form button[type=submit]`)))
			tb.waitURL(srv.URL + "/.latchkey/enroll")
			tb.shot("recovery-enrol")
			// Elsewhere the restricted session is offered the way to a passkey.
			tb.navigate(srv.URL + "/.latchkey/login")
			tb.waitFor("the recovery note", `!!document.getElementById("recovery-create-passkey")`)
			tb.shot("recovery-login-page")
			tb.navigate(srv.URL + "/.latchkey/no-such-page")
			tb.waitFor("the error page's link", `!!document.getElementById("recovery-create-passkey")`)
			if href := eval[string](tb, `document.getElementById("recovery-create-passkey").getAttribute("href")`); href != srv.URL+"/.latchkey/enroll" {
				t.Errorf("the error page links to %q", href)
			}
			tb.click("recovery-create-passkey")
			tb.waitURL(srv.URL + "/.latchkey/enroll")

			tb.addAuthenticator(authOptions{})
			tb.click("passkey-register")
			tb.waitFor("the continue link", `!document.getElementById("continue").hidden && !document.getElementById("new-passkey").hidden`)
			if tb.visible("codes") {
				t.Error("recovery codes shown for a passkey that is not the first")
			}
			tb.shot("recovery-new-passkey")
			tb.click("continue")
			tb.waitURL(srv.URL + "/.latchkey/account?recovered=1")
			tb.waitFor("the follow-ups", `!!document.getElementById("after-recovery")`)
			lostRows := eval[[]string](tb, `[...document.querySelectorAll("#lost-passkeys li[data-id]")].map(li => li.dataset.id)`)
			wantLost := base64.RawURLEncoding.EncodeToString(creds[0].CredentialID)
			if sz.name == "desktop" && (len(lostRows) != 1 || lostRows[0] != wantLost) {
				t.Errorf("lost passkeys offered: %v, want the old one %s", lostRows, wantLost)
			}
			tb.shot("account-after-recovery")
			tb.checkNoOverflow("account page after a recovery")

			if sz.name != "desktop" {
				// The old passkey went in the desktop run; the phone run checks the page only.
				if len(lostRows) != 1 { // the desktop run's new passkey
					t.Errorf("lost passkeys offered after the second recovery: %v", lostRows)
				}
				return
			}
			tb.answerDialogs("")
			tb.click("end-other-sessions")
			tb.waitFor("the sessions ended", `document.querySelector("#after-recovery > .status").textContent.includes("other session")`)
			if n := eval[int](tb, `document.querySelectorAll("#sessions li[data-id]").length`); n != 1 {
				t.Errorf("%d sessions listed after ending the others, want this one", n)
			}
			if got := lost.fetchStatus("/.latchkey/account"); got == 200 {
				t.Error("the lost device's session still opens the account page")
			}
			tb.do(chromedp.Click(chromedp.CSS(`#lost-passkeys [data-action=remove-lost]`)))
			tb.waitFor("the lost passkey removed", `!document.querySelector("#lost-passkeys li[data-id]") && document.querySelectorAll("#passkeys li[data-id]").length === 1`)
			if msg := tb.statusIn("after-recovery"); !strings.Contains(msg, "removed") {
				t.Errorf("next to the lost passkeys: %q", msg)
			}
			tb.shot("account-after-recovery-done")
		})
	}
}

// TestNativeDialogRecorder: the recorder every tab carries (nativeDialogScript) catches a page
// that calls window.confirm, so the whole suite fails on one; this test takes its own catch back.
func TestNativeDialogRecorder(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true})
	tb := newTab(t, tabOptions{})
	tb.navigate(srv.URL + "/.latchkey/login")
	if got := eval[bool](tb, `window.confirm("probe")`); got {
		t.Error("the recorder's confirm answered true")
	}
	deadline := time.Now().Add(step)
	for {
		tb.mu.Lock()
		caught := -1
		for i, e := range tb.errs {
			if strings.Contains(e, "window.confirm: probe") {
				caught = i
			}
		}
		if caught >= 0 {
			tb.errs = append(tb.errs[:caught], tb.errs[caught+1:]...)
		}
		tb.mu.Unlock()
		if caught >= 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a call of window.confirm was not recorded")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokensInPlace: on the tokens page a new token joins the list and a revoked one changes
// state without a reload, each message next to what caused it; revoking asks in the dialog.
func TestTokensInPlace(t *testing.T) {
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			srv := startServer(t, serverConfig{demo: true})
			tb := newTab(t, sz.opts)
			enrol(t, tb, srv)
			tb.navigate(srv.URL + "/.latchkey/tokens")
			tb.waitURL(srv.URL + "/.latchkey/tokens")
			eval[bool](tb, `(() => { window.__lkSamePage = true; return true; })()`)
			tb.do(chromedp.SendKeys(chromedp.ID("token-name"), "backup"), chromedp.SendKeys(chromedp.ID("token-hosts"), "app.localhost"))
			tb.click("token-create")
			tb.waitFor("the token listed", `[...document.querySelectorAll("#tokens li[data-id]")].some(li => li.textContent.includes("backup"))`)
			if msg := tb.statusIn("token-form"); !strings.Contains(msg, "backup") || !strings.Contains(msg, "Copy it now") {
				t.Errorf("next to the form: %q", msg)
			}
			if txt := eval[string](tb, `document.querySelector("#tokens li[data-id] time").title`); txt == "" {
				t.Error("the token's dates have no exact time on hover")
			}
			tb.shot("token-created")
			tb.answerDialogs("")
			tb.do(chromedp.Click(chromedp.CSS(`#tokens [data-token-action=revoke]`)))
			tb.waitFor("the token revoked in place", `document.querySelector("#tokens li[data-id]").dataset.status === "revoked" && !document.querySelector("#tokens [data-token-action=revoke]")`)
			if msg := eval[string](tb, `document.querySelector("#tokens + .status").textContent`); !strings.Contains(msg, "revoked") {
				t.Errorf("next to the list: %q", msg)
			}
			if !eval[bool](tb, `window.__lkSamePage === true`) {
				t.Error("the tokens page reloaded")
			}
			tb.checkNoOverflow("tokens page")
			tb.shot("token-revoked")
		})
	}
}

// TestSignalCurrentUserDetails: after a sign-in the page tells the password manager the user's
// current names (signalCurrentUserDetails), so a display name changed since the passkey was made
// shows up in the browser's passkey list.
func TestSignalCurrentUserDetails(t *testing.T) {
	needBrowser(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	user, token := env.AddUser("alice")
	tb := newTab(t, tabOptions{})
	a := tb.addAuthenticator(authOptions{})
	tb.navigate(env.Origin() + "/.latchkey/enroll?token=" + url.QueryEscape(token))
	tb.click("passkey-register")
	tb.waitFor("recovery codes", `!document.getElementById("codes").hidden`)
	creds := tb.credentials(a)
	if len(creds) != 1 || creds[0].UserDisplayName != user.DisplayName || user.DisplayName == "Alice Liddell" {
		t.Fatalf("the new passkey holds %d credentials, display name %q", len(creds), creds[0].UserDisplayName)
	}

	user.DisplayName = "Alice Liddell"
	if err := env.Store.UpdateUser(t.Context(), user); err != nil {
		t.Fatal(err)
	}
	env.Refresh()
	tb2 := newTab(t, tabOptions{})
	a2 := tb2.addAuthenticator(authOptions{})
	tb2.addCredentials(a2, creds)
	tb2.navigate(env.Origin() + "/.latchkey/login")
	tb2.waitURL(env.Origin() + "/.latchkey/account")
	deadline := time.Now().Add(step)
	for {
		c := tb2.credentials(a2)
		if len(c) == 1 && c[0].UserDisplayName == "Alice Liddell" && c[0].UserName == "alice" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sign-in the authenticator holds %+v, want the display name Alice Liddell", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDarkDesktop captures the account page and the console at 1280x800 in dark mode (the
// other tests take the phone in dark mode), with the in-page dialog open once.
func TestDarkDesktop(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true, yaml: "admin:\n  group: admins\n"})
	tb := newTab(t, tabOptions{dark: true})
	enrol(t, tb, srv)
	if !eval[bool](tb, `matchMedia("(prefers-color-scheme: dark)").matches`) {
		t.Fatal("the tab is not in dark mode")
	}
	for _, p := range []struct{ name, path, ready string }{
		{"account", "/.latchkey/account", "passkeys"},
		{"tokens", "/.latchkey/tokens", "tokens"},
		{"admin-users", "/.latchkey/admin", "users"},
		{"admin-audit", "/.latchkey/admin/audit", "audit"},
	} {
		tb.navigate(srv.URL + p.path)
		tb.waitURL(srv.URL + p.path)
		tb.waitFor(p.name, `!!document.getElementById("`+p.ready+`")`)
		tb.checkNoOverflow(p.name)
		tb.shot("dark-" + p.name)
	}
	tb.navigate(srv.URL + "/.latchkey/admin")
	tb.waitURL(srv.URL + "/.latchkey/admin")
	tb.do(chromedp.Click(chromedp.CSS(`#users tbody tr[data-name="admin"] a`)))
	tb.waitURL(srv.URL + "/.latchkey/admin/users/")
	tb.shot("dark-admin-user")
	tb.navigate(srv.URL + "/.latchkey/account")
	tb.waitURL(srv.URL + "/.latchkey/account")
	tb.do(chromedp.Click(chromedp.CSS(`#passkeys [data-action=rename]`)))
	tb.dialogOpen()
	if !eval[bool](tb, `document.activeElement.id === "lk-dialog-input"`) {
		t.Error("the rename dialog does not start in its field")
	}
	tb.shot("dark-rename-dialog")
	tb.do(chromedp.KeyEvent("\x1b"))
	tb.waitFor("the dialog closed, focus back on Rename", `!document.getElementById("lk-dialog").open && document.activeElement.dataset.action === "rename"`)
}
