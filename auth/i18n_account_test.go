package auth_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestAccountPagesInGerman (issue 21): with German chosen once (?lang=de on any page), the account
// and API token pages, their script's words, counted messages in their plural forms, and the
// account API's refusals and answers all come in German.
func TestAccountPagesInGerman(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	b := alice.b
	newToken(t, b, map[string]any{"name": "Sicherung", "hosts": []string{"app.localhost"}, "expires_in": "720h"})

	// The account page, reached with the switcher's choice, which the browser keeps.
	r := b.Get("/.latchkey/account?lang=de")
	page := string(r.Body)
	if r.StatusCode != http.StatusOK || !strings.Contains(page, `<html lang="de">`) || !strings.Contains(page, "<title>Ihr Konto · Latchkey</title>") {
		t.Fatalf("account page not German: %d\n%s", r.StatusCode, page)
	}
	for _, want := range []string{
		"Angemeldet als", "<h2>Passkeys</h2>", "gerätegebundener Passkey", "Umbenennen", "Entfernen",
		"Passkey hinzufügen", "<h2>Wiederherstellungscodes</h2>", "Neue Wiederherstellungscodes erstellen",
		"<h2>Sitzungen</h2>", "Überall abmelden", "Auch meine API-Tokens widerrufen", "<h2>API-Tokens</h2>",
		`placeholder="name@example.com"`,
		// A count in its plural form (ten codes, "other").
		`<p id="codes-left">10 unbenutzte Wiederherstellungscodes.</p>`,
		// The only passkey, with unused codes: its removal is explained before it happens.
		"Dies ist Ihr einziger Passkey. Wenn Sie ihn entfernen",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	for _, english := range []string{"Sign out everywhere", "unused recovery codes", "Add a passkey", "last used", "Rename"} {
		if strings.Contains(visibleText(page), english) {
			t.Errorf("account page still says %q", english)
		}
	}
	// The page script's words come with the page, a counted one as its forms for Intl.PluralRules.
	msgs := scriptMessages(t, page)
	if got := msgs["Sign out everywhere?"]; got != "Überall abmelden?" {
		t.Errorf("script message %q", got)
	}
	forms, _ := msgs["{n} unused recovery codes."].(map[string]any)
	if forms["one"] != "{n} unbenutzter Wiederherstellungscode." || forms["other"] != "{n} unbenutzte Wiederherstellungscodes." {
		t.Errorf("plural forms for the script: %v", msgs["{n} unused recovery codes."])
	}

	// The tokens page: the remembered choice, and "1 Tag" next to "7 Tage" (the forms one and other).
	r = b.Get("/.latchkey/tokens")
	page = string(r.Body)
	if r.StatusCode != http.StatusOK || !strings.Contains(page, "<title>API-Tokens · Latchkey</title>") {
		t.Fatalf("tokens page not German: %d\n%s", r.StatusCode, page)
	}
	for _, want := range []string{"<h2>Neues Token</h2>", "Läuft ab nach", `<option value="24h">1 Tag</option>`,
		`<option value="168h">7 Tage</option>`, `<option value="8760h">1 Jahr</option>`, "Token erstellen",
		"<h2>Ihre Tokens</h2>", "Sicherung", " · aktiv · erstellt ", "Widerrufen", `placeholder="Backup-Skript"`} {
		if !strings.Contains(page, want) {
			t.Errorf("tokens page lacks %q", want)
		}
	}
	if strings.Contains(visibleText(page), "Create token") || strings.Contains(visibleText(page), "30 days") {
		t.Error("tokens page still in English")
	}

	// Refusals come in German: a rename with an empty name (a message with its count filled in),
	// an unknown session, a token for a host that is none, and an action whose passkey check is old.
	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{"/.latchkey/api/passkeys/rename", map[string]string{"id": credID(alice.pk), "name": "  "}, "ein Passkey-Name hat 1 bis 64 Zeichen"},
		{"/.latchkey/api/sessions/revoke", map[string]string{"id": "nope"}, "unbekannte Sitzung"},
		{"/.latchkey/api/tokens", map[string]any{"name": "x", "hosts": []string{"a b"}}, `"a b" ist kein Hostname wie app.example.com`},
	} {
		if r := b.PostJSON(tc.path, tc.body); r.StatusCode/100 != 4 || errorOf(r) != tc.want {
			t.Errorf("%s: %d %s, want %q", tc.path, r.StatusCode, r.Body, tc.want)
		}
	}
	stale(env)
	var refusal struct {
		Error  string `json:"error"`
		StepUp bool   `json:"step_up"`
	}
	r = b.PostJSON("/.latchkey/api/recovery-codes", map[string]any{})
	if r.StatusCode != http.StatusUnauthorized || r.JSON(&refusal) != nil || !refusal.StepUp ||
		refusal.Error != "bestätigen Sie zuerst mit Ihrem Passkey, dass Sie es sind" {
		t.Errorf("step-up refusal: %d %s", r.StatusCode, r.Body)
	}

	// Signing out everywhere says what ended in German, one session and one token (the form one).
	var out struct {
		Message string `json:"message"`
	}
	r = b.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]bool{"tokens": true})
	if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || out.Message != "1 Sitzung beendet. 1 API-Token widerrufen." {
		t.Errorf("sign out everywhere: %d %s", r.StatusCode, r.Body)
	}
}

var (
	messagesRe = regexp.MustCompile(`(?s)<script type="application/json" id="messages">(.*?)</script>`)
	markupRe   = regexp.MustCompile(`(?s)<script.*?</script>|<[^>]*>`)
)

// scriptMessages is the page's JSON block of script words.
func scriptMessages(t *testing.T, page string) map[string]any {
	t.Helper()
	m := messagesRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no messages block")
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(m[1]), &out); err != nil {
		t.Fatalf("messages block: %v", err)
	}
	return out
}

// visibleText is a page without its markup and scripts: what a person reads.
func visibleText(page string) string { return markupRe.ReplaceAllString(page, " ") }
