package oidc_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/oidc"
)

var pageTitleRE = regexp.MustCompile(`<title>([^<]*) · `)

// text is a page's HTML with its character references resolved, for plain-text comparisons.
func text(b []byte) string { return html.UnescapeString(string(b)) }

// TestConsentInSpanish: the consent page is in the reader's language, its title and heading
// naming the app inside the translated sentence, the scopes described in the same language; the
// refusal for a user outside the app's groups too.
func TestConsentInSpanish(t *testing.T) {
	f := newFixture(t)
	c := f.addClient(oidc.NewClient{Name: "Immich"})
	alice := f.user("alice")
	alice.b.Cookies["latchkey_lang"] = "es"

	s := f.browse(alice.b, c.authURL(newFlow()))
	if s.resp.StatusCode != http.StatusOK || !consentID.Match(s.resp.Body) {
		t.Fatalf("no consent page: %d %s", s.resp.StatusCode, s.resp.Body)
	}
	page := text(s.resp.Body)
	if m := pageTitleRE.FindStringSubmatch(page); m == nil || m[1] != "¿Permitir Immich?" {
		t.Errorf("title %q, want ¿Permitir Immich?", m)
	}
	for _, want := range []string{
		`<html lang="es">`,
		"<h1>¿Permitir Immich?</h1>",
		"<strong>Immich</strong> pide iniciar tu sesión como <strong>alice</strong>. Podrá:",
		"<li>Saber quién eres (el ID de tu cuenta)</li>",
		"<li>Ver tu dirección de correo</li>",
		"<li>Mantener la sesión iniciada cuando no la estés usando</li>",
		">Permitir</button>", ">Cancelar</button>",
		`value="allow"`, `value="deny"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Allow") || strings.Contains(page, "It will be able to") {
		t.Errorf("English left on the Spanish consent page:\n%s", page)
	}
	// The Spanish form still works.
	if d := f.consent(alice.b, s.resp, "allow"); d.location == "" || f.portalPath(d.location) != "" {
		t.Fatalf("consent in Spanish: %d %s", d.resp.StatusCode, d.location)
	}

	t.Run("refused by the app's groups", func(t *testing.T) {
		ops := f.addClient(oidc.NewClient{Name: "Grafana", Groups: []string{"ops"}})
		s := f.browse(alice.b, ops.authURL(newFlow()))
		want := "Tu cuenta no puede iniciar sesión en Grafana. Pide a tu administrador que te añada a uno de sus grupos."
		if s.resp.StatusCode != http.StatusForbidden || !strings.Contains(text(s.resp.Body), want) {
			t.Fatalf("refusal: %d %s", s.resp.StatusCode, s.resp.Body)
		}
	})
}

// TestAdminAppsInDutch: the Apps console and its refusals, with the refused value filled in
// after translation.
func TestAdminAppsInDutch(t *testing.T) {
	f := newFixture(t)
	root := f.user("root", "admins")
	root.b.Header.Set("Accept-Language", "nl")
	page := oidc.Prefix + "/admin"
	r := root.b.Get(page)
	body := text(r.Body)
	if r.StatusCode != http.StatusOK || !strings.Contains(body, "<title>Beheer · Apps · ") || !strings.Contains(body, "Nog geen apps.") {
		t.Fatalf("Apps page in Dutch: %d %s", r.StatusCode, body)
	}
	csrf := string(adminCSRF.FindSubmatch(r.Body)[1])
	add := url.Values{"csrf": {csrf}, "name": {"grafana"}, "redirect_uris": {"https://grafana.example.com/cb"}, "groups": {"ops, admins"}}
	if r := postForm(f, root.b, page+"/clients", add, "same-origin"); r.StatusCode != http.StatusOK ||
		!strings.Contains(text(r.Body), "Kopieer het geheim nu") || !strings.Contains(text(r.Body), "groepen ops, admins") {
		t.Fatalf("add: %d %s", r.StatusCode, r.Body)
	}
	for _, tc := range []struct {
		name, field, value, want string
	}{
		{"duplicate", "name", "grafana", "Er bestaat al een app met de naam grafana."},
		{"bad redirect URI", "redirect_uris", "https://x.example.com/cb#frag", `redirect-URI "https://x.example.com/cb#frag": verwacht een absolute URI zonder fragment`},
		{"bad scheme", "redirect_uris", "javascript:alert(1)", `redirect-URI "javascript:alert(1)": dit schema kan geen doorverwijsdoel zijn`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range add {
				form[k] = v
			}
			form.Set("name", "other")
			form.Set(tc.field, tc.value)
			r := postForm(f, root.b, page+"/clients", form, "same-origin")
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(text(r.Body), tc.want) {
				t.Fatalf("%d, want 400 saying %q:\n%s", r.StatusCode, tc.want, r.Body)
			}
		})
	}
	if r := postForm(f, root.b, page+"/clients/remove", url.Values{"csrf": {csrf}, "name": {"nope"}}, "same-origin"); !strings.Contains(text(r.Body), "Geen app met de naam nope.") {
		t.Errorf("removing an unknown app: %d %s", r.StatusCode, r.Body)
	}
}
