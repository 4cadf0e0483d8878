package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/latchkeyhq/latchkey/auth"
)

// English left on a page in another language (issue 21) is found two ways: the catalogue's own
// English keys, which a page that forgot a {{t}} or a t() shows as they are, and English
// function words, which betray a sentence that never made it into the catalogue at all.

// leakKey is one English catalogue key as a pattern: its literal text, with its verbs (%s, %d,
// {name}) as short wildcards.
type leakKey struct {
	key string
	re  *regexp.Regexp
}

// leakFinder finds a language's untranslated catalogue keys in a page's text.
type leakFinder struct {
	lang string
	keys []leakKey
	// whole are the keys, short ones included ("Allow", "Cancel", "Allow %s?"), as patterns
	// for the whole text of one element or attribute: a button or a heading left in English.
	whole []leakKey
}

// verbRe matches the verbs of a catalogue key: fmt verbs (with an explicit argument index or
// flags), %%, and the page scripts' {name} placeholders.
var verbRe = regexp.MustCompile(`%(?:\[\d+\])?[-+# 0]*\d*(?:\.\d+)?[a-zA-Z]|%%|\{[A-Za-z_][A-Za-z0-9_]*\}`)

var letterRun = regexp.MustCompile(`\p{L}+`)

// newLeakFinder turns auth.Translations(lang) into patterns. A key is left out when it cannot
// tell English from the language: its translation is the key itself ("Passkeys" in German), its
// literal text is shorter than two words and eight letters ("Name", "%d days"), or the language's
// own translations use it (a word the two languages share).
func newLeakFinder(lang string) *leakFinder {
	f := &leakFinder{lang: lang}
	tr := auth.Translations(lang)
	var all strings.Builder
	for _, v := range tr {
		all.WriteString(v)
		all.WriteString("\n")
	}
	translated := all.String()
	values := map[string]bool{}
	for _, v := range tr {
		values[oneLine(v)] = true
	}
	for k, v := range tr {
		if strings.TrimSpace(k) == strings.TrimSpace(v) {
			continue
		}
		if re := keyPattern(k); re != nil && !re.MatchString(translated) {
			f.keys = append(f.keys, leakKey{key: k, re: re})
		}
		if re := wholePattern(k); re != nil {
			shared := false
			for v := range values {
				if re.MatchString(v) {
					shared = true // the language says the same: "Status", "OK"
					break
				}
			}
			if !shared {
				f.whole = append(f.whole, leakKey{key: k, re: re})
			}
		}
	}
	sort.Slice(f.keys, func(i, j int) bool { return f.keys[i].key < f.keys[j].key })
	sort.Slice(f.whole, func(i, j int) bool { return f.whole[i].key < f.whole[j].key })
	return f
}

// wholePattern is key as a pattern for a whole text ("^Allow .+\?$"), or nil when its literal
// text has fewer than three letters ("%s on %s", "%s · %s" could be anything).
func wholePattern(key string) *regexp.Regexp {
	frags := verbRe.Split(oneLine(key), -1)
	letters := 0
	for i, fr := range frags {
		for _, w := range letterRun.FindAllString(fr, -1) {
			letters += len([]rune(w))
		}
		frags[i] = regexp.QuoteMeta(fr)
	}
	if letters < 3 {
		return nil
	}
	return regexp.MustCompile(`^` + strings.Join(frags, `.+?`) + `$`)
}

// keyPattern is key as a regular expression, or nil when its literal text is too short to
// mean English for sure. The literal fragments must appear in order, a verb standing for up to
// 160 characters, and an outer fragment that begins or ends with a letter must do so at a word
// boundary ("Administrator" is not found in "Administrator*in" … but neither in
// "Administratoren").
func keyPattern(key string) *regexp.Regexp {
	frags := verbRe.Split(key, -1)
	var lits []string
	words, letters := 0, 0
	for _, fr := range frags {
		if strings.TrimSpace(fr) == "" {
			continue
		}
		lits = append(lits, fr)
		for _, w := range letterRun.FindAllString(fr, -1) {
			words++
			letters += len([]rune(w))
		}
	}
	if len(lits) == 0 || (words < 2 && letters < 8) {
		return nil
	}
	var b strings.Builder
	first, last := []rune(strings.TrimSpace(lits[0])), []rune(strings.TrimSpace(lits[len(lits)-1]))
	if isWordRune(first[0]) {
		b.WriteString(`(?:^|[^\p{L}\p{N}])`)
	}
	for i, l := range lits {
		if i > 0 {
			b.WriteString(`(?s:.{1,160}?)`)
		}
		t := l
		if i == 0 {
			t = strings.TrimLeft(t, " ")
		}
		if i == len(lits)-1 {
			t = strings.TrimRight(t, " ")
		}
		b.WriteString(regexp.QuoteMeta(t))
	}
	if isWordRune(last[len(last)-1]) {
		b.WriteString(`(?:$|[^\p{L}\p{N}])`)
	}
	return regexp.MustCompile(b.String())
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// find lists the keys found in text, each with the text it matched.
func (f *leakFinder) find(text string) []string {
	var out []string
	for _, k := range f.keys {
		if m := k.re.FindString(text); m != "" {
			out = append(out, fmt.Sprintf("%q", strings.TrimSpace(oneLine(m))))
		}
	}
	return out
}

// findWhole lists the texts (of one element or attribute each) that are an English key as a
// whole, except the test's own data (a user called "admin" is no badge left in English).
func (f *leakFinder) findWhole(items []string, data map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		it = oneLine(it)
		if it == "" || data[it] || seen[it] {
			continue
		}
		for _, k := range f.whole {
			if k.re.MatchString(it) {
				seen[it] = true
				out = append(out, fmt.Sprintf("%q", shorten(it, 80)))
				break
			}
		}
	}
	return out
}

// englishWordRe are English function words that none of the other shipped languages spells the
// same way as a word of its own ("is", "in", "of", "was", "will", "on", "an", "or" are left out:
// they are Dutch, German or French words too).
var englishWordRe = regexp.MustCompile(`(?i)(?:^|[^\p{L}\p{N}'’@._/-])(the|you|your|and|with|this|that|are|has|have|not|for|from|can|been|to|it|by|at|be|yet|only|here|there|when|must|into|which|their|they|what|does|please|don't|isn't|can't)(?:$|[^\p{L}\p{N}'’@._/-])`)

// englishSentences lists the lines of text that hold two or more English function words: an
// English sentence outside the catalogue (a message written in Go or in a script without t()).
func englishSentences(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] {
			continue
		}
		// Overlapping matches share the separator between two words: count on a padded copy.
		padded := " " + strings.Join(strings.Fields(line), "  ") + " "
		if len(englishWordRe.FindAllString(padded, -1)) >= 2 {
			seen[line] = true
			out = append(out, fmt.Sprintf("%q", shorten(line, 140)))
		}
	}
	return out
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// pageTextScript collects the words a person can see or hear on the page: the title, the
// rendered text (innerText: what CSS shows), the text of what is hidden now but shown by the page
// later (closed dialogs, hidden sections, <template> contents, the options of a select), and the
// attributes a browser shows or reads out (title, placeholder, aria-label, alt, the data-label
// that phone-sized tables print before a cell, button values). Code samples (<code>, <kbd>,
// <pre>) are returned apart: they are literal, not language. items are the same words one
// element or attribute at a time: the text of each element that holds little (a button, a
// heading, a table cell), each attribute, the title without the brand.
const pageTextScript = `(() => {
	const out = [document.title, document.body.innerText];
	const items = [document.title.replace(/ · [^·]*$/, "")];
	const skip = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT"]);
	const shown = e => e.checkVisibility({visibilityProperty: true});
	for (const e of document.body.querySelectorAll("*")) {
		if (skip.has(e.tagName) || e.closest("script, style")) continue;
		if (e.tagName === "OPTION") out.push(e.textContent);
		else if (!shown(e) && (!e.parentElement || shown(e.parentElement))) out.push(e.innerText);
		const literal = e.closest("code, kbd, pre, samp, #languages");
		const own = e.textContent.replace(/\s+/g, " ").trim();
		if (!literal && own !== "" && own.length <= 120) items.push(own);
		for (const a of ["title", "placeholder", "aria-label", "alt", "data-label"]) {
			const v = e.getAttribute(a);
			if (v) { out.push(v); items.push(v); }
		}
		if (e.tagName === "INPUT" && ["submit", "button", "reset"].includes(e.type) && e.value) { out.push(e.value); items.push(e.value); }
	}
	for (const t of document.querySelectorAll("template")) {
		out.push(t.content.textContent);
		for (const e of t.content.querySelectorAll("*")) items.push(e.textContent.replace(/\s+/g, " ").trim());
	}
	const code = [...document.querySelectorAll("code, kbd, pre, samp")].map(e => e.textContent).filter(s => s.trim() !== "");
	return {text: out.join("\n"), items: items, code: code};
})()`

type pageText struct {
	Text  string   `json:"text"`
	Items []string `json:"items"`
	Code  []string `json:"code"`
}

// words returns the page's text (pageTextScript) without its code samples, and its items.
func (tb *tab) words() (string, []string) {
	tb.t.Helper()
	p := eval[pageText](tb, pageTextScript)
	text := p.Text
	// Longest first, so that a sample inside another is not cut out of it first.
	sort.Slice(p.Code, func(i, j int) bool { return len(p.Code[i]) > len(p.Code[j]) })
	for _, c := range p.Code {
		text = strings.ReplaceAll(text, c, " ")
	}
	return text, p.Items
}

// timeCheckScript lists the <time> elements whose words the page script left in English: the
// relative time ("2 minutes ago", "just now") and the exact local time in the title ("Dec 1, 2026,
// 11:30 AM"), compared with what the browser itself says in English for the same instant.
const timeCheckScript = `(() => {
	const out = [];
	if (!window.Intl || !Intl.RelativeTimeFormat) return out;
	const rtf = new Intl.RelativeTimeFormat("en", {numeric: "auto"}), rtfN = new Intl.RelativeTimeFormat("en");
	const dtf = new Intl.DateTimeFormat("en", {dateStyle: "medium", timeStyle: "short"});
	const words = /\b(ago|just now|yesterday|tomorrow|in a few seconds|last|next)\b|\b(AM|PM)\b/;
	const units = [["second", 1], ["minute", 60], ["hour", 3600], ["day", 86400], ["week", 604800], ["month", 2592000], ["year", 31536000]];
	for (const e of document.querySelectorAll("time")) {
		const d = new Date(e.dateTime), text = e.textContent.trim(), title = e.title;
		if (isNaN(d)) continue;
		const s = (d.getTime() - Date.now()) / 1000, en = new Set([dtf.format(d)]);
		for (const [u, size] of units) for (const f of [Math.round, Math.floor, Math.ceil]) {
			en.add(rtf.format(f(s / size), u)); en.add(rtfN.format(f(s / size), u));
		}
		if (words.test(text) || en.has(text)) out.push("time " + JSON.stringify(text) + " is English");
		if (title && (words.test(title) || en.has(title))) out.push("time title " + JSON.stringify(title) + " is English");
	}
	return out;
})()`

// leakReport gathers, for the summary at the end, which pages leak English in which languages.
type leakReport struct {
	mu    sync.Mutex
	pages map[string][]string // page → languages
	order []string
}

func (r *leakReport) add(page, lang string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pages == nil {
		r.pages = map[string][]string{}
	}
	if _, ok := r.pages[page]; !ok {
		r.order = append(r.order, page)
	}
	r.pages[page] = append(r.pages[page], lang)
}

func (r *leakReport) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) == 0 {
		return "no page leaks English"
	}
	var b strings.Builder
	b.WriteString("pages with English left:")
	for _, p := range r.order {
		fmt.Fprintf(&b, "\n  %-22s %s", p, strings.Join(r.pages[p], " "))
	}
	return b.String()
}

// TestLeakFinder checks the checker without a browser: a translated German sentence passes, the
// English key it translates, alone or inside a longer text, is found; an English sentence that
// no catalogue knows is found by its function words.
func TestLeakFinder(t *testing.T) {
	f := newLeakFinder("de")
	if len(f.keys) < 50 {
		t.Fatalf("only %d German keys to look for", len(f.keys))
	}
	de := auth.Translations("de")
	for _, c := range []struct {
		text string
		leak bool
	}{
		{"Bei Latchkey anmelden", false},
		{"Sign in to Latchkey", true},
		{"Zugang wiederherstellen\nRecover access\nFertig", true},
		{de["You are signed in as %s."], false},
		{"Sie sind als admin angemeldet.", false},
		{"You are signed in as admin.", true},
	} {
		if got := f.find(c.text); (len(got) > 0) != c.leak {
			t.Errorf("find(%q) = %v, want a leak: %v", c.text, got, c.leak)
		}
	}
	data := map[string]bool{"admin": true}
	if got := f.findWhole([]string{"Weiter", "Anmelden", "admin", "Bei Photos anmelden"}, data); len(got) > 0 {
		t.Errorf("findWhole flags German: %v", got)
	}
	if got := f.findWhole([]string{"Continue", "Sign in to Photos", " Not  found "}, data); len(got) != 3 {
		t.Errorf("findWhole(English) = %v, want all three", got)
	}
	for _, c := range []struct {
		text string
		leak bool
	}{
		{"Token “x” created. Copy it now: it is not shown again.", true},
		{"Nothing is served at this address.", true},
		{"Sie sind als admin angemeldet. Was ist ein Passkey?", false},
		{"Dit is uw toegangssleutel; het werkt op deze computer.", false},
		{"ssh -L 8080:localhost:8080 you@server", false},
	} {
		if got := englishSentences(c.text); (len(got) > 0) != c.leak {
			t.Errorf("englishSentences(%q) = %v, want a leak: %v", c.text, got, c.leak)
		}
	}
}
