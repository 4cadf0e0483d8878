package hostile

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// hostileLangs are values of lang, latchkey_lang and Accept-Language that are not a shipped
// language's code as it is written (markup, a header split, a near miss, a very long value).
var hostileLangs = []string{`"><script>alert(1)</script>`, "de\r\nSet-Cookie: x=1", "de;q=1", strings.Repeat("de", 4000),
	"../en", "DE", "de-DE", "de%00", ""}

var hrefRe = regexp.MustCompile(`<a href="([^"]*)" lang="`)

// englishPage asserts an answer is the default (English) login page, sets no language cookie,
// and does not echo the input.
func englishPage(t *testing.T, r *lktest.Response, input string) {
	t.Helper()
	body := string(r.Body)
	if r.StatusCode != http.StatusOK || !strings.Contains(body, `<html lang="en">`) {
		t.Errorf("%.40q: %d, not the English page", input, r.StatusCode)
	}
	for _, c := range r.Cookies() {
		if c.Name == "latchkey_lang" {
			t.Errorf("%.40q: set the language cookie to %q", input, c.Value)
		}
	}
	if len(input) > 3 && strings.Contains(body, input) {
		t.Errorf("%.40q is echoed in the page", input)
	}
	if strings.Contains(body, "<script>alert") {
		t.Errorf("%.40q: markup reached the page", input)
	}
}

// TestLanguageHostile: LANG-01..05 in CASES.md.
func TestLanguageHostile(t *testing.T) {
	env := newEnv(t)

	t.Run("LANG-01 hostile lang parameter", func(t *testing.T) {
		for _, v := range hostileLangs {
			b := browser(env)
			q := "/.latchkey/login?lang=" + strings.NewReplacer("\r", "%0D", "\n", "%0A", " ", "%20", "\"", "%22", "<", "%3C", ">", "%3E", "%00", "%2500").Replace(v)
			englishPage(t, timed(t, func() *lktest.Response { return b.Get(q) }), v)
		}
		alive(t, env)
	})

	t.Run("LANG-02 hostile language cookie", func(t *testing.T) {
		for _, v := range hostileLangs {
			if strings.ContainsAny(v, "\r\n\"; ") {
				continue // not a value a cookie header can carry; LANG-03 covers raw headers
			}
			b := browser(env)
			b.Cookies["latchkey_lang"] = v
			englishPage(t, timed(t, func() *lktest.Response { return b.Get("/.latchkey/login") }), v)
		}
		alive(t, env)
	})

	t.Run("LANG-03 hostile Accept-Language", func(t *testing.T) {
		for _, v := range append(hostileLangs[1:], strings.Repeat("x-a;q=0.1,", 3000)+"de", "de;q=2,fr;q=-1", "*;q=0.5", ";;;,,,", "zz-ZZ-u-co-phonebk-x-"+strings.Repeat("a", 500)) {
			b := browser(env)
			r := timed(t, func() *lktest.Response {
				return b.Do(http.MethodGet, "", "/.latchkey/login", nil, http.Header{"Accept-Language": {strings.ReplaceAll(strings.ReplaceAll(v, "\r", ""), "\n", "")}})
			})
			if r.StatusCode != http.StatusOK || !regexp.MustCompile(`<html lang="(en|de|fr|es|nl)">`).Match(r.Body) {
				t.Errorf("Accept-Language %.40q: %d, no shipped language", v, r.StatusCode)
			}
			if len(r.Cookies()) != 0 {
				t.Errorf("Accept-Language %.40q set a cookie: %v", v, r.Cookies())
			}
		}
		alive(t, env)
	})

	t.Run("LANG-04 switcher links carry no unvalidated target", func(t *testing.T) {
		b := browser(env)
		for rd, kept := range map[string]bool{"https://evil.example/steal": false, "//evil.example/": false,
			"javascript:alert(1)": false, "https://grafana.example.com/d/x": true} {
			r := b.Get("/.latchkey/login?rd=" + strings.NewReplacer(":", "%3A", "/", "%2F", "(", "%28", ")", "%29").Replace(rd))
			links := hrefRe.FindAllStringSubmatch(string(r.Body), -1)
			if len(links) != 4 {
				t.Fatalf("rd %q: %d switcher links, want 4", rd, len(links))
			}
			for _, l := range links {
				href := strings.ReplaceAll(l[1], "&amp;", "&")
				if !strings.HasPrefix(href, "/.latchkey/login?") {
					t.Errorf("rd %q: switcher link %q leaves the page", rd, href)
				}
				if has := strings.Contains(href, "rd="); has != kept {
					t.Errorf("rd %q: switcher link %q (rd kept %v, want %v)", rd, href, has, kept)
				}
				if strings.Contains(href, "evil.example") || strings.Contains(href, "javascript") {
					t.Errorf("rd %q: switcher link %q carries it", rd, href)
				}
			}
		}
	})

	t.Run("LANG-05 translations do not open markup", func(t *testing.T) {
		m := enrol(t, env, "mallory")
		u := m.user
		u.DisplayName = `<img src=x onerror=alert(1)>`
		if err := env.Store.UpdateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		env.Refresh()
		for _, lang := range []string{"de", "fr", "es", "nl"} {
			r := m.browser.Get("/.latchkey/account?lang=" + lang)
			body := string(r.Body)
			if r.StatusCode != http.StatusOK || !strings.Contains(body, `<html lang="`+lang+`">`) {
				t.Fatalf("%s: account page %d", lang, r.StatusCode)
			}
			if strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
				t.Errorf("%s: the display name is not escaped in the translated page", lang)
			}
		}
	})
}
