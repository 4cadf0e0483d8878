package auth

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// emittedEvents greps the module's Go sources (tests excluded) for the audit events they write:
// the first identifier-like string literal of each audit(...) or auditIP(...) call (the event;
// user IDs and details come as other arguments), event variables assigned a literal, Event:
// fields and the Event* constants of package account.
func emittedEvents(t *testing.T) map[string]string {
	t.Helper()
	calls := regexp.MustCompile(`\.audit(?:IP)?\((.*)`)
	literal := regexp.MustCompile(`"([^"\\]*)"`)
	event := regexp.MustCompile(`^[a-z][a-z_]*$`)
	patterns := []*regexp.Regexp{
		regexp.MustCompile(`\bevent\s*:?=\s*"([a-z_]+)"`),
		regexp.MustCompile(`Event:\s*"([a-z_]+)"`),
		regexp.MustCompile(`\bEvent[A-Z][A-Za-z]*\s*=\s*"([a-z_]+)"`),
	}
	found := map[string]string{}
	root := ".."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(src), "\n") {
			m := calls.FindStringSubmatch(line)
			if m == nil || strings.HasPrefix(strings.TrimSpace(line), "func ") {
				continue
			}
			for _, l := range literal.FindAllStringSubmatch(m[1], -1) {
				if event.MatchString(l[1]) {
					found[l[1]] = path
					break
				}
			}
		}
		for _, p := range patterns {
			for _, m := range p.FindAllStringSubmatch(string(src), -1) {
				found[m[1]] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestEveryAuditEventHasAName: an event the code writes without a readable name would show up in
// the audit log as its raw identifier (issue 20).
func TestEveryAuditEventHasAName(t *testing.T) {
	found := emittedEvents(t)
	// The grep must find the vocabulary, or this test passes on nothing.
	for _, ev := range []string{"login", "login_failed", "passkey_added", "token_created", "user_disabled", "recovery_link_sent",
		"enrolment_link_created", "oidc_client_auth_failed", "oidc_refresh"} {
		if _, ok := found[ev]; !ok {
			t.Errorf("the source scan did not find the event %q: the patterns are stale", ev)
		}
	}
	if len(found) < 30 {
		t.Errorf("the source scan found %d events, fewer than the 30 known", len(found))
	}
	for ev, where := range found {
		name, ok := eventNames[ev]
		if !ok {
			t.Errorf("audit event %q (written in %s) has no readable name in eventNames", ev, where)
			continue
		}
		if name == "" || name == ev || strings.Contains(name, "_") {
			t.Errorf("audit event %q has the name %q, which is not words", ev, name)
		}
	}
	for ev := range eventNames {
		if _, ok := found[ev]; !ok {
			t.Errorf("eventNames names %q, which no code writes", ev)
		}
	}
}

func TestAuditRowRendering(t *testing.T) {
	pk := []byte("a passkey credential id")
	passkeys := map[string]string{credRef(pk): "Work laptop", "FGdNZiL-": "Phone"}
	gone := credRef([]byte("removed one"))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		name                          string
		e                             store.Event
		user                          string
		event, actor, target, details string
	}{
		{"account operation by an admin", store.Event{Event: "passkey_removed", Detail: "actor=root target=carol passkey=" + credRef(pk)}, "carol",
			"Passkey removed", "root", "carol", "passkey “Work laptop”"},
		{"by the CLI, a passkey no longer there", store.Event{Event: "passkey_removed", Detail: "actor=cli target=carol passkey=" + gone}, "carol",
			"Passkey removed", "cli", "carol", "passkey " + gone + " (removed)"},
		{"own account", store.Event{Event: "email_changed", Detail: "actor=alice target=alice email_set=true"}, "alice",
			"E-mail address changed", "alice", "", "email_set=true"},
		{"a sign-in", store.Event{Event: "login", Detail: "credential " + credRef(pk)}, "alice",
			"Signed in", "alice", "", "passkey “Work laptop”"},
		{"a reference ending in a dash", store.Event{Event: "backup_flags_changed", Detail: "credential FGdNZiL-: backup eligible false→true"}, "alice",
			"Passkey backup state changed", "alice", "", "passkey “Phone”: backup eligible false→true"},
		{"a reference at the end", store.Event{Event: "login", Detail: "credential FGdNZiL-"}, "alice",
			"Signed in", "alice", "", "passkey “Phone”"},
		{"an unknown passkey", store.Event{Event: "login_failed", Detail: "passkey not registered (removed or unknown)"}, "",
			"Sign-in refused", "", "", "passkey not registered (removed or unknown)"},
		{"a link made for someone", store.Event{Event: "enrolment_link_created"}, "dave",
			"Enrolment link created", "", "dave", ""},
		{"an event without a name", store.Event{Event: "something_new"}, "bob",
			"something_new", "bob", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.e.At = at
			row := makeAuditRow(c.e, c.user, passkeys)
			if row.Name != c.event || row.Actor != c.actor || row.Target != c.target || row.Detail != c.details {
				t.Errorf("row = %q %q %q %q, want %q %q %q %q", row.Name, row.Actor, row.Target, row.Detail, c.event, c.actor, c.target, c.details)
			}
		})
	}
}

// TestNoNativeDialogs: no page script calls prompt, confirm or alert (issue 20); the in-page
// dialog (dialog.js) does their work. The browser suite also records any call at run time.
func TestNoNativeDialogs(t *testing.T) {
	entries, err := assets.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`\b(?:window\s*\.\s*)?(prompt|confirm|alert)\s*\(`)
	scanned := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		src, err := assets.ReadFile("static/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		scanned++
		for i, line := range strings.Split(string(src), "\n") {
			code, _, _ := strings.Cut(line, "//")
			if m := call.FindStringSubmatch(code); m != nil {
				t.Errorf("static/%s:%d calls %s(): %s", e.Name(), i+1, m[1], strings.TrimSpace(line))
			}
		}
	}
	if scanned < 4 {
		t.Errorf("scanned %d scripts, want latchkey.js, admin.js, tokens.js and dialog.js", scanned)
	}
	// The scan itself finds a call.
	if !call.MatchString(`if (!window.confirm("x")) return;`) || !call.MatchString(`const n = prompt("name")`) {
		t.Fatal("the pattern misses a call")
	}
}

func TestDefaultPasskeyName(t *testing.T) {
	google := uuid.MustParse("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4")
	icloud := uuid.MustParse("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")
	chromeLinux := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	safariPhone := "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	for _, c := range []struct {
		aaguid   []byte
		ua       string
		existing []string
		want     string
	}{
		{google[:], chromeLinux, nil, "Google Password Manager (Chrome on Linux)"},
		{icloud[:], safariPhone, nil, "iCloud Keychain (Safari on iPhone)"},
		{icloud[:], "", nil, "iCloud Keychain"},
		{make([]byte, 16), chromeLinux, nil, "Chrome on Linux"},
		{nil, "", nil, "Passkey"},
		{make([]byte, 16), chromeLinux, []string{"Chrome on Linux"}, "Chrome on Linux 2"},
		{make([]byte, 16), chromeLinux, []string{"Chrome on Linux", "Chrome on Linux 2"}, "Chrome on Linux 3"},
	} {
		var ex []store.Credential
		for _, n := range c.existing {
			ex = append(ex, store.Credential{Name: n})
		}
		if got := defaultPasskeyName(c.aaguid, c.ua, ex, nil); got != c.want {
			t.Errorf("defaultPasskeyName(%x, %q, %v) = %q, want %q", c.aaguid, c.ua, c.existing, got, c.want)
		}
		if got := defaultPasskeyName(c.aaguid, c.ua, ex, nil); len([]rune(got)) > maxPasskeyName {
			t.Errorf("%q is longer than a passkey name may be", got)
		}
	}
}

// TestDefaultPasskeyNameInPageLanguage: the suggested name is written in the enrolment page's
// language; the provider's own name stays as it is.
func TestDefaultPasskeyNameInPageLanguage(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := newLocales(pages, "en")
	if err != nil {
		t.Fatal(err)
	}
	de, fr := ls.byCode["de"].text, ls.byCode["fr"].text
	chrome := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	if got := defaultPasskeyName(make([]byte, 16), chrome, nil, de); got != "Chrome auf Linux" {
		t.Errorf("German: %q", got)
	}
	if got := defaultPasskeyName(nil, "", nil, fr); got != "Clé d'accès" {
		t.Errorf("French, nothing known: %q", got)
	}
}

// TestWhenRendersATimeElement: the exact UTC time as the text and title, the ISO form in datetime
// (which latchkey.js turns into local, relative words); a zero time is "never".
func TestWhenRendersATimeElement(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := newLocales(pages, "en")
	if err != nil {
		t.Fatal(err)
	}
	when := ls.byCode["en"].when
	if got := when(time.Time{}); got != "never" {
		t.Errorf("zero time: %q", got)
	}
	at := time.Date(2026, 12, 1, 9, 5, 0, 0, time.FixedZone("CET", 3600))
	want := `<time datetime="2026-12-01T08:05:00Z" title="2026-12-01 08:05 UTC">2026-12-01 08:05 UTC</time>`
	if got := string(when(at)); got != want {
		t.Errorf("when = %s, want %s", got, want)
	}
}

// TestRecoveryCodeSpellings: a recovery code is accepted as people type it: without dashes, in
// any case, with spaces (issue 20 keeps this).
func TestRecoveryCodeSpellings(t *testing.T) {
	codes, hashes, err := newRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	code := codes[0]
	for _, typed := range []string{code, strings.ToLower(code), strings.ReplaceAll(code, "-", ""),
		strings.ToLower(strings.ReplaceAll(code, "-", "")), " " + strings.ReplaceAll(code, "-", " ") + " "} {
		if got := hashCode(typed); string(got) != string(hashes[0]) {
			t.Errorf("%q is not accepted for %q", typed, code)
		}
	}
	if string(hashCode(codes[1])) == string(hashes[0]) {
		t.Error("another code is accepted")
	}
}
