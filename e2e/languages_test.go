package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// pageWords are a few words of each page in each shipped language: the h1 and the word of the
// switcher entry that names the language.
var pageWords = []struct {
	lang, name                        string
	login, recover, notFound, enrolH1 string
	checking                          string // a script message, from the page's JSON block
}{
	{"en", "English", "Sign in", "Recover access", "Not found", "Create a passkey", "Checking…"},
	{"de", "Deutsch", "Anmelden", "Zugang wiederherstellen", "Nicht gefunden", "Passkey erstellen", "Wird geprüft …"},
	{"fr", "Français", "Se connecter", "Récupérer l'accès", "Introuvable", "Créer une clé d'accès", "Vérification…"},
	{"es", "Español", "Iniciar sesión", "Recuperar el acceso", "No encontrado", "Crear una llave de acceso", "Comprobando…"},
	{"nl", "Nederlands", "Inloggen", "Toegang herstellen", "Niet gevonden", "Toegangssleutel maken", "Controleren…"},
}

// TestPagesInEveryLanguage (issue 21): the switcher's link sets the language, the choice is
// remembered (the next pages come in it without asking again), and the login, recovery, error and
// enrolment pages render in each shipped language: <html lang>, title, heading, and the page
// script's own words.
func TestPagesInEveryLanguage(t *testing.T) {
	srv := startServer(t, serverConfig{})
	for _, w := range pageWords {
		t.Run(w.lang, func(t *testing.T) {
			tb := newTab(t, tabOptions{})
			tb.navigate(srv.URL + "/.latchkey/login")
			if w.lang != "en" {
				// Chromium asks for en-US: the first page is English, and its switcher changes it.
				if got := eval[string](tb, `document.documentElement.lang`); got != "en" {
					t.Fatalf("first page in %q, want en (the browser's language)", got)
				}
				tb.do(chromedp.Click(chromedp.CSS(`#languages a[lang="` + w.lang + `"]`)))
				tb.waitFor("the page in "+w.lang, `document.documentElement.lang === "`+w.lang+`"`)
			}
			check := func(page, h1, title string) {
				t.Helper()
				if got := eval[string](tb, `document.documentElement.lang`); got != w.lang {
					t.Errorf("%s: lang %q", page, got)
				}
				if got := eval[string](tb, `document.querySelector("h1").textContent`); got != h1 {
					t.Errorf("%s: heading %q, want %q", page, got, h1)
				}
				if got := eval[string](tb, `document.title`); got != title+" · Latchkey" {
					t.Errorf("%s: title %q", page, got)
				}
				if got := eval[string](tb, `document.querySelector("#languages [aria-current]").textContent`); got != w.name {
					t.Errorf("%s: switcher marks %q as current", page, got)
				}
				tb.shot(page + "-" + w.lang)
			}
			tb.waitFor("the login page", `document.getElementById("passkey-login") !== null`)
			check("login", w.login, w.login)
			if got := eval[string](tb, `JSON.parse(document.getElementById("messages").textContent)["Checking…"]`); got != w.checking {
				t.Errorf("script message %q, want %q", got, w.checking)
			}
			tb.navigate(srv.URL + "/.latchkey/recover") // no lang= from here on: the cookie remembers
			check("recover", w.recover, w.recover)
			tb.navigate(srv.URL + "/.latchkey/no-such-page")
			check("not-found", w.notFound, w.notFound)
			tb.navigate(srv.EnrolURL)
			tb.waitFor("the enrolment page", `document.getElementById("passkey-register") !== null`)
			check("enroll", w.enrolH1, w.enrolH1)
			if bad := eval[[]string](tb, overflowScript); len(bad) > 0 {
				t.Errorf("the enrolment page overflows: %v", bad)
			}
		})
	}
}
