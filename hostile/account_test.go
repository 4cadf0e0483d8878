package hostile

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestStolenCookieCannotTakeOverAccount (CASES.md ACC-01): a thief holding only a copy of the
// victim's session cookie, once the victim's last passkey check is more than five minutes old,
// can add no way into the account and take none away: adding a passkey, removing one, new
// recovery codes, a new API token and a new e-mail address (where recovery links go) are each
// refused with step_up and write nothing, and the thief's own passkey does not pass the step-up.
func TestStolenCookieCannotTakeOverAccount(t *testing.T) {
	env := newEnv(t)
	victim := enrol(t, env, "victim")
	mallory := enrol(t, env, "mallory")
	thief := browser(env)
	thief.Cookies["latchkey_session"] = victim.browser.Session()
	if _, ok := forwardAllowed(t, env, victim.browser.Session()); !ok {
		t.Fatal("the stolen cookie does not work before the test")
	}
	env.Clock.Advance(6 * time.Minute)

	attempts := []struct {
		name, path string
		body       any
	}{
		{"add a passkey", "/.latchkey/api/register/begin", map[string]string{}},
		{"remove the victim's passkey", "/.latchkey/api/passkeys/remove", map[string]string{"id": base64.RawURLEncoding.EncodeToString(victim.pk.ID)}},
		{"new recovery codes", "/.latchkey/api/recovery-codes", map[string]string{}},
		{"mint an API token", "/.latchkey/api/tokens", map[string]any{"name": "exfil", "hosts": []string{"grafana.example.com"}, "expires_in": "8760h"}},
		{"redirect recovery mail", "/.latchkey/api/account/email", map[string]string{"email": "thief@evil.example"}},
	}
	try := func(when string) {
		for _, a := range attempts {
			t.Run(when+"/"+a.name, func(t *testing.T) {
				r := reject(t, env, http.StatusUnauthorized, func() *lktest.Response { return thief.PostJSON(a.path, a.body) })
				if !strings.Contains(string(r.Body), `"step_up":true`) {
					t.Errorf("refusal without step_up: %s", r.Body)
				}
			})
		}
	}
	try("cookie only")

	// The thief's own passkey, offered for the victim's session, is refused and renews nothing.
	r := thief.PostJSON("/.latchkey/api/login/begin", map[string]any{"step_up": true})
	o, err := lktest.ParseOptions(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if fin := thief.FinishLogin(mallory.pk.Assert(o, origin, lktest.Ceremony{}), ""); fin.StatusCode != http.StatusForbidden {
		t.Fatalf("step-up with the thief's passkey: %d %s", fin.StatusCode, fin.Body)
	}
	try("after a step-up with another account's passkey")

	if _, ok := forwardAllowed(t, env, victim.browser.Session()); !ok {
		t.Fatal("the victim's session was harmed")
	}
}
