package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

var navigation = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

// enrolled adds a user with one passkey and returns a browser signed in with it.
func enrolled(t *testing.T, env *lktest.Env, name string, pk *lktest.Passkey, groups ...string) *lktest.Client {
	t.Helper()
	_, token := env.AddUser(name, groups...)
	b := env.Client()
	b.Enrol(pk, token)
	return b
}

func TestStepUp(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"vault.localhost"}, Policy: "passkey", MaxAge: 10 * time.Minute},
		{Hosts: []string{"app.localhost"}, Policy: "passkey"},
	}})
	alicePK, bobPK := lktest.NewPasskey(), lktest.NewPasskey()
	alice := enrolled(t, env, "alice", alicePK)
	enrolled(t, env, "bob", bobPK)
	cookie := alice.Session()

	if r := alice.Forward("vault.localhost", "/secrets", navigation); r.StatusCode != http.StatusOK {
		t.Fatalf("fresh session on the max_age rule: %d", r.StatusCode)
	}
	env.Clock.Advance(11 * time.Minute)

	t.Run("old session is sent to step-up on the max_age rule only", func(t *testing.T) {
		r := alice.Forward("vault.localhost", "/secrets?x=1", navigation)
		if r.StatusCode != http.StatusFound {
			t.Fatalf("old session on the max_age rule: %d, want 302", r.StatusCode)
		}
		loc, _ := url.Parse(r.Header.Get("Location"))
		if loc.Path != "/.latchkey/login" || loc.Query().Get("stepup") != "1" || loc.Query().Get("rd") != "http://vault.localhost/secrets?x=1" {
			t.Fatalf("step-up redirect = %s", r.Header.Get("Location"))
		}
		if r.Header.Get("Remote-User") != "" {
			t.Fatal("Remote-User on a step-up answer")
		}
		if r := alice.Forward("vault.localhost", "/secrets", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("old session, non-navigation: %d, want 401", r.StatusCode)
		}
		if r := alice.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
			t.Fatalf("old session on a rule without max_age: %d", r.StatusCode)
		}
		page := alice.Get("/.latchkey/login?stepup=1&rd=" + url.QueryEscape("http://vault.localhost/secrets"))
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), `data-stepup="1"`) {
			t.Fatalf("step-up login page: %d", page.StatusCode)
		}
	})

	t.Run("another account's passkey is refused", func(t *testing.T) {
		before := env.Count("sessions", "")
		r := alice.PostJSON("/.latchkey/api/login/begin", map[string]any{"step_up": true})
		o, err := lktest.ParseOptions(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		fin := alice.FinishLogin(bobPK.Assert(o, env.Origin(), lktest.Ceremony{}), "http://vault.localhost/secrets")
		if fin.StatusCode != http.StatusForbidden {
			t.Fatalf("step-up with bob's passkey: %d %s", fin.StatusCode, fin.Body)
		}
		if alice.Session() != cookie || env.Count("sessions", "") != before {
			t.Fatal("a refused step-up changed the sessions")
		}
		if env.Count("audit", "event = 'step_up_refused'") != 1 {
			t.Fatal("refused step-up not audited")
		}
		if r := alice.Forward("vault.localhost", "/secrets", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after a refused step-up: %d, want 401", r.StatusCode)
		}
	})

	t.Run("a fresh assertion by the same account returns to the original URL", func(t *testing.T) {
		r := alice.PostJSON("/.latchkey/api/login/begin", map[string]any{"step_up": true})
		o, err := lktest.ParseOptions(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		fin := alice.FinishLogin(alicePK.Assert(o, env.Origin(), lktest.Ceremony{}), "http://vault.localhost/secrets?x=1")
		var out struct {
			Redirect string `json:"redirect"`
		}
		if fin.StatusCode != http.StatusOK || fin.JSON(&out) != nil || out.Redirect != "http://vault.localhost/secrets?x=1" {
			t.Fatalf("step-up finish: %d %s", fin.StatusCode, fin.Body)
		}
		if alice.Session() != cookie {
			t.Fatal("step-up replaced the session instead of refreshing it")
		}
		if r := alice.Forward("vault.localhost", "/secrets", navigation); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
			t.Fatalf("after step-up: %d", r.StatusCode)
		}
		env.Clock.Advance(11 * time.Minute)
		if r := alice.Forward("vault.localhost", "/secrets", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("step-up did not age: %d", r.StatusCode)
		}
	})
}

func TestDeviceBoundAndAuthenticators(t *testing.T) {
	aaguidA, aaguidB := uuid.New(), uuid.New()
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"bound.localhost"}, Policy: "passkey", DeviceBound: true},
		{Hosts: []string{"keys.localhost"}, Policy: "passkey", Authenticators: []string{strings.ToUpper(aaguidA.String())}},
		{Hosts: []string{"app.localhost"}, Policy: "passkey"},
	}})
	boundA := lktest.NewPasskey()
	boundA.AAGUID = aaguidA
	syncedB := lktest.NewPasskey()
	syncedB.AAGUID = aaguidB
	syncedB.Flags |= lktest.FlagBE | lktest.FlagBS
	alice := enrolled(t, env, "alice", boundA)
	bob := enrolled(t, env, "bob", syncedB)

	for _, tc := range []struct {
		name    string
		b       *lktest.Client
		host    string
		want    int
		explain string
	}{
		{"device-bound passkey on device_bound rule", alice, "bound.localhost", http.StatusOK, ""},
		{"synced passkey on device_bound rule", bob, "bound.localhost", http.StatusForbidden, "bound to one device"},
		{"listed AAGUID", alice, "keys.localhost", http.StatusOK, ""},
		{"other AAGUID", bob, "keys.localhost", http.StatusForbidden, "specific authenticators"},
		{"synced passkey on a plain rule", bob, "app.localhost", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.b.Forward(tc.host, "/", navigation)
			if r.StatusCode != tc.want {
				t.Fatalf("%s: %d, want %d", tc.host, r.StatusCode, tc.want)
			}
			if tc.want == http.StatusForbidden && (!strings.Contains(string(r.Body), tc.explain) || r.Header.Get("Remote-User") != "") {
				t.Fatalf("403 page does not explain (%q):\n%s", tc.explain, r.Body)
			}
		})
	}

	t.Run("backup-eligible flag 0 to 1 is accepted, stored and audited", func(t *testing.T) {
		boundA.Flags |= lktest.FlagBE | lktest.FlagBS
		b := env.Client()
		b.Login(boundA, "")
		if env.Count("credentials", "backup_eligible = 1 AND backup_state = 1") != 2 {
			t.Fatal("the new flags were not stored")
		}
		if env.Count("audit", "event = 'backup_flags_changed'") != 1 {
			t.Fatal("flag change not audited")
		}
		if strings.Contains(env.Logs.String(), "level=ERROR") {
			t.Fatalf("errors logged:\n%s", env.Logs)
		}
		// The session made with the now synced passkey no longer passes the device_bound rule.
		if r := b.Forward("bound.localhost", "/", nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("synced session on device_bound rule: %d", r.StatusCode)
		}
		if r := b.Forward("keys.localhost", "/", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("same AAGUID after the flag change: %d", r.StatusCode)
		}
	})

	t.Run("backup-eligible flag 1 to 0 is refused", func(t *testing.T) {
		syncedB.Flags &^= lktest.FlagBE | lktest.FlagBS
		o := bob.BeginLogin()
		if r := bob.FinishLogin(syncedB.Assert(o, env.Origin(), lktest.Ceremony{}), ""); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("BE 1→0: %d %s", r.StatusCode, r.Body)
		}
	})
}
