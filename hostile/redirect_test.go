package hostile

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

const accountPage = publicURL + "/.latchkey/account"

// hostileRedirects are PUB-08 (slashes, backslashes, encodings), PUB-09 (schemes, control
// characters, downgrade) and PUB-10 (userinfo, suffix and prefix confusion). Each value is the
// rd parameter as the server receives it after query decoding.
var hostileRedirects = map[string][]string{
	"PUB-08": {"//evil.com", "///evil.com", `/\evil.com`, `\/evil.com`, `\\evil.com`, "/%5Cevil.com", "%2F%2Fevil.com",
		"%252F%252Fevil.com", `/./\evil.com`, `/./../../\evil.com`, "/..//evil.com"},
	"PUB-09": {"https:evil.com", "https:/evil.com", "HTTPS://evil.com", "javascript:alert(1)", "JaVaScRiPt:alert(1)",
		"java%0ascript:alert(1)", "java\nscript:alert(1)", " javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
		"vbscript:x", "/%09/evil.com", "/\t/evil.com", "/%0a/evil.com", "/%0d/evil.com", `/%0b\evil.com`, "%20//evil.com",
		"http://grafana.example.com/"},
	"PUB-10": {"https://grafana.example.com@evil.com/", "https://grafana.example.com:pw@evil.com/",
		"https://evil.com%40grafana.example.com", "https://grafana.example.com.evil.com/", "https://example.com.evil.com/",
		"https://evilexample.com/", "https://grafana.example.community/", "https://grafana.example.com:8443/"},
}

// reflected reports whether the attacker's value, or the dangerous part of it, appears in text.
func reflected(text, rd string) bool {
	low := strings.ToLower(text)
	for _, needle := range []string{"evil", "javascript:", "vbscript:", "data:text", "<script>alert", "http://grafana"} {
		if strings.Contains(low, needle) {
			return true
		}
	}
	return strings.Contains(text, rd) || strings.Contains(text, html.EscapeString(rd)) || strings.Contains(text, url.QueryEscape(rd))
}

// TestRedirectSinks runs every hostile rd against the three sinks that take one: the login page,
// the login/finish JSON answer, and logout, which must end the session regardless.
func TestRedirectSinks(t *testing.T) {
	env := newEnv(t)
	alice := enrol(t, env, "alice")

	// The control rows prove that the checks can fail: a valid target is followed.
	t.Run("control/valid target is followed", func(t *testing.T) {
		const good = "https://grafana.example.com/d/x?y=1"
		page := browser(env).Get("/.latchkey/login?rd=" + url.QueryEscape(good))
		if !strings.Contains(string(page.Body), html.EscapeString(good)) {
			t.Fatalf("login page does not carry the valid target:\n%s", page.Body)
		}
		b := browser(env)
		if got := b.Login(alice.pk, good); got != good {
			t.Fatalf("login/finish redirect = %q, want %q", got, good)
		}
	})

	for pub, rds := range hostileRedirects {
		for _, rd := range rds {
			t.Run(pub+"/"+url.PathEscape(rd), func(t *testing.T) {
				q := "?" + url.Values{"rd": {rd}}.Encode()

				// Sink 1: the login page renders only the validated target.
				page := timed(t, func() *lktest.Response { return browser(env).Get("/.latchkey/login" + q) })
				if page.StatusCode != http.StatusOK {
					t.Errorf("login page: %d", page.StatusCode)
				}
				if reflected(string(page.Body), rd) {
					t.Errorf("login page reflects the attacker's rd:\n%s", page.Body)
				}
				if !strings.Contains(string(page.Body), `data-rd="`+accountPage+`"`) {
					t.Errorf("login page does not fall back to the account page:\n%s", page.Body)
				}

				// Sink 2: login/finish answers with the account page.
				b := browser(env)
				o := b.BeginLogin()
				r := timed(t, func() *lktest.Response { return b.FinishLogin(alice.pk.Assert(o, origin, lktest.Ceremony{}), rd) })
				var out struct {
					Redirect string `json:"redirect"`
				}
				if err := r.JSON(&out); r.StatusCode != http.StatusOK || err != nil || out.Redirect != accountPage {
					t.Errorf("login/finish: %d %s, want 200 with the account page", r.StatusCode, r.Body)
				}
				if reflected(string(r.Body), rd) {
					t.Errorf("login/finish reflects the attacker's rd: %s", r.Body)
				}
				cookie := b.Session()
				if _, ok := forwardAllowed(t, env, cookie); !ok {
					t.Fatal("the login did not make a working session")
				}

				// Sink 3: logout with rd still ends the session and answers with the account page.
				r = timed(t, func() *lktest.Response { return b.PostJSON("/.latchkey/logout"+q, map[string]string{}) })
				out.Redirect = ""
				if err := r.JSON(&out); r.StatusCode != http.StatusOK || err != nil || out.Redirect != accountPage {
					t.Errorf("logout: %d %s, want 200 with the account page", r.StatusCode, r.Body)
				}
				if reflected(string(r.Body)+r.Header.Get("Location"), rd) {
					t.Errorf("logout reflects the attacker's rd: %s", r.Body)
				}
				denied(t, env, cookie)
				alive(t, env)
			})
		}
	}
}
