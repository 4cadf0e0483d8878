package hostile

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// HOST-02, HOST-03 (hostile/CASES.md): every spelling of a rule's host, on any port, reaches
// that rule and never the default policy; hosts that are not plain ASCII names are refused.
func TestHostSpellingsAndPorts(t *testing.T) {
	env := newEnv(t)
	bob := enrol(t, env, "bob", "users")
	root := enrol(t, env, "root", "admins")
	for _, host := range []string{
		"admin.example.com", "ADMIN.Example.COM", "admin.example.com.", "admin.example.com:443",
		"Admin.Example.Com.:443", "admin.example.com:8443", "ADMIN.example.com.:08443",
	} {
		t.Run(host, func(t *testing.T) {
			// The admin rule applies: an admin passes (the default policy would deny) and a
			// member of another group gets FORBID.
			if r := timed(t, func() *lktest.Response { return root.browser.Forward(host, "/", nil) }); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "root" {
				t.Fatalf("root: %d Remote-User %q, want 200 root (the admin rule, not the default policy)", r.StatusCode, r.Header.Get("Remote-User"))
			}
			r := timed(t, func() *lktest.Response { return bob.browser.Forward(host, "/", nil) })
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("bob: %d, want 403", r.StatusCode)
			}
			noRemote(t, r.Header)
			// The same through nginx's header, with the port nginx routed on in the URL.
			r = timed(t, func() *lktest.Response {
				return bob.browser.Do(http.MethodGet, "", "/.latchkey/auth/request", nil, http.Header{"X-Original-Url": {"https://" + host + "/"}})
			})
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("bob at /auth/request: %d, want 403", r.StatusCode)
			}
			noRemote(t, r.Header)
		})
	}
	// A port the proxy says it received the request on beats one the client wrote into Host.
	t.Run("X-Forwarded-Port replaces the port in Host", func(t *testing.T) {
		r := timed(t, func() *lktest.Response {
			return root.browser.Forward("grafana.example.com:8443", "/", http.Header{"X-Forwarded-Port": {"443"}})
		})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%d", r.StatusCode)
		}
	})
	for _, host := range []string{
		"%61dmin.example.com", "\u0430dmin.example.com", "admin.example.com@evil.com", "admin.example.com:0",
		"admin.example.com:65536", "admin..example.com", "admin.example.com:443:443", "admin example.com",
	} {
		t.Run("refused "+host, func(t *testing.T) {
			r := timed(t, func() *lktest.Response { return root.browser.Forward(host, "/", nil) })
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "X-Forwarded-Host") {
				t.Fatalf("%d %q, want 400 naming X-Forwarded-Host", r.StatusCode, r.Body)
			}
			noRemote(t, r.Header)
			alive(t, env)
		})
	}
}

// PATH-01 (hostile/CASES.md): a rule "^/public/" covers the directory /public/ itself and every
// way of writing it, and nothing else.
func TestDirectoryRuleCoversEverySpelling(t *testing.T) {
	env := newEnv(t)
	anon := browser(env)
	for uri, want := range map[string]int{
		"/public/":           http.StatusOK,
		"//public/":          http.StatusOK,
		"/./public/":         http.StatusOK,
		"/x/../public/":      http.StatusOK,
		"/%70ublic/":         http.StatusOK,
		"/public//x":         http.StatusOK,
		"/public/x/..":       http.StatusOK,
		"/public/%2e/":       http.StatusOK,
		"/public/?a=b":       http.StatusOK,
		"/public":            http.StatusUnauthorized, // another path: the default policy (deny)
		"/PUBLIC/":           http.StatusUnauthorized,
		"/public/../admin/":  http.StatusUnauthorized,
		"/public/%2e%2e/x":   http.StatusUnauthorized,
		"/x?/public/":        http.StatusUnauthorized,
		"/public%2Fx":        http.StatusBadRequest,
		"/public/..%2Fadmin": http.StatusBadRequest,
	} {
		t.Run(uri, func(t *testing.T) {
			r := timed(t, func() *lktest.Response {
				return anon.Forward("public.example.com", uri, http.Header{"Accept": {"application/json"}})
			})
			got := r.StatusCode
			if got == http.StatusForbidden {
				got = http.StatusUnauthorized // the default policy deny answers 403; both are DENY here
			}
			if got != want {
				t.Fatalf("%d, want %d\n%s", r.StatusCode, want, r.Body)
			}
			noRemote(t, r.Header)
		})
	}
}

// DBG-01 (hostile/CASES.md): behind a portal proxy every client arrives from the trusted
// address, so the request debugger must answer only an admin's session.
func TestDebuggerBehindPortalProxy(t *testing.T) {
	env := newEnv(t)
	bob := enrol(t, env, "bob", "users")
	root := enrol(t, env, "root", "admins")
	tokenResp := bob.browser.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"grafana.example.com"}})
	var tok struct{ Token string }
	if tokenResp.StatusCode != http.StatusCreated || tokenResp.JSON(&tok) != nil {
		t.Fatalf("token: %d %s", tokenResp.StatusCode, tokenResp.Body)
	}
	hdr := func(extra ...string) http.Header {
		h := http.Header{"Accept": {"application/json"}, "X-Forwarded-Host": {"grafana.example.com"}, "X-Forwarded-Uri": {"/"},
			"X-Forwarded-Proto": {"https"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	for name, do := range map[string]func() *lktest.Response{
		"no session": func() *lktest.Response {
			return browser(env).Do(http.MethodGet, "", "/.latchkey/debug/request", nil, hdr())
		},
		"another user's session": func() *lktest.Response {
			return bob.browser.Do(http.MethodGet, "", "/.latchkey/debug/request", nil, hdr())
		},
		"an API token": func() *lktest.Response {
			return browser(env).Do(http.MethodGet, "", "/.latchkey/debug/request", nil, hdr("Authorization", "Bearer "+tok.Token))
		},
		"a forged session cookie": func() *lktest.Response {
			return browser(env).Do(http.MethodGet, "", "/.latchkey/debug/request", nil, hdr("Cookie", "latchkey_session=forged"))
		},
	} {
		t.Run("refused: "+name, func(t *testing.T) {
			r := timed(t, do)
			if r.StatusCode != http.StatusForbidden || strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
				strings.Contains(string(r.Body), "grafana.example.com") || strings.Contains(string(r.Body), "Decision") {
				t.Fatalf("%d %s: the report was served\n%.400s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
			noRemote(t, r.Header)
		})
	}
	t.Run("allowed: an admin session", func(t *testing.T) {
		r := timed(t, func() *lktest.Response {
			return root.browser.Do(http.MethodGet, "", "/.latchkey/debug/request", nil, hdr())
		})
		var rep struct {
			PeerTrusted bool   `json:"peer_trusted"`
			Decision    string `json:"decision"`
			Cookie      struct {
				User string `json:"user"`
			} `json:"cookie"`
		}
		if r.StatusCode != http.StatusForbidden || json.Unmarshal(r.Body, &rep) != nil || !rep.PeerTrusted ||
			rep.Decision != "allowed" || rep.Cookie.User != "root" {
			t.Fatalf("%d %+v\n%.400s", r.StatusCode, rep, r.Body)
		}
		noRemote(t, r.Header)
	})
}
