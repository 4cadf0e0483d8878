package auth

import (
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

// usedKeys lists every catalogue key the pages, the page scripts, this package's Go code, the
// OpenID pages' Go code and the account operations' refusals use.
func usedKeys(t *testing.T) map[string]string {
	t.Helper()
	used := map[string]string{} // key → where
	add := func(where string, keys []string, err error) {
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, k := range keys {
			if _, ok := used[k]; !ok {
				used[k] = where
			}
		}
	}
	for _, pat := range []string{"templates/*.html", "static/*.js"} {
		files, err := fs.Glob(assets, pat)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", pat, err)
		}
		re := templateKeyRe
		if strings.HasSuffix(pat, ".js") {
			re = scriptKeyRe
		}
		for _, f := range files {
			b, _ := fs.ReadFile(assets, f)
			ks, err := keysIn(re, string(b))
			add(f, ks, err)
		}
	}
	for _, f := range goSources(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := keysIn(goKeyRe, string(b))
		add(f, ks, err)
		if strings.HasPrefix(f, "../account/") {
			// invalid("field", "format", ...): both are shown, translated, by the admin console.
			for _, m := range invalidRe.FindAllStringSubmatch(string(b), -1) {
				for _, q := range m[1:] {
					k, err := strconv.Unquote(q)
					add(f, []string{k}, err)
				}
			}
		}
	}
	if len(used) < 100 {
		t.Fatalf("found only %d keys: the scan is broken", len(used))
	}
	return used
}

var invalidRe = regexp.MustCompile(`\binvalid\(("(?:[^"\\]|\\.)*"),\s*("(?:[^"\\]|\\.)*")`)

// goSources are the Go files whose messages reach a page: this package's, the OpenID pages', the
// account operations' and the proxy's error pages'.
func goSources(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.go", "../oidc/*.go", "../account/*.go", "../proxy/*.go"} {
		files, err := filepath.Glob(pat)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", pat, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(filepath.Base(f), "catalogue_") {
				continue
			}
			out = append(out, f)
		}
	}
	return out
}

// TestCatalogueComplete: every key a template, page script or handler uses is translated in
// every shipped language (as a plain message or, for a count, in plural forms), and no language
// keeps a key nothing uses (a sentence that changed in English and was not translated again).
func TestCatalogueComplete(t *testing.T) {
	used := usedKeys(t)
	counted := map[string]bool{}
	for code := range plurals {
		for _, m := range plurals[code] {
			for k := range m {
				counted[k] = true
			}
		}
	}
	for k := range counted {
		if _, ok := used[k]; !ok {
			t.Errorf("plural %q: nothing uses it", k)
		}
		if strings.Count(k, "%d") != 1 && !strings.Contains(k, "{n}") {
			t.Errorf("plural %q has no count (%%d or {n})", k)
		}
	}
	for _, tag := range Shipped {
		code := tag.String()
		for k := range counted {
			f, ok := pluralFor(code, k)
			if !ok {
				t.Errorf("%s lacks the plural forms of %q", code, k)
				continue
			}
			if f["other"] == "" || f["one"] == "" {
				t.Errorf("%s: %q needs at least the forms one and other, has %v", code, k, f)
			}
			for c, v := range f {
				if !slices.Contains(pluralOrder, c) {
					t.Errorf("%s: %q: %q is not a CLDR plural category", code, k, c)
				}
				for _, ph := range placeholders(k) {
					if !strings.Contains(v, ph) && !(c == "one" && ph == "{n}") {
						t.Errorf("%s: %q form %s lacks %s", code, k, c, ph)
					}
				}
			}
			if _, plain := translation(code, k); plain {
				t.Errorf("%s: %q is both a plain message and a plural", code, k)
			}
		}
		if _, ok := dateLayouts[code]; !ok {
			t.Errorf("%s has no date layout", code)
		}
		if code == "en" {
			continue
		}
		if _, ok := catalogue[code]; !ok {
			t.Errorf("%s is shipped but has no catalogue", tag)
			continue
		}
		var missing []string
		for k, where := range used {
			if counted[k] {
				continue
			}
			v, ok := translation(code, k)
			if !ok || strings.TrimSpace(v) == "" {
				missing = append(missing, where+": "+k)
				continue
			}
			if strings.Count(v, "%") != strings.Count(k, "%") {
				t.Errorf("%s: %q has other verbs than its key %q", tag, v, k)
			}
			for _, ph := range placeholders(k) {
				if !strings.Contains(v, ph) {
					t.Errorf("%s: translation of %q lacks %s", tag, k, ph)
				}
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("%s lacks %s", tag, k)
		}
		seen := map[string]bool{}
		for _, m := range catalogue[code] {
			for k := range m {
				if seen[k] {
					t.Errorf("%s translates %q in two parts", tag, k)
				}
				seen[k] = true
				if _, ok := used[k]; !ok {
					t.Errorf("%s translates %q, which nothing uses", tag, k)
				}
			}
		}
	}
	if len(catalogue) != len(Shipped)-1 || len(plurals) != len(Shipped) {
		t.Errorf("catalogues for %d languages and plurals for %d, %d shipped", len(catalogue), len(plurals), len(Shipped))
	}
}

// TestNoUntranslatedText: every word a template shows (text and the attributes a person reads:
// placeholder, title, aria-label, alt) comes from the catalogue, and no handler refuses with a
// message the catalogue cannot know (a bare string or a formatted one).
func TestNoUntranslatedText(t *testing.T) {
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(assets, f)
		for _, w := range untranslatedWords(string(b)) {
			t.Errorf("%s: %q is not from the catalogue (wrap it in {{t \"...\"}})", f, w)
		}
	}
	bare := regexp.MustCompile(`\bfailf?\(http\.\w+,\s*("|fmt\.|strings\.)`)
	for _, f := range goSources(t) {
		b, _ := os.ReadFile(f)
		for _, m := range bare.FindAllString(string(b), -1) {
			t.Errorf("%s: %s...: a refusal's message must be a catalogue key, N(\"...\") (failf for verbs)", f, m)
		}
	}
}

// untranslatedWords returns the visible words of a template source outside template actions.
func untranslatedWords(src string) []string {
	src = actionRe.ReplaceAllString(src, "\x00")
	var out []string
	// Attributes a person reads, in the tags.
	for _, m := range readAttrRe.FindAllStringSubmatch(src, -1) {
		if wordRe.MatchString(m[2]) && !codeShapeRe.MatchString(m[2]) {
			out = append(out, m[1]+"="+m[2])
		}
	}
	text := commentRe.ReplaceAllString(src, " ")
	text = scriptRe.ReplaceAllString(text, " ")
	text = tagRe.ReplaceAllString(text, "\x00")
	text = entityRe.ReplaceAllString(text, " ")
	for _, run := range strings.Split(text, "\x00") {
		if run = strings.Join(strings.Fields(run), " "); wordRe.MatchString(run) {
			out = append(out, run)
		}
	}
	return out
}

var (
	actionRe   = regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	commentRe  = regexp.MustCompile(`(?s)<!--.*?-->`)
	scriptRe   = regexp.MustCompile(`(?s)<(script|style)\b.*?</(script|style)>`)
	tagRe      = regexp.MustCompile(`(?s)<[^>]*>`)
	entityRe   = regexp.MustCompile(`&#?\w+;`)
	readAttrRe = regexp.MustCompile(`\b(placeholder|title|aria-label|alt)="([^"]*)"`)
	wordRe     = regexp.MustCompile(`\pL{2,}`)
	// codeShapeRe is the shape of a code to type (XXXX-XXXX), which no language writes otherwise.
	codeShapeRe = regexp.MustCompile(`^[X0-9-]+$`)
)

// TestUntranslatedWordsFindsText: the template scan sees raw text and read attributes, and
// nothing inside template actions.
func TestUntranslatedWordsFindsText(t *testing.T) {
	got := untranslatedWords(`<p>{{t "Sign in"}} Hello</p><input placeholder="Your name" title="{{t "x"}}"><!-- note --><b>{{.Name}}</b>`)
	if want := []string{"placeholder=Your name", "Hello"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// placeholders lists the {name} marks of a script message.
func placeholders(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, s[i:i+j+1])
		s = s[i+j+1:]
	}
}

// TestLanguagePick: the switcher's choice, then the remembered one, then Accept-Language (with
// regional variants matched to the shipped language), then the default.
func TestLanguagePick(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := newLocales(pages, "nl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query, cookie, accept, want string
		chosen                            bool
	}{
		{"nothing: the default", "", "", "", "nl", false},
		{"accept-language", "", "", "fr-CH, fr;q=0.9, en;q=0.8", "fr", false},
		{"regional variant", "", "", "de-AT", "de", false},
		{"unshipped language: the default", "", "", "ja-JP", "nl", false},
		{"second choice shipped", "", "", "ja, es;q=0.5", "es", false},
		{"cookie over accept-language", "", "de", "fr", "de", false},
		{"unknown cookie ignored", "", "xx", "fr", "fr", false},
		{"switcher over cookie", "lang=es", "de", "fr", "es", true},
		{"unknown switcher value ignored", "lang=zz", "", "de", "de", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://localhost/.latchkey/login?"+tc.query, nil)
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
			}
			if tc.accept != "" {
				r.Header.Set("Accept-Language", tc.accept)
			}
			l, chosen := ls.pick(r)
			if l.code != tc.want || chosen != tc.chosen {
				t.Errorf("pick = %s (chosen %v), want %s (%v)", l.code, chosen, tc.want, tc.chosen)
			}
		})
	}
	if _, err := newLocales(pages, "xx"); err == nil {
		t.Error("an unshipped default language was accepted")
	}
	if got := language.Make(ls.def.code); got != language.Dutch {
		t.Errorf("default %v", got)
	}
}

// FuzzLanguagePick: whatever the switcher's lang, the language cookie and Accept-Language say,
// the answer is a shipped language, and a switcher choice is only ever a shipped code as written.
func FuzzLanguagePick(f *testing.F) {
	pages, err := parsePages()
	if err != nil {
		f.Fatal(err)
	}
	ls, err := newLocales(pages, "en")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][3]string{{"de", "", ""}, {"", "fr", ""}, {"", "", "nl-BE,nl;q=0.9,en;q=0.5"}, {"zz", "xx", "*;q=0.1"},
		{"", "", "x-a;q=0.1,de;q=2,fr;q=-1"}, {"", "", "zh-Hant-TW-u-co-pinyin"}, {"\x00", "de\r\n", ";;,,"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, query, cookie, accept string) {
		r, err := http.NewRequest(http.MethodGet, "http://localhost/.latchkey/login", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.RawQuery = url.Values{"lang": {query}}.Encode()
		r.Header.Set("Cookie", langCookie+"="+cookie)
		r.Header.Set("Accept-Language", accept)
		l, chosen := ls.pick(r)
		if l == nil || ls.byCode[l.code] != l {
			t.Fatalf("pick gave %v, not a shipped language", l)
		}
		if chosen && l.code != query {
			t.Fatalf("switcher choice %q from lang=%q", l.code, query)
		}
	})
}

// translation finds key's plain translation in a language (not English).
func translation(code, key string) (string, bool) {
	for _, m := range catalogue[code] {
		if v, ok := m[key]; ok {
			return v, true
		}
	}
	return "", false
}
