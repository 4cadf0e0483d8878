package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAdminConsole runs the admin console (issue 12) in the browser: the bootstrap admin (group
// admins), freshly verified by the enrolment, opens /.latchkey/admin without a step-up, adds a
// user (enrolment link and QR code shown once), disables and enables them, and reads the audit
// log; every admin page is captured at desktop size and at 390x844, where nothing may be wider
// than the screen. A user outside the admin group gets 403.
func TestAdminConsole(t *testing.T) {
	srv := startServer(t, serverConfig{demo: true, yaml: "admin:\n  group: admins\n"})
	admin := srv.URL + "/.latchkey/admin"

	tb := newTab(t, tabOptions{})
	auth := enrol(t, tb, srv)
	creds := tb.credentials(auth)
	tb.removeAuthenticator(auth) // the phone tab below signs in with a copy

	// Fresh from the enrolment: no trip through the step-up page.
	tb.navigate(admin)
	tb.waitURL(admin)
	if loc := tb.location(); loc != admin {
		t.Fatalf("a freshly verified admin was sent to %s", loc)
	}
	if got := tb.text("signed-in-user"); got != "admin" {
		t.Errorf("admin page signed in as %q, want admin", got)
	}
	if tb.visible("enrolment") {
		t.Error("the enrolment link box shows before any user was added")
	}
	tb.shot("admin-users")
	tb.checkNoLayoutShift("admin users page")

	// Add a user in the dialog: the link and its QR code are shown once.
	tb.click("user-add-open")
	tb.waitFor("the add-user dialog", `document.getElementById("user-add-dialog").open && document.activeElement.id === "user-name"`)
	tb.do(
		chromedp.SendKeys(chromedp.ID("user-name"), "dave"),
		chromedp.SendKeys(chromedp.ID("user-display"), "Dave Lister"),
		chromedp.SendKeys(chromedp.ID("user-email"), "dave@example.com"),
		chromedp.SendKeys(chromedp.ID("user-groups"), "crew, family"),
	)
	tb.click("user-add-submit")
	if msg := tb.waitStatus("ok"); !strings.Contains(msg, "dave") {
		t.Errorf("#status after adding = %q, want it to name dave", msg)
	}
	tb.waitFor("the enrolment link", `!document.getElementById("enrolment").hidden`)
	link := tb.text("enrolment-link")
	if !strings.HasPrefix(link, srv.URL+"/.latchkey/enroll?token=") {
		t.Errorf("enrolment link %q, want %s/.latchkey/enroll?token=...", link, srv.URL)
	}
	if href := eval[string](tb, `document.getElementById("enrolment-link").href`); href != link {
		t.Errorf("enrolment link href %q differs from its text %q", href, link)
	}
	tb.waitFor("the QR code to load", `(() => { const i = document.getElementById("enrolment-qr");
		return i.complete && i.naturalWidth >= 100 && i.src.startsWith("data:image/png;base64,"); })()`)
	if !tb.visible("enrolment-qr") {
		t.Error("the QR code is not visible")
	}
	if got := tb.text("enrolment-user"); got != "dave" {
		t.Errorf("enrolment box names %q, want dave", got)
	}
	if v := eval[string](tb, `document.getElementById("user-name").value`); v != "" {
		t.Errorf("the form still holds %q after adding", v)
	}
	tb.shot("admin-user-added")
	tb.checkNoOverflow("admin users page with the enrolment link")

	if !tb.visible("enrolment-localhost") {
		t.Error("no warning next to the QR code of a localhost link")
	} else if w := tb.text("enrolment-localhost"); !strings.Contains(w, "phone cannot open") || !strings.Contains(w, "ssh -L") || !strings.Contains(w, "public_url") {
		t.Errorf("the localhost warning says %q", w)
	}
	// The list behind the dialog already has dave: it updated in place.
	if !eval[bool](tb, `[...document.querySelectorAll("#users tbody tr")].some(tr => tr.dataset.name === "dave")`) {
		t.Error("the users table lacks dave before a reload")
	}
	tb.click("enrolment-done")
	tb.waitFor("the dialog closed, focus back on its button", `!document.getElementById("user-add-dialog").open && document.activeElement.id === "user-add-open"`)
	if msg := tb.statusIn("users-section"); !strings.Contains(msg, "dave") {
		t.Errorf("the users list says %q after adding, want it to name dave", msg)
	}
	tb.shot("admin-user-added-list")

	tb.do(chromedp.Reload())
	tb.waitFor("the users page after a reload", `document.readyState === "complete" && !!document.querySelector('#users tbody tr')`)
	if body := eval[string](tb, `document.body.innerText`); strings.Contains(body, link) {
		t.Error("the enrolment link is shown again after a reload")
	}
	if tb.visible("enrolment") {
		t.Error("the enrolment box is visible after a reload")
	}
	row := eval[string](tb, `[...document.querySelectorAll("#users tbody tr")].map(tr => tr.textContent.replace(/\s+/g, " ")).find(t => t.includes("dave")) || ""`)
	for _, want := range []string{"Dave Lister", "crew, family", "0 passkeys", "never", "not enrolled"} {
		if !strings.Contains(row, want) {
			t.Errorf("users list row %q lacks %q", row, want)
		}
	}

	// Disable and enable dave on his page.
	// The list links users by ID; click the link that names dave.
	if !eval[bool](tb, `(() => { const a = [...document.querySelectorAll("#users tbody a")].find(a => a.textContent.trim() === "dave");
		if (a) a.click(); return !!a; })()`) {
		t.Fatal("no link to dave in the users list")
	}
	tb.waitURL(admin + "/users/")
	if got := eval[string](tb, `document.getElementById("page").dataset.name`); got != "dave" {
		t.Fatalf("user page for %q, want dave", got)
	}
	userPage := tb.location()
	tb.shot("admin-user")
	tb.answerDialogs("")
	eval[bool](tb, `(() => { window.__lkSamePage = true; return true; })()`)
	tb.click("user-disable")
	tb.waitFor("dave disabled", `document.readyState === "complete" && !!document.getElementById("user-disabled") && !!document.getElementById("user-enable")`)
	if msg := tb.statusIn("account-section"); !strings.Contains(msg, "Disabled dave") {
		t.Errorf("next to the actions: %q, want what disabling ended", msg)
	}
	tb.shot("admin-user-disabled")
	tb.click("user-enable")
	tb.waitFor("dave enabled", `document.readyState === "complete" && !document.getElementById("user-disabled") && !!document.getElementById("user-disable")`)
	if !eval[bool](tb, `window.__lkSamePage === true`) {
		t.Error("the user page reloaded; it should update in place")
	}
	tb.shot("admin-user-enabled")
	tb.checkNoLayoutShift("admin user page")

	// The audit log shows what was done, newest first.
	tb.navigate(admin + "/audit")
	tb.waitURL(admin + "/audit")
	events := eval[[]string](tb, `[...document.querySelectorAll("#audit tbody tr .event-name")].map(td => td.textContent)`)
	want := []string{"User enabled", "User disabled", "User added"}
	if len(events) < len(want) {
		t.Fatalf("audit log events %v, want at least %v first", events, want)
	}
	for i, w := range want {
		if events[i] != w {
			t.Errorf("audit log events %v, want %v first", events, want)
			break
		}
	}
	type auditRow struct{ Event, Actor, Target, Detail, When, Exact string }
	rows := eval[[]auditRow](tb, `[...document.querySelectorAll("#audit tbody tr[data-event]")].map(tr => ({Event: tr.dataset.event,
		Actor: tr.querySelector(".actor").textContent, Target: tr.querySelector(".target").textContent,
		Detail: tr.querySelector(".detail").textContent, When: tr.querySelector("time").textContent, Exact: tr.querySelector("time").title}))`)
	var disabledRow, addedPasskey *auditRow
	for i := range rows {
		switch rows[i].Event {
		case "user_disabled":
			disabledRow = &rows[i]
		case "passkey_added":
			addedPasskey = &rows[i]
		}
	}
	if disabledRow == nil || disabledRow.Actor != "admin" || disabledRow.Target != "dave" || strings.Contains(disabledRow.Detail, "actor=") {
		t.Errorf("the user_disabled row: %+v, want actor admin and target dave in their own columns", disabledRow)
	}
	if disabledRow != nil && (disabledRow.When != "just now" || disabledRow.Exact == "" || strings.Contains(disabledRow.Exact, "UTC")) {
		t.Errorf("the row's time: %q (title %q), want words and the local time on hover", disabledRow.When, disabledRow.Exact)
	}
	if addedPasskey == nil || addedPasskey.Detail != "passkey “Chrome on Linux”" {
		t.Errorf("the passkey_added row: %+v, want the passkey by name", addedPasskey)
	}
	tb.shot("admin-audit")
	// The event dropdown filters.
	tb.do(chromedp.SetValue(chromedp.ID("audit-event"), "user_disabled"))
	tb.do(chromedp.Click(chromedp.CSS(`#audit-filter button[type=submit]`)))
	tb.waitURL(admin + "/audit?")
	if n := eval[int](tb, `document.querySelectorAll("#audit tbody tr[data-event]").length`); n != 1 {
		t.Errorf("audit log filtered by event: %d rows, want 1", n)
	}
	if got := eval[string](tb, `document.getElementById("audit-event").selectedOptions[0].textContent`); got != "User disabled" {
		t.Errorf("the dropdown shows %q after filtering", got)
	}
	tb.shot("admin-audit-filtered")
	// A date range: today (UTC) holds the rows, tomorrow none.
	today := time.Now().UTC().Format("2006-01-02")
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
	for _, c := range []struct {
		from, to string
		some     bool
	}{{today, today, true}, {tomorrow, "", false}, {"", today, true}} {
		tb.navigate(admin + "/audit?event=user_disabled&from=" + c.from + "&to=" + c.to)
		tb.waitURL(admin + "/audit?")
		if n := eval[int](tb, `document.querySelectorAll("#audit tbody tr[data-event]").length`); (n > 0) != c.some {
			t.Errorf("from %q to %q: %d rows", c.from, c.to, n)
		}
		if got := eval[string](tb, `document.getElementById("audit-from").value`); got != c.from {
			t.Errorf("the from field shows %q, want %q", got, c.from)
		}
	}

	// The same pages on a phone: sign in with a copy of the passkey (the page's conditional
	// request signs in at once), then nothing may stick out of the 390 px screen.
	ph := newTab(t, tabOptions{phone: true, dark: true})
	ph.addCredentials(ph.addAuthenticator(authOptions{}), creds)
	ph.navigate(admin)
	ph.waitURL(admin) // through the login page, then back with a fresh verification
	for _, p := range []struct{ name, url, ready string }{
		{"phone-admin-users", admin, "users"},
		{"phone-admin-user", userPage, "passkeys"},
		{"phone-admin-audit", admin + "/audit", "audit"},
	} {
		ph.navigate(p.url)
		ph.waitURL(p.url)
		ph.waitFor(p.name, `!!document.getElementById("`+p.ready+`")`)
		ph.shot(p.name)
		ph.checkNoOverflow(p.name)
		ph.checkButtonsOneLine(p.name)
	}
	ph.navigate(admin)
	ph.waitURL(admin)
	ph.click("user-add-open")
	ph.do(chromedp.SendKeys(chromedp.ID("user-name"), "kryten"))
	ph.click("user-add-submit")
	ph.waitFor("the enrolment link", `!document.getElementById("enrolment").hidden`)
	ph.waitFor("the QR code to load", `document.getElementById("enrolment-qr").naturalWidth > 0`)
	ph.shot("phone-admin-user-added")
	ph.checkNoOverflow("phone admin users page with the enrolment link")

	// A signed-in user outside the admin group: 403, for the pages and the API.
	carol, _ := enrolUser(t, srv, addUser(t, srv, "carol", "--groups", "family"))
	for _, path := range []string{"/.latchkey/admin", "/.latchkey/admin/audit", "/.latchkey/admin/users/x"} {
		if got := carol.fetchStatus(path); got != 403 {
			t.Errorf("non-admin GET %s: status %d, want 403", path, got)
		}
	}
	api := eval[int](carol, `fetch("/.latchkey/api/admin/users", {method: "POST", credentials: "same-origin",
		headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "mallory"})}).then(r => r.status)`)
	if api != 403 {
		t.Errorf("non-admin POST /.latchkey/api/admin/users: status %d, want 403", api)
	}
	carol.navigate(admin)
	carol.waitFor("the refusal page", `document.readyState === "complete"`)
	if body := eval[string](carol, `document.body.innerText`); !strings.Contains(body, "administrators") || strings.Contains(body, "All users") {
		t.Errorf("non-admin on /.latchkey/admin sees %q", body)
	}
	carol.shot("non-admin-403")
}
