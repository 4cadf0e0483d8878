package hostile

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// stateChanging is every POST endpoint of auth.Routes() that changes state.
var stateChanging = []string{
	"/.latchkey/logout",
	"/.latchkey/api/register/begin",
	"/.latchkey/api/register/finish",
	"/.latchkey/api/login/begin",
	"/.latchkey/api/login/finish",
	"/.latchkey/api/recover",
	"/.latchkey/api/recover/email",
	"/.latchkey/api/passkeys/rename",
	"/.latchkey/api/passkeys/remove",
	"/.latchkey/api/recovery-codes",
	"/.latchkey/api/sessions/revoke",
	"/.latchkey/api/sessions/revoke-all",
	"/.latchkey/api/tokens",
}

// TestCSRF is PUB-17: cross-site requests to every state-changing endpoint are refused before
// they do anything, and the victim's session survives.
func TestCSRF(t *testing.T) {
	env := newEnv(t)
	victim := enrol(t, env, "alice")
	cookie := victim.browser.Session()
	attacks := []struct {
		name   string
		status int
		hdr    http.Header
	}{
		{"Origin evil.com", http.StatusForbidden, http.Header{"Origin": {"https://evil.com"}, "Content-Type": {"application/json"}}},
		{"Origin of a protected sibling", http.StatusForbidden, http.Header{"Origin": {"https://grafana.example.com"}, "Content-Type": {"application/json"}}},
		{"Origin null", http.StatusForbidden, http.Header{"Origin": {"null"}, "Content-Type": {"application/json"}}},
		{"Origin over http", http.StatusForbidden, http.Header{"Origin": {"http://auth.example.com"}, "Content-Type": {"application/json"}}},
		{"no Origin, Sec-Fetch-Site cross-site", http.StatusForbidden, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}}},
		{"no Origin, Sec-Fetch-Site same-site", http.StatusForbidden, http.Header{"Sec-Fetch-Site": {"same-site"}, "Content-Type": {"application/json"}}},
		{"no Origin at all", http.StatusForbidden, http.Header{"Content-Type": {"application/json"}}},
		{"our Origin, Sec-Fetch-Site cross-site", http.StatusForbidden, http.Header{"Origin": {origin}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}}},
		{"text/plain", http.StatusUnsupportedMediaType, http.Header{"Origin": {origin}, "Content-Type": {"text/plain"}}},
		{"form-urlencoded carrying JSON", http.StatusUnsupportedMediaType, http.Header{"Origin": {origin}, "Content-Type": {"application/x-www-form-urlencoded"}}},
		{"multipart", http.StatusUnsupportedMediaType, http.Header{"Origin": {origin}, "Content-Type": {"multipart/form-data; boundary=x"}}},
		{"no content type", http.StatusUnsupportedMediaType, http.Header{"Origin": {origin}}},
	}
	for _, path := range stateChanging {
		for _, a := range attacks {
			t.Run(path+"/"+a.name, func(t *testing.T) {
				c := browser(env)
				c.Cookies["latchkey_session"] = cookie
				c.Origin = ""
				reject(t, env, a.status, func() *lktest.Response {
					return c.Do(http.MethodPost, "", path, bytes.NewReader([]byte(`{"name":"x","id":"x","user":"alice","code":"x"}`)), a.hdr)
				})
				if _, ok := forwardAllowed(t, env, cookie); !ok {
					t.Fatal("the victim's session was ended by a cross-site request")
				}
			})
		}
	}
	t.Run("DELETE /.latchkey/api/tokens/{id} cross-site", func(t *testing.T) {
		c := browser(env)
		c.Cookies["latchkey_session"] = cookie
		reject(t, env, http.StatusForbidden, func() *lktest.Response {
			return c.Do(http.MethodDelete, "", "/.latchkey/api/tokens/x", nil, http.Header{"Origin": {"https://evil.com"}})
		})
	})
	t.Run("control/same-origin JSON passes the guard", func(t *testing.T) {
		c := browser(env)
		c.Cookies["latchkey_session"] = cookie
		if r := c.PostJSON("/.latchkey/api/login/begin", map[string]any{}); r.StatusCode != http.StatusOK {
			t.Fatalf("same-origin login/begin: %d %s", r.StatusCode, r.Body)
		}
	})
}
