package e2e

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/auth"
)

// How each shipped language is chosen in TestEveryPageInEveryLanguage: English is what the
// browser asks for (Chromium sends en-US); Dutch comes from the browser's Accept-Language alone,
// with no switcher and so no cookie; the others from the switcher's link on the first page,
// remembered by the latchkey_lang cookie for every page after it. Each language has its own user,
// an administrator, enrolled on its own link in its own browser.
var everyPageReaders = map[string]struct {
	user, display  string
	acceptLanguage string // set: the browser asks for it, and the switcher is never used
}{
	"en": {user: "emma", display: "Emma Woodhouse"},
	"de": {user: "dora", display: "Dora Brandt"},
	"fr": {user: "fanny", display: "Fanny Morel"},
	"es": {user: "elena", display: "Elena Ruiz"},
	// Chromium writes the q-values of the header itself: the override is a plain list.
	"nl": {user: "noor", display: "Noor de Vries", acceptLanguage: "nl-NL,nl"},
}

// TestEveryPageInEveryLanguage (issue 21) opens every page a person can see, in each shipped
// language, in Chromium through the real server: login, recovery, the error page, enrolment with
// its recovery codes, the account page (a passkey, a session, ten unused codes), API tokens (the
// new token shown once, then the list), the admin console's users, a user's page and the audit
// log, the OpenID apps console, an app's consent page and its refusal, and the proxy's pages:
// forbidden, application not answering, and nothing served at an address. Each page has <html
// lang> set to the language, is captured (NN-page-lang.png), and for any language but English
// must show no English: no English catalogue key (auth.Translations), no English sentence outside
// the catalogue, no relative time or exact time in English words. The admin users list shows a
// passkey count in the singular and plural form the language's plural rules ask for (French says
// "0" in the singular).
//
// Every finding names its page; the end of the test logs which pages leak English in which
// languages.
func TestEveryPageInEveryLanguage(t *testing.T) {
	needBrowser(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dead, err := freePort() // the address of an application that is down: nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	host := "localhost:" + strconv.Itoa(port)
	srv := startServer(t, serverConfig{port: port, yaml: fmt.Sprintf(`admin:
  group: admins
access_control:
  default_policy: deny
  rules:
    - hosts: [%[1]q]
      paths: ["^/private"]
      policy: deny
    - hosts: [%[1]q]
      policy: passkey
routes:
  - host: %[1]q
    upstream: "http://127.0.0.1:%[2]d"
`, host, dead)})
	// Another name for the same server, routed nowhere: the proxy's "nothing is served here"
	// (the latchkey_lang cookie of localhost does not reach it).
	unrouted := "http://127.0.0.1:" + strconv.Itoa(port)

	photos := cli(t, srv, "oidc", "client", "add", "Photos", "--redirect-uri", "http://localhost:1/oauth2/callback", "--groups", "family")
	ledger := cli(t, srv, "oidc", "client", "add", "Ledger", "--redirect-uri", "http://localhost:1/callback", "--groups", "accounting")
	apps := map[string]string{"consent": lineValue(t, photos, "client_id"), "app-refused": lineValue(t, ledger, "client_id")}
	addUser(t, srv, "dave", "--display-name", "Dave Lister", "--groups", "crew") // never enrolled: 0 passkeys
	links := map[string]string{}
	for _, tag := range auth.Shipped {
		code := tag.String()
		r, ok := everyPageReaders[code]
		if !ok {
			t.Fatalf("shipped language %s has no reader in everyPageReaders", code)
		}
		links[code] = addUser(t, srv, r.user, "--display-name", r.display, "--email", r.user+"@example.com", "--groups", "admins,family")
	}

	report := &leakReport{}
	start := time.Now()
	for _, tag := range auth.Shipped {
		code := tag.String()
		t.Run(code, func(t *testing.T) {
			everyPageIn(t, srv, code, links[code], unrouted, apps, report)
		})
	}
	t.Logf("%d languages in %s; %s", len(auth.Shipped), time.Since(start).Round(time.Second), report.summary())
}

// everyPageIn walks every page in one language, in one browser that signs in once (by enrolling).
func everyPageIn(t *testing.T, srv *server, code, enrolLink, unrouted string, apps map[string]string, report *leakReport) {
	r := everyPageReaders[code]
	// What the test put in, shown as it is in every language: names, groups, apps, a token.
	data := map[string]bool{"admin": true, "dave": true, "Dave Lister": true, "crew": true, "admins": true, "family": true,
		"admins, family": true, "Photos": true, "Ledger": true, "backup": true, "grafana.example.com": true}
	for _, rd := range everyPageReaders {
		data[rd.user], data[rd.display], data[rd.user+"@example.com"] = true, true, true
	}
	finder := newLeakFinder(code)
	if code != "en" && len(finder.keys) == 0 {
		t.Fatalf("no English keys to look for in %s", code)
	}
	tb := newTab(t, tabOptions{})
	tb.addAuthenticator(authOptions{}) // empty until the enrolment: the login page's conditional request fails
	if r.acceptLanguage != "" {
		ua := eval[string](tb, `navigator.userAgent`)
		if _, err := chromedp.Call(tb.ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: r.acceptLanguage}); err != nil {
			t.Fatalf("asking for %s: %v", r.acceptLanguage, err)
		}
	}

	// check looks at the page the tab shows, named page in failures and screenshots.
	check := func(page string) {
		t.Helper()
		tb.waitFor(page+" loaded", `document.readyState === "complete"`)
		// latchkey.js puts local words on the times; give it a moment, then judge what it did.
		deadline := time.Now().Add(3 * time.Second)
		for !eval[bool](tb, `[...document.querySelectorAll("time")].every(e => !e.title.includes("UTC"))`) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := eval[string](tb, `document.documentElement.lang`); got != code {
			t.Errorf("%s: <html lang=%q>, want %q (at %s)", page, got, code, tb.location())
		}
		if cur := eval[string](tb, `(document.querySelector("#languages [aria-current]") || {}).lang || ""`); cur != "" && cur != code {
			t.Errorf("%s: the switcher marks %q as current", page, cur)
		}
		tb.shot(page + "-" + code)
		if code == "en" {
			return
		}
		text, items := tb.words()
		keys, sentences := finder.find(text), englishSentences(text)
		for _, w := range finder.findWhole(items, data) {
			if !slices.Contains(keys, w) {
				keys = append(keys, w)
			}
		}
		times := eval[[]string](tb, timeCheckScript)
		if len(keys)+len(sentences)+len(times) == 0 {
			return
		}
		report.add(page, code)
		var b strings.Builder
		fmt.Fprintf(&b, "%s in %s: English left (%s)", page, code, tb.location())
		if len(keys) > 0 {
			fmt.Fprintf(&b, "\n    catalogue keys: %s", strings.Join(keys, ", "))
		}
		if len(sentences) > 0 {
			fmt.Fprintf(&b, "\n    sentences outside the catalogue: %s", strings.Join(sentences, ", "))
		}
		if len(times) > 0 {
			fmt.Fprintf(&b, "\n    script-made times: %s", strings.Join(times, ", "))
		}
		t.Error(b.String())
	}
	// choose picks the language on a page that came in the browser's language.
	choose := func(where string) {
		t.Helper()
		if code == "en" || r.acceptLanguage != "" {
			return
		}
		if got := eval[string](tb, `document.documentElement.lang`); got != "en" {
			t.Fatalf("%s before choosing: in %q, want en (the browser's language)", where, got)
		}
		tb.do(chromedp.Click(chromedp.CSS(`#languages a[lang="` + code + `"]`)))
		tb.waitFor(where+" in "+code, `document.readyState === "complete" && document.documentElement.lang === "`+code+`"`)
	}
	visit := func(page, addr, ready string) {
		t.Helper()
		tb.navigate(addr)
		if ready != "" {
			tb.waitFor(page, ready)
		}
		check(page)
	}

	// Signed out: the language is chosen here, then only remembered (or asked for by the browser).
	tb.navigate(srv.URL + "/.latchkey/login")
	tb.waitConditionalSettled()
	choose("the login page")
	tb.waitFor("the login page", `!!document.getElementById("passkey-login")`)
	check("login")
	visit("recover", srv.URL+"/.latchkey/recover", "")
	visit("not-found", srv.URL+"/.latchkey/no-such-page", "")

	// Enrolment on the reader's own link; the codes are shown once, with the passkey's name.
	visit("enroll", enrolLink, `!!document.getElementById("passkey-register")`)
	tb.click("passkey-register")
	tb.waitFor("the recovery codes", `!document.getElementById("codes").hidden && document.querySelectorAll("#code-list li").length === 10`)
	check("enroll-codes")
	// The device a passkey or a session was made on is named in words ("Chrome on Linux"):
	// those words are the language's too. auth.DeviceSummary says them in English.
	english := auth.DeviceSummary(eval[string](tb, `navigator.userAgent`))
	device := func(page, what, expr string) {
		t.Helper()
		got := strings.TrimSpace(eval[string](tb, expr))
		switch {
		case code == "en" && got != english:
			t.Errorf("%s in en: %s %q, want %q", page, what, got, english)
		case code != "en" && got == english:
			report.add(page+" (device)", code)
			t.Errorf("%s in %s: %s %q is English", page, code, what, got)
		}
	}
	device("enroll-codes", "the new passkey's suggested name", `document.getElementById("new-passkey-name").value`)

	// Signed in, and freshly verified: the pages that ask for a recent passkey check let us in.
	tb.click("continue")
	tb.waitURL(srv.URL + "/.latchkey/account")
	tb.waitFor("the account page", `document.querySelectorAll("#passkeys li[data-id]").length === 1`)
	check("account")
	device("account", "this browser's session", `(document.querySelector("#sessions li[data-current] .session-device") || {}).textContent || ""`)

	visit("tokens", srv.URL+"/.latchkey/tokens", `!!document.getElementById("token-form")`)
	tb.setValue("token-name", "backup")
	tb.setValue("token-hosts", "grafana.example.com")
	tb.click("token-create")
	tb.waitFor("the new token", `!document.getElementById("token-new").hidden && document.getElementById("token-value").textContent !== ""`)
	check("token-created")
	visit("tokens-list", srv.URL+"/.latchkey/tokens", `document.querySelectorAll("#tokens li[data-id]").length === 1`)

	admin := srv.URL + "/.latchkey/admin"
	visit("admin-users", admin, `!!document.querySelector('#users tbody tr[data-name="`+r.user+`"]')`)
	checkPasskeyCounts(t, tb, code, r.user)
	id := eval[string](tb, `document.querySelector('#users tbody tr[data-name="`+r.user+`"]').dataset.id`)
	visit("admin-user", admin+"/users/"+id, `document.querySelectorAll("#passkeys li[data-id]").length === 1`)
	visit("admin-audit", admin+"/audit", `document.querySelectorAll("#audit tbody tr").length > 0`)
	visit("apps", srv.URL+"/.latchkey/oidc/admin", `!!document.getElementById("oidc-client-add")`)

	// An app asks to sign the reader in: the consent page (left unanswered); an app of a group
	// the reader is not in is refused.
	for _, page := range []string{"consent", "app-refused"} {
		q := url.Values{"client_id": {apps[page]}, "redirect_uri": {"http://localhost:1/oauth2/callback"}, "response_type": {"code"},
			"scope": {"openid email profile groups"}, "state": {"s-" + code}, "nonce": {"n-" + code},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		if page == "app-refused" {
			q.Set("redirect_uri", "http://localhost:1/callback")
		}
		tb.navigate(srv.URL + "/.latchkey/oidc/authorize?" + q.Encode())
		if page == "consent" {
			tb.waitURL(srv.URL + "/.latchkey/oidc/login?")
			tb.do(chromedp.WaitVisible(chromedp.ID("oidc-allow")))
		}
		check(page)
	}

	// The proxy's pages for an address Latchkey guards.
	visit("forbidden", srv.URL+"/private/payroll", "")
	visit("not-answering", srv.URL+"/dashboards/1", "")
	tb.navigate(unrouted + "/anything")
	choose("the unrouted address")
	check("nothing-here")

	// The switcher's choice is what the cookie remembers; a browser's own language needs none.
	res, err := chromedp.Call(tb.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/", unrouted + "/"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	remembered := map[string]string{}
	for _, c := range res.Cookies {
		if c.Name == "latchkey_lang" {
			remembered[c.Domain] = c.Value
		}
	}
	want := map[string]string{"localhost": code, "127.0.0.1": code}
	if code == "en" || r.acceptLanguage != "" {
		want = map[string]string{}
	}
	if fmt.Sprint(remembered) != fmt.Sprint(want) {
		t.Errorf("latchkey_lang cookies by domain %v, want %v", remembered, want)
	}

}

// digitsRe finds the count in a rendered message.
var digitsRe = regexp.MustCompile(`\d+`)

// checkPasskeyCounts reads the passkey counts of the admin users list: the reader's own row (1
// passkey) and dave's (0). Where the language's plural rules put 0 and 1 in the same category
// (French: "0 clé d'accès"), the two must read alike but for the number; elsewhere they must
// differ (English "1 passkey", "0 passkeys").
func checkPasskeyCounts(t *testing.T, tb *tab, code, user string) {
	t.Helper()
	count := func(name string) string {
		return strings.TrimSpace(oneLine(eval[string](tb, `(() => { const tr = document.querySelector('#users tbody tr[data-name="`+name+`"]');
			const td = tr && (tr.querySelector(".passkey-count") || tr.cells[3]); return td ? td.textContent : ""; })()`)))
	}
	one, zero := count(user), count("dave")
	if !strings.Contains(one, "1") || !strings.Contains(zero, "0") {
		t.Errorf("admin-users in %s: passkey counts %q (%s) and %q (dave), want 1 and 0", code, one, user, zero)
		return
	}
	same := eval[bool](tb, `new Intl.PluralRules(document.documentElement.lang).select(0) === new Intl.PluralRules(document.documentElement.lang).select(1)`)
	form1, form0 := digitsRe.ReplaceAllString(one, "#"), digitsRe.ReplaceAllString(zero, "#")
	switch {
	case same && form1 != form0:
		t.Errorf("admin-users in %s: 1 and 0 take the same plural form in %s, but the list says %q and %q", code, code, one, zero)
	case !same && form1 == form0:
		t.Errorf("admin-users in %s: 1 is singular and 0 plural in %s, but the list says %q and %q", code, code, one, zero)
	}
	switch english := one == "1 passkey" || zero == "0 passkeys"; {
	case code == "en" && (one != "1 passkey" || zero != "0 passkeys"):
		t.Errorf("admin-users in en: %q and %q, want \"1 passkey\" and \"0 passkeys\"", one, zero)
	case code != "en" && english:
		t.Errorf("admin-users in %s: the passkey counts %q and %q are English", code, one, zero)
	}
}
