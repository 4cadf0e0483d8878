package auth_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestLanguageServed: a switcher link sets latchkey_lang (Lax, a year), the next page and the API
// errors the page shows come in that language, Accept-Language alone chooses too, and the
// default is English.
func TestLanguageServed(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	b := env.Client()
	if r := b.Get("/.latchkey/login"); !strings.Contains(string(r.Body), `<html lang="en">`) || !strings.Contains(string(r.Body), "<title>Sign in · Latchkey</title>") {
		t.Fatalf("default page not English:\n%s", r.Body)
	}
	r := b.Get("/.latchkey/login?lang=de")
	var ck *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "latchkey_lang" {
			ck = c
		}
	}
	if ck == nil || ck.Value != "de" || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge < 300*24*3600 {
		t.Fatalf("switcher cookie %+v", ck)
	}
	if !strings.Contains(string(r.Body), `<html lang="de">`) || !strings.Contains(string(r.Body), "Mit Passkey anmelden") {
		t.Fatalf("switched page not German:\n%s", r.Body)
	}
	if r := b.Get("/.latchkey/recover"); !strings.Contains(string(r.Body), "<title>Zugang wiederherstellen · Latchkey</title>") {
		t.Errorf("the choice was not remembered:\n%s", r.Body)
	}
	res := b.PostJSON("/.latchkey/api/login/finish", map[string]string{})
	var e struct{ Error string }
	if err := res.JSON(&e); err != nil || e.Error != "keine Anmeldung im Gange; beginnen Sie von vorn" {
		t.Errorf("API error in German: %d %s", res.StatusCode, res.Body)
	}

	alice := join(t, env, "alice")
	alice.b.Get("/.latchkey/login?lang=fr")
	for _, page := range []string{"/.latchkey/account", "/.latchkey/logout"} {
		if r := alice.b.Get(page); !strings.Contains(string(r.Body), `<html lang="fr">`) || !strings.Contains(string(r.Body), `id="languages"`) {
			t.Errorf("%s is not in the chosen French:\n%s", page, r.Body)
		}
	}

	other := env.Client()
	r = other.Do(http.MethodGet, "", "/.latchkey/login", nil, http.Header{"Accept-Language": {"nl-BE,nl;q=0.9,en;q=0.5"}})
	if !strings.Contains(string(r.Body), `<html lang="nl">`) || !strings.Contains(string(r.Body), "Inloggen met een toegangssleutel") {
		t.Errorf("Accept-Language nl-BE did not give Dutch:\n%s", r.Body)
	}
	if len(r.Cookies()) != 0 {
		t.Errorf("negotiation set a cookie: %v", r.Cookies())
	}
	res = other.Do(http.MethodPost, "", "/.latchkey/api/login/finish", strings.NewReader("{}"),
		http.Header{"Content-Type": {"application/json"}, "Accept-Language": {"fr"}, "Origin": {env.Public.Scheme + "://" + env.Public.Host}})
	if err := res.JSON(&e); err != nil || e.Error != "aucune connexion en cours ; recommencez" {
		t.Errorf("API error in French: %d %s", res.StatusCode, res.Body)
	}
}

// TestLanguageCookieDomain: with session.cookie_domain, the language choice is remembered on the
// same domain as the session, so that the pages the proxy shows on an application's host
// (forbidden, not answering) follow it; without one it stays on the portal's host.
func TestLanguageCookieDomain(t *testing.T) {
	for _, tc := range []struct{ cookieDomain, want string }{{"example.com", "example.com"}, {"", ""}} {
		env := lktest.New(t, lktest.Config{PublicURL: "https://auth.example.com", CookieDomain: tc.cookieDomain, RPID: "example.com"})
		var ck *http.Cookie
		for _, c := range env.Client().Get("/.latchkey/login?lang=nl").Cookies() {
			if c.Name == "latchkey_lang" {
				ck = c
			}
		}
		if ck == nil || ck.Value != "nl" || ck.Domain != tc.want || !ck.Secure || !ck.HttpOnly {
			t.Errorf("cookie_domain %q: language cookie %+v, want domain %q, Secure, HttpOnly", tc.cookieDomain, ck, tc.want)
		}
	}
}
