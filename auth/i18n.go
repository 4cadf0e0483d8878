package auth

import (
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Languages (issue 21). The English text is the key, as with gettext and golang.org/x/text: a
// page or script says what it means in English, and each shipped language maps that sentence to
// its own. A key missing in a language falls back to English; TestCatalogueComplete fails the
// build first.

// langCookie remembers the language a person picked with the switcher.
const langCookie = "latchkey_lang"

// Shipped lists the languages with a complete catalogue, English (the source) first.
var Shipped = []language.Tag{language.English, language.German, language.French, language.Spanish, language.Dutch}

// langNames are the switcher's labels, each in its own language.
var langNames = map[string]string{"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "nl": "Nederlands"}

// N marks a string literal as a catalogue key where it is not translated on the spot (a page
// title chosen in a handler, an error message): the catalogue test finds the keys by it.
func N(key string) string { return key }

// CheckLanguage accepts a shipped language's code ("de"); ui.default_language must be one.
func CheckLanguage(code string) error {
	for _, t := range Shipped {
		if t.String() == code {
			return nil
		}
	}
	codes := make([]string, len(Shipped))
	for i, t := range Shipped {
		codes[i] = t.String()
	}
	return fmt.Errorf("must be one of %s, got %q", strings.Join(codes, ", "), code)
}

// locales holds, for each shipped language, its printer and its copy of the page templates (whose
// "t" function prints in that language).
type locales struct {
	byCode  map[string]*locale
	def     *locale
	matcher language.Matcher
	tags    []language.Tag // the matcher's order: the default first
}

type locale struct {
	tag   language.Tag
	code  string
	p     *message.Printer
	pages *template.Template
	// script is what the page scripts may say, in this language: rendered into the page as a
	// JSON block (never executed, so the CSP allows it). A plural message is its Forms.
	script map[string]any
}

func newLocales(pages *template.Template, def string) (*locales, error) {
	if def == "" {
		def = "en"
	}
	if err := CheckLanguage(def); err != nil {
		return nil, fmt.Errorf("auth: default language: %w", err)
	}
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for code, parts := range catalogue {
		tag := language.MustParse(code)
		for _, m := range parts {
			for k, v := range m {
				if err := b.SetString(tag, k, v); err != nil {
					return nil, fmt.Errorf("auth: catalogue %s: %w", code, err)
				}
			}
		}
	}
	for code, parts := range plurals {
		tag := language.MustParse(code)
		for _, m := range parts {
			for k, forms := range m {
				if err := b.Set(tag, k, forms.selectf()); err != nil {
					return nil, fmt.Errorf("auth: plural %s %q: %w", code, k, err)
				}
			}
		}
	}
	skeys, err := scriptKeys()
	if err != nil {
		return nil, fmt.Errorf("auth: page scripts: %w", err)
	}
	ls := &locales{byCode: map[string]*locale{}}
	for _, tag := range Shipped {
		p := message.NewPrinter(tag, message.Catalog(b))
		clone, err := pages.Clone()
		if err != nil {
			return nil, fmt.Errorf("auth: templates: %w", err)
		}
		l := &locale{tag: tag, code: tag.String(), p: p, pages: clone, script: map[string]any{}}
		clone.Funcs(l.funcs())
		for _, k := range skeys {
			if forms, ok := pluralFor(l.code, k); ok {
				l.script[k] = forms // the script picks the form with Intl.PluralRules
				continue
			}
			l.script[k] = p.Sprintf(k)
		}
		ls.byCode[l.code] = l
	}
	ls.def = ls.byCode[def]
	ls.tags = []language.Tag{ls.def.tag}
	for _, t := range Shipped {
		if t != ls.def.tag {
			ls.tags = append(ls.tags, t)
		}
	}
	ls.matcher = language.NewMatcher(ls.tags)
	return ls, nil
}

// pick chooses a request's language: a switcher choice in the query (remembered in a cookie by
// the caller), else the remembered choice, else the browser's Accept-Language, else the default.
func (ls *locales) pick(r *http.Request) (l *locale, fromQuery bool) {
	if r == nil {
		return ls.def, false
	}
	if l, ok := ls.byCode[r.URL.Query().Get("lang")]; ok && r.Method == http.MethodGet {
		return l, true
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if l, ok := ls.byCode[c.Value]; ok {
			return l, false
		}
	}
	if al := r.Header.Get("Accept-Language"); al != "" {
		if prefs, _, err := language.ParseAcceptLanguage(al); err == nil && len(prefs) > 0 {
			if _, i, conf := ls.matcher.Match(prefs...); conf != language.No {
				return ls.byCode[ls.tags[i].String()], false
			}
		}
	}
	return ls.def, false
}

// dateLayouts write an exact time as each language writes dates in numbers (the page script
// replaces it with the browser's own words for the reader's time zone, in the same language).
var dateLayouts = map[string]string{"en": "2006-01-02 15:04 UTC", "de": "02.01.2006, 15:04 UTC",
	"fr": "02/01/2006 15:04 UTC", "es": "02/01/2006, 15:04 UTC", "nl": "02-01-2006 15:04 UTC"}

func (l *locale) date(t time.Time) string {
	if t.IsZero() {
		return l.text(N("never"))
	}
	layout, ok := dateLayouts[l.code]
	if !ok {
		layout = dateLayouts["en"]
	}
	return t.UTC().Format(layout)
}

// when is a time for the page script to show in words ("2 minutes ago"), exact in its title.
func (l *locale) when(t time.Time) template.HTML {
	if t.IsZero() {
		return template.HTML(template.HTMLEscapeString(l.text(N("never"))))
	}
	exact := template.HTMLEscapeString(l.date(t))
	return template.HTML(`<time datetime="` + t.UTC().Format(time.RFC3339) + `" title="` + exact + `">` + exact + `</time>`)
}

// text translates one catalogue key (an English message) with optional arguments.
func (l *locale) text(key string, args ...any) string {
	if len(args) == 0 && strings.Contains(key, "%") {
		return key // not a format: a message that happens to hold a percent sign
	}
	return l.p.Sprintf(key, args...)
}

// langLink is one entry of the language switcher.
type langLink struct {
	Code, Name, URL string
	Current         bool
}

// switcher links the current page in each shipped language: the same path and query with
// lang= set, so that the page the person is on (a login with its rd) stays the same.
//
// keep says whether the query is kept at all (not on error pages, whose query may be a dead
// link's token), and rd filters the rd parameter: only a validated target is ever written into
// a page.
func (ls *locales) switcher(r *http.Request, cur *locale, keep bool, rd func(string) string) []langLink {
	if r == nil || r.Method != http.MethodGet {
		return nil
	}
	base := url.Values{}
	if keep {
		base = r.URL.Query()
		if v := base.Get("rd"); v != "" {
			if safe := rd(v); safe != v {
				base.Del("rd")
			}
		}
	}
	out := make([]langLink, 0, len(Shipped))
	for _, t := range Shipped {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("lang", t.String())
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		out = append(out, langLink{Code: t.String(), Name: langNames[t.String()], URL: u.String(), Current: t == cur.tag})
	}
	return out
}

// rememberLanguage stores a switcher choice for a year, on the same domain as the session
// cookie, so that the pages a proxy shows on the applications' hosts (forbidden, not answering)
// follow it too. The page script reads nothing from it, so HttpOnly costs nothing.
func rememberLanguage(w http.ResponseWriter, l *locale, d *domain) {
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l.code, Path: "/", Domain: d.Name, MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: d.PublicURL.Scheme == "https", SameSite: http.SameSiteLaxMode})
}

// Where the catalogue's keys are used: {{t "..."}} in the templates, t("...") in the page
// scripts, N with a string literal in this package's Go code.
var (
	templateKeyRe = regexp.MustCompile(`\{\{-?\s*t(?:strong|html)?\s+("(?:[^"\\]|\\.)*")`)
	scriptKeyRe   = regexp.MustCompile(`\btn?\(("(?:[^"\\]|\\.)*")`)
	goKeyRe       = regexp.MustCompile(`\bN\(("(?:[^"\\]|\\.)*")\)`)
)

// keysIn lists the keys re finds in src, unquoted, in order of appearance.
func keysIn(re *regexp.Regexp, src string) ([]string, error) {
	var keys []string
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		k, err := strconv.Unquote(m[1])
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", m[1], err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// scriptKeys lists the keys the embedded page scripts use: each page carries their translations.
func scriptKeys() ([]string, error) {
	seen := map[string]bool{}
	var keys []string
	files, err := fs.Glob(assets, "static/*.js")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := fs.ReadFile(assets, f)
		if err != nil {
			return nil, err
		}
		ks, err := keysIn(scriptKeyRe, string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// catalogue is every shipped translation of the English source, by language code, in parts (the
// sign-in pages, the account pages, the admin console, the OpenID and proxy pages) so that each part's
// translations sit in one file per language.
var catalogue = map[string][]map[string]string{
	"de": {catalogueDE, catalogueDEAccount, catalogueDEAdmin, catalogueDEApps},
	"fr": {catalogueFR, catalogueFRAccount, catalogueFRAdmin, catalogueFRApps},
	"es": {catalogueES, catalogueESAccount, catalogueESAdmin, catalogueESApps},
	"nl": {catalogueNL, catalogueNLAccount, catalogueNLAdmin, catalogueNLApps},
}

// Forms are a message's plural forms by CLDR category ("one", "other"; "zero", "two", "few",
// "many" where a language has them). The Go side selects with golang.org/x/text/feature/plural,
// the page scripts with the browser's Intl.PluralRules: neither counts by hand.
type Forms map[string]string

// pluralOrder is CLDR's order of categories; "other" must come last for plural.Selectf.
var pluralOrder = []string{"zero", "one", "two", "few", "many", "other"}

func (f Forms) selectf() catalog.Message {
	var cases []any
	for _, c := range pluralOrder {
		if m, ok := f[c]; ok {
			cases = append(cases, c, m)
		}
	}
	return plural.Selectf(1, "%d", cases...)
}

// plurals are the messages with a count, English included (its forms are the source's), by
// language code and part like catalogue.
var plurals = map[string][]map[string]Forms{
	"en": {pluralsEN, pluralsENAccount, pluralsENAdmin, pluralsENApps},
	"de": {pluralsDE, pluralsDEAccount, pluralsDEAdmin, pluralsDEApps},
	"fr": {pluralsFR, pluralsFRAccount, pluralsFRAdmin, pluralsFRApps},
	"es": {pluralsES, pluralsESAccount, pluralsESAdmin, pluralsESApps},
	"nl": {pluralsNL, pluralsNLAccount, pluralsNLAdmin, pluralsNLApps},
}

// pluralFor finds key's forms in a language.
func pluralFor(code, key string) (Forms, bool) {
	for _, m := range plurals[code] {
		if f, ok := m[key]; ok {
			return f, true
		}
	}
	return nil, false
}

// tstrong translates key like t, with each argument shown in bold: the translation and the
// arguments are escaped, only the <strong> elements are markup.
func (l *locale) tstrong(key string, args ...any) template.HTML {
	bold := make([]any, len(args))
	for i, a := range args {
		bold[i] = template.HTML("<strong>" + template.HTMLEscapeString(fmt.Sprint(a)) + "</strong>")
	}
	return l.thtml(key, bold...)
}

// localeFuncs are the template functions whose output depends on the language: parsePages
// declares them, and each language's copy of the templates gets its own (funcs).
var localeFuncs = []string{"t", "tstrong", "thtml", "date", "when", "device", "methodName"}

// funcs are this language's template functions, one for each name in localeFuncs.
func (l *locale) funcs() template.FuncMap {
	return template.FuncMap{
		"t":          func(key string, args ...any) string { return l.p.Sprintf(key, args...) },
		"tstrong":    l.tstrong,
		"thtml":      l.thtml,
		"date":       l.date,
		"when":       l.when,
		"device":     func(ua string) string { return describeDevice(ua, l.text) },
		"methodName": func(m string) string { return l.text(MethodName(m)) },
	}
}

// thtml translates key like t with markup arguments kept as they are: a time element from when
// ("last used %s" with <time>…</time>) takes its place in the translated sentence, whatever the
// language's word order. Other arguments and the translation itself are escaped.
func (l *locale) thtml(key string, args ...any) template.HTML {
	marks := make([]any, len(args))
	for i := range args {
		marks[i] = fmt.Sprintf("\x01%d\x01", i)
	}
	out := template.HTMLEscapeString(l.p.Sprintf(key, marks...))
	for i, a := range args {
		v, ok := a.(template.HTML)
		if !ok {
			v = template.HTML(template.HTMLEscapeString(fmt.Sprint(a)))
		}
		out = strings.Replace(out, fmt.Sprintf("\x01%d\x01", i), string(v), 1)
	}
	return template.HTML(out)
}

// lang is the language of a request's answer: API errors are shown by the page as they come.
func (s *Service) lang(r *http.Request) *locale {
	l, _ := s.locales.pick(r)
	return l
}
