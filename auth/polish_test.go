package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// useLink POSTs a recovery link's token as the confirmation page's button does.
func useLink(b *lktest.Client, token string) *lktest.Response {
	return b.PostJSON("/.latchkey/api/recover/link", map[string]string{"token": token})
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

var titleRE = regexp.MustCompile(`<title>([^<]*) · Latchkey</title>`)

// pageTitle is the <title> of a Latchkey page, without the product name.
func pageTitle(body []byte) string {
	if m := titleRE.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// TestPolishMagicLinkPrefetch: a mail scanner that fetches the link (any number of times) uses
// nothing up and writes nothing; the person's click on the page's button does, once.
func TestPolishMagicLinkPrefetch(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 16)}
	env := accountEnv(t, lktest.Config{Mailer: box})
	alice := join(t, env, "alice")

	requestLink(t, env.Client(), "alice")
	link := linkPath(t, box.next(t))
	token := tokenOf(t, link)

	before := env.Tables()
	scanner := from(env, "192.0.2.50")
	for i := range 3 {
		r := scanner.Get(link)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("prefetch %d: %d %s", i, r.StatusCode, r.Body)
		}
		body := string(r.Body)
		if !strings.Contains(body, `data-token="`+token+`"`) || !strings.Contains(body, "Continue to create a new passkey") {
			t.Fatalf("the confirmation page holds no button with the token:\n%s", body)
		}
		if !strings.Contains(body, ">alice<") {
			t.Fatal("the confirmation page does not say which account it recovers")
		}
		for h, want := range map[string]string{"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if got := r.Header.Get(h); got != want {
				t.Fatalf("%s: %q, want %q", h, got, want)
			}
		}
	}
	if len(scanner.Cookies) != 0 {
		t.Fatalf("fetching the link set cookies: %v", scanner.Cookies)
	}
	unchanged(t, env, before, "fetching a recovery link")
	if n := env.Count("audit", "event LIKE 'recovery_link%' AND event != 'recovery_link_sent'"); n != 0 {
		t.Fatalf("fetching the link wrote %d audit events", n)
	}

	b := from(env, "203.0.113.60")
	r := openLink(t, b, link)
	var out struct {
		Redirect string `json:"redirect"`
	}
	if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || out.Redirect != env.Public.String()+"/.latchkey/enroll" {
		t.Fatalf("using the link: %d %s", r.StatusCode, r.Body)
	}
	if n := env.Count("sessions", "user_id = ? AND method = ? AND revoked_at = 0", alice.user.ID, auth.MethodMagicLink); n != 1 {
		t.Fatalf("%d magic-link sessions after the click, want 1", n)
	}
	if n := env.Count("audit", "event = 'recovery_link_used' AND user_id = ?", alice.user.ID); n != 1 {
		t.Fatalf("%d recovery_link_used events, want 1", n)
	}

	t.Run("a used link is refused by both steps and changes nothing", func(t *testing.T) {
		before := env.Tables()
		again := from(env, "203.0.113.61")
		if r := useLink(again, token); r.StatusCode != http.StatusForbidden || !strings.Contains(errorOf(r), "not valid") {
			t.Fatalf("second POST: %d %s", r.StatusCode, r.Body)
		}
		r := again.Get(link)
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Link no longer valid" || strings.Contains(string(r.Body), token) {
			t.Fatalf("GET of a used link: %d %q", r.StatusCode, pageTitle(r.Body))
		}
		if len(again.Cookies) != 0 {
			t.Fatal("a refused link set a cookie")
		}
		unchanged(t, env, before, "a used link")
	})

	finishRecovery(t, env, b, alice, auth.MethodMagicLink)
}

// TestPolishMagicLinkRefusals: every dead link is 403 to the GET (an HTML page titled in plain
// words) and to the POST (JSON), and neither writes anything.
func TestPolishMagicLinkRefusals(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 16)}
	env := accountEnv(t, lktest.Config{Mailer: box})
	alice := join(t, env, "alice")
	_, enrolToken := env.AddUser("carol")

	newLink := func(t *testing.T) string {
		t.Helper()
		env.Clock.Advance(time.Hour) // refill the account's mail bucket
		requestLink(t, env.Client(), "alice")
		return tokenOf(t, linkPath(t, box.next(t)))
	}
	check := func(t *testing.T, token, wantMsg string) {
		t.Helper()
		before := env.Tables()
		b := env.Client()
		r := b.Get("/.latchkey/recover?token=" + url.QueryEscape(token))
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Link no longer valid" || !strings.Contains(string(r.Body), wantMsg) {
			t.Fatalf("GET: %d %q\n%s", r.StatusCode, pageTitle(r.Body), r.Body)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("GET answered %s", ct)
		}
		r = useLink(b, token)
		if r.StatusCode != http.StatusForbidden || !strings.Contains(errorOf(r), wantMsg) {
			t.Fatalf("POST: %d %s", r.StatusCode, r.Body)
		}
		if len(b.Cookies) != 0 {
			t.Fatalf("a refused link set cookies: %v", b.Cookies)
		}
		unchanged(t, env, before, "a refused link")
	}

	t.Run("expired", func(t *testing.T) {
		token := newLink(t)
		env.Clock.Advance(auth.MagicLinkTTL + time.Second)
		check(t, token, "not valid")
	})
	t.Run("superseded by a newer link", func(t *testing.T) {
		first := newLink(t)
		newLink(t)
		check(t, first, "not valid")
	})
	t.Run("e-mail address changed", func(t *testing.T) {
		token := newLink(t)
		u := alice.user
		u.Email = "alice@elsewhere.example.com"
		if err := env.Store.UpdateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		env.Refresh()
		audits := env.Count("audit", "event = 'recovery_link_refused'")
		check(t, token, "no longer on the account")
		// Only the POST, a person's deliberate click, is worth an audit event; the GET writes nothing.
		if n := env.Count("audit", "event = 'recovery_link_refused'") - audits; n != 1 {
			t.Fatalf("%d recovery_link_refused events, want 1 (the POST's)", n)
		}
	})
	t.Run("enrolment token, garbage and markup", func(t *testing.T) {
		for _, tok := range []string{enrolToken, "", "x", strings.Repeat("A", 43), `"><script>alert(1)</script>`} {
			check(t, tok, "not valid")
			if r := env.Client().Get("/.latchkey/recover?token=" + url.QueryEscape(tok)); strings.Contains(string(r.Body), "<script>alert") {
				t.Fatal("the token was reflected into the page")
			}
		}
	})
	t.Run("cross-site POST", func(t *testing.T) {
		env.Clock.Advance(time.Hour)
		u := alice.user
		u.Email = "alice@example.com"
		if err := env.Store.UpdateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		token := newLink(t)
		before := env.Tables()
		evil := env.Client()
		evil.Origin = "https://evil.example"
		if r := useLink(evil, token); r.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site POST: %d", r.StatusCode)
		}
		unchanged(t, env, before, "a cross-site POST")
		if r := useLink(env.Client(), token); r.StatusCode != http.StatusOK {
			t.Fatalf("the link no longer works after a refused cross-site POST: %d %s", r.StatusCode, r.Body)
		}
	})
}

// TestPolishMagicLinkRace: clicks from many browsers at once make exactly one session.
func TestPolishMagicLinkRace(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 16)}
	env := accountEnv(t, lktest.Config{Mailer: box})
	alice := join(t, env, "alice")
	requestLink(t, env.Client(), "alice")
	token := tokenOf(t, linkPath(t, box.next(t)))

	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		b := from(env, fmt.Sprintf("203.0.113.%d", 100+i))
		wg.Go(func() { statuses[i] = useLink(b, token).StatusCode })
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusForbidden:
		default:
			t.Fatalf("unexpected status %d in %v", s, statuses)
		}
	}
	if ok != 1 {
		t.Fatalf("%d clicks succeeded, want 1: %v", ok, statuses)
	}
	if c := env.Count("sessions", "user_id = ? AND method = ?", alice.user.ID, auth.MethodMagicLink); c != 1 {
		t.Fatalf("%d magic-link sessions, want 1", c)
	}
}

func TestPolishDeviceSummary(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "In-app browser on iPhone"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPad"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on macOS"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", "Firefox on Android"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", "Opera on Windows"},
		{"Mozilla/5.0 (compatible; Foo)", "Unknown browser"},
		{"Mozilla/5.0 (X11; Linux x86_64)", "Browser on Linux"},
		{"curl/8.5.0", "curl"},
		{"Wget/1.21.3", "Wget"},
		{"python-requests/2.31.0", "Python requests"},
		{"Go-http-client/1.1", "Go program"},
		{"backup-script/2.0 (+https://example.com)", "backup-script"},
		{strings.Repeat("x", 100) + "/1", strings.Repeat("x", 32) + "…"},
		{"evil\x1b[2J/1", "evil[2J"},
		{"", "Unknown device"},
		{"   ", "Unknown device"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := auth.DeviceSummary(tc.ua); got != tc.want {
				t.Fatalf("DeviceSummary(%q) = %q, want %q", tc.ua, got, tc.want)
			}
		})
	}
}

// TestPolishAccountPage: the account page links to the API tokens, names each session's device
// in short with the whole user agent (escaped) in a title, and the passkey removal's redirect is
// followed by the page script.
func TestPolishAccountPage(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	const chromeUA = `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 "><b>x</b>`
	for _, ua := range []string{chromeUA, "curl/8.5.0"} {
		b := env.Client()
		b.Header.Set("User-Agent", ua)
		b.Login(alice.pk, "")
	}
	r := alice.b.Get("/.latchkey/account")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("account page: %d", r.StatusCode)
	}
	body := string(r.Body)
	for _, want := range []string{
		`<a id="tokens-link" class="button" href="/.latchkey/tokens">API tokens</a>`,
		`title="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 &#34;&gt;&lt;b&gt;x&lt;/b&gt;">Chrome on Linux</strong>`,
		`title="curl/8.5.0">curl</strong>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the account page lacks %s", want)
		}
	}
	if strings.Contains(body, "<b>x</b>") {
		t.Error("a user agent was put into the page unescaped")
	}

	js := string(env.Client().Get("/.latchkey/static/latchkey.js").Body)
	remove := js[strings.Index(js, `"/.latchkey/api/passkeys/remove"`):]
	remove = remove[:strings.Index(remove, `” removed.`)]
	if !strings.Contains(remove, "res.redirect") {
		t.Error("the page script does not follow the redirect after removing a passkey")
	}
	if !strings.Contains(js, `"/.latchkey/api/recover/link"`) {
		t.Error("the page script does not post recovery links")
	}
}

// TestPolishErrorTitles: error pages say what happened in plain words.
func TestPolishErrorTitles(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"ops.localhost"}, Groups: []string{"ops"}, Policy: "passkey"},
	}})
	_, token := env.AddUser("alice")
	b := env.Client()
	b.Enrol(lktest.NewPasskey(), token)

	t.Run("ErrorPage", func(t *testing.T) {
		for _, tc := range []struct {
			status int
			want   string
		}{
			{http.StatusForbidden, "Not allowed"},
			{http.StatusNotFound, "Not found"},
			{http.StatusBadGateway, "Application not answering"},
			{http.StatusGatewayTimeout, "Application not answering"},
			{http.StatusBadRequest, "Request not understood"},
			{http.StatusTooManyRequests, "Too many attempts"},
			{http.StatusTeapot, "I&#39;m a teapot"}, // no plain title: the status text, escaped
		} {
			w := httptest.NewRecorder()
			env.Auth.ErrorPage(w, httptest.NewRequest(http.MethodGet, "/", nil), tc.status, "msg <x>")
			if w.Code != tc.status || pageTitle(w.Body.Bytes()) != tc.want || !strings.Contains(w.Body.String(), "<h1>"+tc.want+"</h1>") {
				t.Errorf("%d: %d %q", tc.status, w.Code, pageTitle(w.Body.Bytes()))
			}
			if !strings.Contains(w.Body.String(), "msg &lt;x&gt;") {
				t.Errorf("%d: the message is missing or unescaped", tc.status)
			}
		}
		w := httptest.NewRecorder()
		env.Auth.ErrorPageTitled(w, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusForbidden, "Custom <title>", "m")
		if pageTitle(w.Body.Bytes()) != "Custom &lt;title&gt;" {
			t.Errorf("ErrorPageTitled: %q", pageTitle(w.Body.Bytes()))
		}
	})
	t.Run("forbidden by a rule", func(t *testing.T) {
		r := b.Forward("ops.localhost", "/", http.Header{"Accept": {"text/html"}})
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Not allowed" {
			t.Fatalf("forward auth for a user outside the group: %d %q", r.StatusCode, pageTitle(r.Body))
		}
	})
	t.Run("used enrolment link", func(t *testing.T) {
		r := env.Client().Get("/.latchkey/enroll?token=" + url.QueryEscape(token))
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Link no longer valid" || !strings.Contains(string(r.Body), "administrator") {
			t.Fatalf("used enrolment link: %d %q", r.StatusCode, pageTitle(r.Body))
		}
	})
	t.Run("expired enrolment link", func(t *testing.T) {
		_, fresh := env.AddUser("bob")
		env.Clock.Advance(auth.EnrolTTL + time.Minute)
		r := env.Client().Get("/.latchkey/enroll?token=" + url.QueryEscape(fresh))
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Link no longer valid" {
			t.Fatalf("expired enrolment link: %d %q", r.StatusCode, pageTitle(r.Body))
		}
	})
	t.Run("recovery link", func(t *testing.T) {
		r := env.Client().Get("/.latchkey/recover?token=nope")
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Link no longer valid" {
			t.Fatalf("bad recovery link: %d %q", r.StatusCode, pageTitle(r.Body))
		}
	})
	t.Run("enrolment page without a link", func(t *testing.T) {
		r := env.Client().Get("/.latchkey/enroll")
		if r.StatusCode != http.StatusForbidden || pageTitle(r.Body) != "Enrolment link needed" {
			t.Fatalf("enrolment page without a link: %d %q", r.StatusCode, pageTitle(r.Body))
		}
	})
}
