package hostile

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// authRoutes lists every pattern registered in auth.Routes() by reading the auth package's
// source, so that a route added later is covered without editing this test.
func authRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "auth", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("auth sources: %v", err)
	}
	re := regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+ /\.latchkey/[^"]*)"`)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			seen[string(m[1])] = true
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	if len(out) < 20 {
		t.Fatalf("found only %d routes: %v", len(out), out)
	}
	return out
}

// checkSecurityHeaders asserts the headers every Latchkey answer carries.
func checkSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	script, ok := directives["script-src"]
	if !ok {
		script = directives["default-src"]
	}
	if csp == "" || strings.Contains(script, "'unsafe-inline'") || strings.Contains(script, "'unsafe-eval'") || strings.Contains(script, "*") {
		t.Errorf("Content-Security-Policy %q: want one with no inline or eval script", csp)
	}
	if directives["frame-ancestors"] != "'none'" {
		t.Errorf("frame-ancestors = %q, want 'none'", directives["frame-ancestors"])
	}
	if got := h.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if got := h.Get("Cache-Control"); !strings.Contains(got, "no-store") {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

// TestSecurityHeadersOnEveryRoute requests every route of auth.Routes(), signed out and signed in
// as an admin, through the whole handler and through auth.Routes() alone.
func TestSecurityHeadersOnEveryRoute(t *testing.T) {
	env := newEnv(t)
	admin := enrol(t, env, "root", "admins")
	cookie := admin.browser.Session()
	for _, pattern := range authRoutes(t) {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.ReplaceAll(path, "{id}", admin.user.ID)
		if strings.HasSuffix(path, "/static/") {
			path += "latchkey.js"
		}
		for _, signedIn := range []bool{false, true} {
			name := pattern + "/signed out"
			if signedIn {
				name = pattern + "/signed in"
			}
			t.Run(name, func(t *testing.T) {
				var body []byte
				if method != http.MethodGet {
					body = []byte(`{}`)
				}
				hdr := http.Header{"Origin": {origin}, "Content-Type": {"application/json"}}
				c := browser(env)
				if signedIn {
					c.Cookies["latchkey_session"] = cookie
				}
				r := c.Do(method, "", path, bytes.NewReader(body), hdr)
				checkSecurityHeaders(t, r.Header)

				// auth.Routes() on its own, without the proxy in front.
				req := httptest.NewRequest(method, "http://auth.example.com"+path, bytes.NewReader(body))
				req.Header = hdr.Clone()
				if signedIn {
					req.AddCookie(&http.Cookie{Name: "latchkey_session", Value: cookie})
				}
				w := httptest.NewRecorder()
				env.Auth.Routes().ServeHTTP(w, req)
				checkSecurityHeaders(t, w.Header())
			})
		}
	}
	t.Run("forward-auth answers are not cached", func(t *testing.T) {
		for _, c := range []*lktest.Client{env.Client(), admin.browser} {
			r := c.Forward("grafana.example.com", "/", navigation)
			if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
				t.Errorf("forward answer %d: Cache-Control %q", r.StatusCode, r.Header.Get("Cache-Control"))
			}
		}
	})
	t.Run("error pages", func(t *testing.T) {
		r := env.Client().Get("/.latchkey/no-such-page")
		checkSecurityHeaders(t, r.Header)
	})
}
