package auth

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/text/language"
)

// usedKeys lists every catalogue key the pages, the page scripts and this package's Go code use.
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
	goFiles, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "catalogue_") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := keysIn(goKeyRe, string(b))
		add(f, ks, err)
	}
	if len(used) < 100 {
		t.Fatalf("found only %d keys: the scan is broken", len(used))
	}
	return used
}

// TestCatalogueComplete: every key a template, page script or handler uses is translated in
// every shipped language, and no language keeps a key nothing uses (a sentence that changed in
// English and was not translated again).
func TestCatalogueComplete(t *testing.T) {
	used := usedKeys(t)
	for _, tag := range Shipped[1:] {
		m, ok := catalogue[tag.String()]
		if !ok {
			t.Errorf("%s is shipped but has no catalogue", tag)
			continue
		}
		var missing []string
		for k, where := range used {
			if v, ok := m[k]; !ok || strings.TrimSpace(v) == "" {
				missing = append(missing, where+": "+k)
			} else if strings.Count(v, "%") != strings.Count(k, "%") {
				t.Errorf("%s: %q has other verbs than its key %q", tag, v, k)
			}
			for _, ph := range placeholders(k) {
				if !strings.Contains(m[k], ph) {
					t.Errorf("%s: translation of %q lacks %s", tag, k, ph)
				}
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("%s lacks %s", tag, k)
		}
		for k := range m {
			if _, ok := used[k]; !ok {
				t.Errorf("%s translates %q, which nothing uses", tag, k)
			}
		}
	}
	if len(catalogue) != len(Shipped)-1 {
		t.Errorf("catalogues for %d languages, %d shipped besides English", len(catalogue), len(Shipped)-1)
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
