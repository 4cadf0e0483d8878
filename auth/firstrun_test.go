package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// brand is in every Latchkey page's header; a bare mux or file-server answer has none of it.
const brand = `<header class="brand">`

// TestEveryErrorStatusIsBranded: each error a person can meet under /.latchkey/ answers with
// Latchkey's page (status, title, links), and the API with short JSON, never Go's plain text.
func TestEveryErrorStatusIsBranded(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	anon := env.Client()

	pages := []struct {
		name   string
		client *lktest.Client
		method string
		path   string
		status int
		title  string
	}{
		{"unknown page", anon, http.MethodGet, "/.latchkey/nothing-here", http.StatusNotFound, "Not found"},
		{"unknown nested page", anon, http.MethodGet, "/.latchkey/auth/nothing", http.StatusNotFound, "Not found"},
		{"missing static file", anon, http.MethodGet, "/.latchkey/static/missing.css", http.StatusNotFound, "Not found"},
		{"static directory", anon, http.MethodGet, "/.latchkey/static/", http.StatusNotFound, "Not found"},
		{"wrong method on a page", anon, http.MethodPut, "/.latchkey/login", http.StatusMethodNotAllowed, "Method Not Allowed"},
		{"enrolment without a link", anon, http.MethodGet, "/.latchkey/enroll", http.StatusForbidden, "Enrolment link needed"},
		{"signed in, unknown page", alice.b, http.MethodGet, "/.latchkey/nope", http.StatusNotFound, "Not found"},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			r := p.client.Do(p.method, "", p.path, nil, nil)
			if r.StatusCode != p.status {
				t.Fatalf("%s %s: %d, want %d\n%s", p.method, p.path, r.StatusCode, p.status, r.Body)
			}
			body := string(r.Body)
			if !strings.Contains(body, brand) || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("not the branded page (%s):\n%s", r.Header.Get("Content-Type"), body)
			}
			if got := pageTitle(r.Body); got != p.title {
				t.Errorf("title %q, want %q", got, p.title)
			}
			if r.Header.Get("Content-Security-Policy") == "" {
				t.Error("no security headers on the error page")
			}
			if p.client == alice.b && !strings.Contains(body, "/.latchkey/account") {
				t.Error("a signed-in person is not offered the account page")
			}
		})
	}
	t.Run("405 says which methods work", func(t *testing.T) {
		r := anon.Do(http.MethodPut, "", "/.latchkey/login", nil, nil)
		if got := r.Header.Get("Allow"); !strings.Contains(got, "GET") {
			t.Fatalf("Allow %q, want GET", got)
		}
	})
	t.Run("too many attempts", func(t *testing.T) {
		b := from(env, "192.0.2.77")
		var r *lktest.Response
		for range 50 {
			if r = b.Get("/.latchkey/enroll?token=not-a-token"); r.StatusCode == http.StatusTooManyRequests {
				break
			}
		}
		if r.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(r.Body), brand) || pageTitle(r.Body) != "Too many attempts" {
			t.Fatalf("after many bad links: %d %q\n%s", r.StatusCode, pageTitle(r.Body), r.Body)
		}
	})
	t.Run("server error", func(t *testing.T) {
		// A broken store behind a signed-in page: the person gets the branded 500, not a blank.
		b := env.Client()
		b.Cookies = alice.b.Cookies
		env.Store.DB().Exec("DROP TABLE recovery_codes")
		r := b.Get("/.latchkey/account")
		if r.StatusCode != http.StatusInternalServerError || !strings.Contains(string(r.Body), brand) || pageTitle(r.Body) != "Something went wrong" {
			t.Fatalf("account page with a broken store: %d %q\n%s", r.StatusCode, pageTitle(r.Body), r.Body)
		}
	})
	for _, api := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/.latchkey/api/login/begin", http.StatusMethodNotAllowed},
		{http.MethodGet, "/.latchkey/api/nothing", http.StatusNotFound},
	} {
		r := anon.Do(api.method, "", api.path, nil, nil)
		if r.StatusCode != api.status || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(r.Body), `"error"`) {
			t.Errorf("%s %s: %d %s %s, want %d with a JSON error", api.method, api.path, r.StatusCode, r.Header.Get("Content-Type"), r.Body, api.status)
		}
	}
	big := anon.Do(http.MethodPost, "", "/.latchkey/api/login/begin", strings.NewReader(strings.Repeat(" ", 70<<10)),
		http.Header{"Content-Type": {"application/json"}, "Origin": {env.Origin()}})
	if big.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(big.Body), `"error"`) {
		t.Errorf("oversized API body: %d %s, want 413 with a JSON error", big.StatusCode, big.Body)
	}
}

// TestLogoutLinkAsksFirst: GET /.latchkey/logout (a link, a prefetch) signs nobody out; it shows
// one button, and only the button's POST ends the session.
func TestLogoutLinkAsksFirst(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	for range 3 {
		r := alice.b.Get("/.latchkey/logout")
		if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), `id="logout-confirm"`) || !strings.Contains(string(r.Body), ">alice<") {
			t.Fatalf("GET /.latchkey/logout: %d\n%s", r.StatusCode, r.Body)
		}
	}
	if !allowed(alice.b, "alice") {
		t.Fatal("loading the sign-out page ended the session")
	}
	if r := alice.b.PostJSON("/.latchkey/logout", map[string]string{}); r.StatusCode != http.StatusOK {
		t.Fatalf("POST /.latchkey/logout: %d %s", r.StatusCode, r.Body)
	}
	if allowed(alice.b, "alice") {
		t.Fatal("the session outlived the confirmed sign-out")
	}
	if r := env.Client().Get("/.latchkey/logout"); r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "/.latchkey/login") {
		t.Fatalf("sign-out page without a session: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestLoginNamesTheApplication: the login page says which application sent the person there,
// from the validated rd only; an rd that is refused names nothing.
func TestLoginNamesTheApplication(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	b := env.Client()
	r := b.Get("/.latchkey/login?rd=" + url.QueryEscape("http://app.localhost/dash?x=1"))
	if got, want := pageTitle(r.Body), "Sign in to app.localhost"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	if !strings.Contains(string(r.Body), "<strong>app.localhost</strong> needs you to sign in") {
		t.Errorf("the page does not name the application:\n%s", r.Body)
	}
	for _, rd := range []string{"https://evil.example/", "//evil.example/", ""} {
		r := b.Get("/.latchkey/login?rd=" + url.QueryEscape(rd))
		if got := pageTitle(r.Body); got != "Sign in" || strings.Contains(string(r.Body), "evil") {
			t.Errorf("rd %q: title %q (a refused rd must name nothing)", rd, got)
		}
	}
}

// TestTypedNamesIgnoreCase: a person who types their name with other capitals ("Alice" for
// alice) is still recognised where a name is typed, and a recovery code works without its
// dashes and in lower case.
func TestTypedNamesIgnoreCase(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	code := strings.ToLower(strings.ReplaceAll(alice.codes[0], "-", ""))
	r := env.Client().PostJSON("/.latchkey/api/recover", map[string]string{"user": "Alice", "code": code})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("recovery as %q with %q: %d %s", "Alice", code, r.StatusCode, r.Body)
	}
}
