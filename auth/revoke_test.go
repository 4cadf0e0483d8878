package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// ways is every way into alice's account that disabling her must end: two passkey sessions, a
// recovery session, an API token, an enrolment link an admin made, and a magic link.
type ways struct {
	sessions []*lktest.Client
	token    string
	enrol    string // token of the enrolment link
	magic    string // path of the magic link
}

func openWays(t *testing.T, env *lktest.Env, box *mailbox, admin *lktest.Client, alice member) ways {
	t.Helper()
	var w ways
	laptop := env.Client()
	laptop.Login(alice.pk, "")
	recovering := env.Client()
	recovering.Header.Set("X-Forwarded-For", "203.0.113.70")
	if r := recovering.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": alice.codes[len(alice.codes)-1]}); r.StatusCode != http.StatusOK {
		t.Fatalf("recover: %d %s", r.StatusCode, r.Body)
	}
	w.sessions = []*lktest.Client{alice.b, laptop, recovering}

	if r := stepUp(t, env, alice.b, alice.pk); r.StatusCode != http.StatusOK {
		t.Fatalf("step-up: %d", r.StatusCode)
	}
	r := alice.b.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"app.localhost"}})
	var tok struct {
		Token string `json:"token"`
	}
	if r.StatusCode != http.StatusCreated || r.JSON(&tok) != nil {
		t.Fatalf("token: %d %s", r.StatusCode, r.Body)
	}
	w.token = tok.Token

	r = admin.PostJSON("/.latchkey/api/admin/users/"+alice.user.ID+"/invite", map[string]any{})
	var inv enrolment
	if r.StatusCode != http.StatusOK || r.JSON(&inv) != nil {
		t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
	}
	lu, _ := url.Parse(inv.Link)
	w.enrol = lu.Query().Get("token")

	requestLink(t, env.Client(), "alice")
	w.magic = linkPath(t, box.next(t))
	return w
}

// refusedAll checks that no way in works, and that a refused way writes nothing.
func (w ways) refusedAll(t *testing.T, env *lktest.Env, when string) {
	t.Helper()
	for i, b := range w.sessions {
		if allowed(b, "alice") {
			t.Errorf("%s: session %d still passes forward auth", when, i)
		}
	}
	script := env.Client()
	script.Header.Set("Authorization", "Bearer "+w.token)
	if r := script.Forward("app.localhost", "/", nil); r.StatusCode == http.StatusOK {
		t.Errorf("%s: the API token still passes", when)
	}
	if r := env.Client().Get("/.latchkey/enroll?token=" + url.QueryEscape(w.enrol)); r.StatusCode != http.StatusForbidden {
		t.Errorf("%s: the enrolment link page answers %d, want 403", when, r.StatusCode)
	}
	before := env.Tables()
	if _, r := env.Client().BeginRegister(w.enrol); r.StatusCode != http.StatusForbidden {
		t.Errorf("%s: register/begin with the enrolment link: %d, want 403", when, r.StatusCode)
	}
	if r := openLink(t, env.Client(), w.magic); r.StatusCode != http.StatusForbidden {
		t.Errorf("%s: the magic link: %d, want 403", when, r.StatusCode)
	}
	unchanged(t, env, before, when+": a refused link")
}

// TestDisableRevokesForGood (issue 16, item 4): disabling a user ends every session (recovery
// sessions included), API token, enrolment link and magic link in one store transaction, and
// enabling the user later brings none of them back; their passkey signs them in anew.
func TestDisableRevokesForGood(t *testing.T) {
	box := &mailbox{ch: make(chan mail, 4)}
	env := accountEnv(t, lktest.Config{Mailer: box})
	root := join(t, env, "root", "admins")
	alice := join(t, env, "alice")
	w := openWays(t, env, box, root.b, alice)

	// Before: every way works.
	for i, b := range w.sessions[:2] {
		if !allowed(b, "alice") {
			t.Fatalf("session %d does not work before the test", i)
		}
	}
	script := env.Client()
	script.Header.Set("Authorization", "Bearer "+w.token)
	if r := script.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("the token does not work before the test: %d", r.StatusCode)
	}
	if r := env.Client().Get("/.latchkey/enroll?token=" + url.QueryEscape(w.enrol)); r.StatusCode != http.StatusOK {
		t.Fatalf("the enrolment link does not work before the test: %d", r.StatusCode)
	}

	r := root.b.PostJSON("/.latchkey/api/admin/users/"+alice.user.ID+"/disable", map[string]any{})
	var out struct {
		Sessions, Tokens, Links int
		Message                 string
	}
	if r.StatusCode != http.StatusOK || r.JSON(&out) != nil {
		t.Fatalf("disable: %d %s", r.StatusCode, r.Body)
	}
	// Three sessions (two passkey, one recovery), one token, two links (enrolment and magic).
	if out.Sessions != 3 || out.Tokens != 1 || out.Links != 2 || out.Message != "Disabled alice. 3 sessions ended. 1 API token revoked." {
		t.Fatalf("disable answered %+v", out)
	}
	if env.Count("audit", "event = 'user_disabled' AND user_id = ? AND detail = 'actor=root target=alice sessions=3 tokens=1 links=2'", alice.user.ID) != 1 {
		t.Fatal("disable not audited with actor, target and what it ended")
	}
	w.refusedAll(t, env, "disabled")

	if r := root.b.PostJSON("/.latchkey/api/admin/users/"+alice.user.ID+"/enable", map[string]any{}); r.StatusCode != http.StatusOK {
		t.Fatalf("enable: %d %s", r.StatusCode, r.Body)
	}
	w.refusedAll(t, env, "enabled again")
	if env.Count("api_tokens", "user_id = ? AND revoked_at = 0", alice.user.ID) != 0 ||
		env.Count("sessions", "user_id = ? AND revoked_at = 0", alice.user.ID) != 0 {
		t.Fatal("live sessions or tokens in the store after enabling")
	}
	fresh := env.Client()
	fresh.Login(alice.pk, "")
	if !allowed(fresh, "alice") {
		t.Fatal("an enabled user cannot sign in with their passkey")
	}
}

// TestSignOutEverywhere (issue 16, item 4): the API tokens go too when asked (the page's
// checkbox, checked by default), and the answer says what ended.
func TestSignOutEverywhere(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	newTok := func(b *lktest.Client, name string) string {
		t.Helper()
		r := b.PostJSON("/.latchkey/api/tokens", map[string]any{"name": name, "hosts": []string{"app.localhost"}})
		var tok struct {
			Token string `json:"token"`
		}
		if r.StatusCode != http.StatusCreated || r.JSON(&tok) != nil {
			t.Fatalf("token: %d %s", r.StatusCode, r.Body)
		}
		return tok.Token
	}
	works := func(tok string) bool {
		c := env.Client()
		c.Header.Set("Authorization", "Bearer "+tok)
		return c.Forward("app.localhost", "/", nil).StatusCode == http.StatusOK
	}
	type answer struct {
		Revoked  int    `json:"revoked"`
		Tokens   int    `json:"tokens_revoked"`
		Message  string `json:"message"`
		Redirect string `json:"redirect"`
	}

	t.Run("tokens too, when asked", func(t *testing.T) {
		alice := join(t, env, "alice")
		t1, t2 := newTok(alice.b, "a"), newTok(alice.b, "b")
		laptop := env.Client()
		laptop.Login(alice.pk, "")
		r := alice.b.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]any{"tokens": true})
		var out answer
		if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || out.Message != "2 sessions ended. 2 API tokens revoked." || out.Revoked != 2 || out.Tokens != 2 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		if works(t1) || works(t2) || allowed(laptop, "alice") {
			t.Fatal("a token or session survived")
		}
		if env.Count("audit", "event = 'sessions_revoked' AND user_id = ? AND detail = 'actor=alice target=alice sessions=2 tokens=2'", alice.user.ID) != 1 {
			t.Fatal("not audited with what it ended")
		}
	})

	t.Run("sessions only when the box is cleared (or not sent)", func(t *testing.T) {
		bob := join(t, env, "bob")
		tok := newTok(bob.b, "keep")
		r := bob.b.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]any{"tokens": false})
		var out answer
		if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || out.Message != "1 session ended." || out.Tokens != 0 {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		if !works(tok) || allowed(bob.b, "bob") {
			t.Fatal("the token was revoked or the session survived")
		}
	})

	t.Run("the account page offers the checkbox, checked", func(t *testing.T) {
		carol := join(t, env, "carol")
		page := string(carol.b.Get("/.latchkey/account").Body)
		if !strings.Contains(page, `id="revoke-tokens" type="checkbox" checked`) {
			t.Fatal("no checked revoke-tokens box on the account page")
		}
	})
}
