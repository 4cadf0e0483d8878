package auth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// stale makes every session's passkey check older than the step-up window.
func stale(env *lktest.Env) { env.Clock.Advance(6 * time.Minute) }

// needsStepUp checks the answer to an action refused for an old passkey check: 401 with
// {"step_up": true} and a message a person can act on.
func needsStepUp(t *testing.T, r *lktest.Response) {
	t.Helper()
	var out struct {
		Error  string `json:"error"`
		StepUp bool   `json:"step_up"`
	}
	if r.StatusCode != http.StatusUnauthorized || r.JSON(&out) != nil || !out.StepUp || !strings.Contains(out.Error, "passkey") {
		t.Fatalf("want 401 with step_up, got %d %s", r.StatusCode, r.Body)
	}
}

// TestAccountActionsNeedStepUp (issue 16, item 3): each account-changing action is refused
// with step_up and writes nothing while the session's last passkey check is older than five
// minutes, and succeeds once the same session has passed the step-up ceremony again. A cookie
// alone is not enough to add a way in, take one away, or move where recovery goes.
func TestAccountActionsNeedStepUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup runs while the session is fresh; act is the action; done checks its effect.
		setup func(t *testing.T, env *lktest.Env, m member) any
		act   func(t *testing.T, env *lktest.Env, m member, state any) *lktest.Response
		done  func(t *testing.T, env *lktest.Env, m member, r *lktest.Response, state any)
	}{
		{
			name: "add a passkey",
			act: func(t *testing.T, env *lktest.Env, m member, _ any) *lktest.Response {
				_, r := m.b.BeginRegister("")
				return r
			},
			done: func(t *testing.T, env *lktest.Env, m member, r *lktest.Response, _ any) {
				o, err := lktest.ParseOptions(r.Body)
				if err != nil {
					t.Fatal(err)
				}
				if r := m.b.PostJSON("/.latchkey/api/register/finish", lktest.NewPasskey().Attest(o, env.Origin(), lktest.Ceremony{})); r.StatusCode != http.StatusOK {
					t.Fatalf("register/finish after step-up: %d %s", r.StatusCode, r.Body)
				}
				if n := env.Count("credentials", "user_id = ?", m.user.ID); n != 2 {
					t.Fatalf("%d passkeys, want 2", n)
				}
			},
		},
		{
			name: "remove a passkey",
			setup: func(t *testing.T, env *lktest.Env, m member) any {
				second := lktest.NewPasskey()
				m.b.Enrol(second, "")
				return second
			},
			act: func(t *testing.T, env *lktest.Env, m member, state any) *lktest.Response {
				return m.b.PostJSON("/.latchkey/api/passkeys/remove", map[string]string{"id": credID(state.(*lktest.Passkey))})
			},
			done: func(t *testing.T, env *lktest.Env, m member, r *lktest.Response, _ any) {
				if n := env.Count("credentials", "user_id = ?", m.user.ID); n != 1 {
					t.Fatalf("%d passkeys, want 1", n)
				}
			},
		},
		{
			name: "new recovery codes",
			act: func(t *testing.T, env *lktest.Env, m member, _ any) *lktest.Response {
				return m.b.PostJSON("/.latchkey/api/recovery-codes", map[string]string{})
			},
			done: func(t *testing.T, env *lktest.Env, m member, r *lktest.Response, _ any) {
				var out struct {
					Codes []string `json:"recovery_codes"`
				}
				if r.JSON(&out) != nil || len(out.Codes) != 10 {
					t.Fatalf("codes: %s", r.Body)
				}
				for _, c := range m.codes {
					if strings.Contains(strings.Join(out.Codes, " "), c) {
						t.Fatal("an old code came back")
					}
				}
			},
		},
		{
			name: "create an API token",
			act: func(t *testing.T, env *lktest.Env, m member, _ any) *lktest.Response {
				return m.b.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"app.localhost"}})
			},
			done: func(t *testing.T, env *lktest.Env, m member, r *lktest.Response, _ any) {
				if r.StatusCode != http.StatusCreated || env.Count("api_tokens", "user_id = ?", m.user.ID) != 1 {
					t.Fatalf("token: %d %s", r.StatusCode, r.Body)
				}
			},
		},
		{
			name: "change the e-mail address",
			act: func(t *testing.T, env *lktest.Env, m member, _ any) *lktest.Response {
				return m.b.PostJSON("/.latchkey/api/account/email", map[string]string{"email": " new@example.org "})
			},
			done: func(t *testing.T, env *lktest.Env, m member, r *lktest.Response, _ any) {
				if env.Count("users", "id = ? AND email = 'new@example.org'", m.user.ID) != 1 {
					t.Fatalf("e-mail not stored (trimmed): %s", r.Body)
				}
				// Remote-Email follows at once, in this process.
				if f := m.b.Forward("app.localhost", "/", nil); f.Header.Get("Remote-Email") != "new@example.org" {
					t.Fatalf("Remote-Email after the change: %q", f.Header.Get("Remote-Email"))
				}
				if env.Count("audit", "event = 'email_changed' AND user_id = ? AND detail = 'actor=alice target=alice email_set=true'", m.user.ID) != 1 {
					t.Fatal("e-mail change not audited with actor and target")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := accountEnv(t, lktest.Config{})
			alice := join(t, env, "alice")
			var state any
			if tc.setup != nil {
				state = tc.setup(t, env, alice)
			}
			stale(env)
			before := env.Tables()
			needsStepUp(t, tc.act(t, env, alice, state))
			unchanged(t, env, before, "an action refused for an old passkey check")
			if !allowed(alice.b, "alice") {
				t.Fatal("the refusal harmed the session")
			}

			// Another account's passkey does not renew alice's check.
			bobPK := lktest.NewPasskey()
			enrolled(t, env, "bob", bobPK)
			if r := stepUp(t, env, alice.b, bobPK); r.StatusCode != http.StatusForbidden {
				t.Fatalf("step-up with bob's passkey: %d %s", r.StatusCode, r.Body)
			}
			needsStepUp(t, tc.act(t, env, alice, state))

			cookie := alice.b.Session()
			if r := stepUp(t, env, alice.b, alice.pk); r.StatusCode != http.StatusOK {
				t.Fatalf("step-up: %d %s", r.StatusCode, r.Body)
			}
			if alice.b.Session() != cookie {
				t.Fatal("the step-up replaced the session instead of renewing it")
			}
			r := tc.act(t, env, alice, state)
			if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusCreated {
				t.Fatalf("after step-up: %d %s", r.StatusCode, r.Body)
			}
			tc.done(t, env, alice, r, state)

			// The renewed check ages like the first one.
			stale(env)
			if tc.name != "remove a passkey" { // nothing left to remove but the last passkey
				needsStepUp(t, tc.act(t, env, alice, state))
			}
		})
	}
}

// TestRecoverySessionEnrolsWithoutStepUp: a recovery session has no passkey to verify with; it
// may enrol one (what it exists for) without a step-up, and still nothing else.
func TestRecoverySessionEnrolsWithoutStepUp(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")
	rb := env.Client()
	if r := rb.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": alice.codes[0]}); r.StatusCode != http.StatusOK {
		t.Fatalf("recover: %d %s", r.StatusCode, r.Body)
	}
	for _, c := range []struct {
		path string
		body any
	}{
		{"/.latchkey/api/account/email", map[string]string{"email": "thief@example.net"}},
		{"/.latchkey/api/recovery-codes", map[string]string{}},
		{"/.latchkey/api/tokens", map[string]any{"name": "x", "hosts": []string{"app.localhost"}}},
	} {
		before := env.Tables()
		if r := rb.PostJSON(c.path, c.body); r.StatusCode != http.StatusForbidden {
			t.Fatalf("%s from a recovery session: %d %s, want 403", c.path, r.StatusCode, r.Body)
		}
		unchanged(t, env, before, "a recovery session's "+c.path)
	}
	stale(env) // the recovery session is 6 minutes old, well within its 30
	pk := lktest.NewPasskey()
	rb.Enrol(pk, "")
	if !allowed(rb, "alice") || env.Count("credentials", "user_id = ?", alice.user.ID) != 2 {
		t.Fatal("the recovery session could not enrol a passkey")
	}
}

// TestEmailChange: the address is validated like everywhere else (one rule, package account),
// and links mailed to the old address stop working.
func TestEmailChange(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 4)}
	env := accountEnv(t, lktest.Config{Mailer: box})
	alice := join(t, env, "alice")
	for _, bad := range []string{"no-at", "Alice <alice@example.com>", "a@example.com, b@example.com", "a\r\nBcc: x@example.com", "a\u202e@example.com", strings.Repeat("a", 250) + "@example.com"} {
		before := env.Tables()
		r := alice.b.PostJSON("/.latchkey/api/account/email", map[string]string{"email": bad})
		if r.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(r), "e-mail: ") {
			t.Errorf("%q: %d %s", bad, r.StatusCode, r.Body)
		}
		unchanged(t, env, before, "a refused e-mail address")
	}

	requestLink(t, env.Client(), "alice")
	link := linkPath(t, box.next(t))
	if r := alice.b.PostJSON("/.latchkey/api/account/email", map[string]string{"email": "alice@example.org"}); r.StatusCode != http.StatusOK {
		t.Fatalf("change: %d %s", r.StatusCode, r.Body)
	}
	if r := openLink(t, env.Client(), link); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a link mailed to the old address after the change: %d %s", r.StatusCode, r.Body)
	}
	if r := alice.b.PostJSON("/.latchkey/api/account/email", map[string]string{"email": ""}); r.StatusCode != http.StatusOK ||
		env.Count("users", "id = ? AND email = ''", alice.user.ID) != 1 {
		t.Fatalf("removing the address: %d %s", r.StatusCode, r.Body)
	}
	page := string(alice.b.Get("/.latchkey/account").Body)
	if !strings.Contains(page, `id="email-change"`) || !strings.Contains(page, `id="email-input"`) {
		t.Fatal("the account page has no e-mail field")
	}
}
