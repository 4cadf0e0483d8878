package auth_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// accountEnv is an Env with one protected host, app.localhost, that needs a passkey session.
func accountEnv(t *testing.T, cfg lktest.Config) *lktest.Env {
	t.Helper()
	cfg.DefaultPolicy = "deny"
	cfg.Rules = []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}
	return lktest.New(t, cfg)
}

// member is an enrolled user: their first passkey, its recovery codes, and a signed-in browser.
type member struct {
	user  store.User
	pk    *lktest.Passkey
	codes []string
	b     *lktest.Client
}

// join adds a user, enrols a passkey through the enrolment link and keeps the codes shown.
func join(t *testing.T, env *lktest.Env, name string, groups ...string) member {
	t.Helper()
	u, token := env.AddUser(name, groups...)
	m := member{user: u, pk: lktest.NewPasskey(), b: env.Client()}
	m.codes = m.b.Enrol(m.pk, token)
	if len(m.codes) != 10 {
		t.Fatalf("%s: %d recovery codes after the first passkey, want 10", name, len(m.codes))
	}
	return m
}

// allowed reports whether a forward-auth check of b's cookies for app.localhost passes as user.
func allowed(b *lktest.Client, user string) bool {
	r := b.Forward("app.localhost", "/", nil)
	return r.StatusCode == http.StatusOK && r.Header.Get("Remote-User") == user
}

// unchanged fails the test when the tables a refused request must not touch have changed. The
// api_tokens section is left out: the server writes a token's last use in the background, on its
// own schedule, after a request that used the token, refused or not.
func unchanged(t *testing.T, env *lktest.Env, before, what string) {
	t.Helper()
	if after := env.Tables(); withoutTokens(after) != withoutTokens(before) {
		t.Fatalf("%s wrote to the database:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

func withoutTokens(dump string) string {
	if i := strings.Index(dump, "[api_tokens]"); i >= 0 {
		return dump[:i]
	}
	return dump
}

func credID(pk *lktest.Passkey) string { return base64.RawURLEncoding.EncodeToString(pk.ID) }

func errorOf(r *lktest.Response) string {
	var out struct {
		Error string `json:"error"`
	}
	r.JSON(&out)
	return out.Error
}

// sessionIDs lists a user's live session IDs from the store.
func sessionIDs(t *testing.T, env *lktest.Env, userID string) []string {
	t.Helper()
	ss, err := env.Store.Sessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	return ids
}

// TestAccountAPINeedsFullSession is the backend-protection table of the account API (HOSTILE
// PUB-26): no session and an API token get 401, a recovery session gets 403 and an audit row,
// and nothing is written either way.
func TestAccountAPINeedsFullSession(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")

	// A recovery session of alice's, made with one of her codes.
	restricted := env.Client()
	if r := restricted.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": alice.codes[0]}); r.StatusCode != http.StatusOK {
		t.Fatalf("recover: %d %s", r.StatusCode, r.Body)
	}
	// An API token of alice's.
	r := alice.b.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"app.localhost"}})
	var tok struct {
		Token string `json:"token"`
	}
	if r.StatusCode != http.StatusCreated || r.JSON(&tok) != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s", r.StatusCode, r.Body)
	}
	bearer := env.Client()
	bearer.Header.Set("Authorization", "Bearer "+tok.Token)

	sid := sessionIDs(t, env, alice.user.ID)[0]
	calls := []struct {
		path string
		body any
	}{
		{"/.latchkey/api/passkeys/rename", map[string]string{"id": credID(alice.pk), "name": "x"}},
		{"/.latchkey/api/passkeys/remove", map[string]string{"id": credID(alice.pk)}},
		{"/.latchkey/api/recovery-codes", map[string]string{}},
		{"/.latchkey/api/account/email", map[string]string{"email": "thief@example.net"}},
		{"/.latchkey/api/sessions/revoke", map[string]string{"id": sid}},
		{"/.latchkey/api/sessions/revoke-all", map[string]string{}},
	}
	for _, who := range []struct {
		name  string
		b     *lktest.Client
		want  int
		audit bool
	}{
		{"no session", env.Client(), http.StatusUnauthorized, false},
		{"API token", bearer, http.StatusUnauthorized, false},
		{"recovery session", restricted, http.StatusForbidden, true},
	} {
		for _, c := range calls {
			t.Run(who.name+" "+c.path, func(t *testing.T) {
				before := env.Tables()
				audits := env.Count("audit", "event = 'restricted_session_refused'")
				r := who.b.PostJSON(c.path, c.body)
				if r.StatusCode != who.want {
					t.Fatalf("%d %s, want %d", r.StatusCode, r.Body, who.want)
				}
				unchanged(t, env, before, "a refused account call")
				if got := env.Count("audit", "event = 'restricted_session_refused'") - audits; (got == 1) != who.audit {
					t.Fatalf("%d audit rows for the refusal, want audited=%t", got, who.audit)
				}
			})
		}
	}
	if !allowed(alice.b, "alice") {
		t.Fatal("alice's own session was harmed by the refused calls")
	}
}

func TestRenamePasskey(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice, bob := join(t, env, "alice"), join(t, env, "bob")

	t.Run("own passkey", func(t *testing.T) {
		// A body naming another user changes nothing about whose passkey is meant (PUB-26b).
		r := alice.b.PostJSON("/.latchkey/api/passkeys/rename", map[string]string{"id": credID(alice.pk), "name": "  Work laptop ", "user": "bob", "user_id": bob.user.ID})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("rename: %d %s", r.StatusCode, r.Body)
		}
		if env.Count("credentials", "user_id = ? AND name = 'Work laptop'", alice.user.ID) != 1 {
			t.Fatal("the new name was not stored (trimmed)")
		}
		page := alice.b.Get("/.latchkey/account")
		if !strings.Contains(string(page.Body), "Work laptop") {
			t.Fatal("the account page does not show the new name")
		}
		if env.Count("audit", "event = 'passkey_renamed' AND user_id = ?", alice.user.ID) != 1 {
			t.Fatal("rename not audited")
		}
	})

	for _, tc := range []struct {
		name string
		body map[string]string
		want int
	}{
		{"another user's passkey", map[string]string{"id": credID(bob.pk), "name": "mine now"}, http.StatusNotFound},
		{"unknown passkey", map[string]string{"id": credID(lktest.NewPasskey()), "name": "x"}, http.StatusNotFound},
		{"garbage ID", map[string]string{"id": "%%%", "name": "x"}, http.StatusBadRequest},
		{"empty name", map[string]string{"id": credID(alice.pk), "name": "   "}, http.StatusBadRequest},
		{"overlong name", map[string]string{"id": credID(alice.pk), "name": strings.Repeat("é", 65)}, http.StatusBadRequest},
		{"terminal escape", map[string]string{"id": credID(alice.pk), "name": "ok\x1b[2J"}, http.StatusBadRequest},
		{"newline", map[string]string{"id": credID(alice.pk), "name": "a\nb"}, http.StatusBadRequest},
		{"bidi override", map[string]string{"id": credID(alice.pk), "name": "a\u202eb"}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := env.Tables()
			if r := alice.b.PostJSON("/.latchkey/api/passkeys/rename", tc.body); r.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", r.StatusCode, r.Body, tc.want)
			}
			unchanged(t, env, before, "a refused rename")
		})
	}
}

func TestRemovePasskey(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice, bob := join(t, env, "alice"), join(t, env, "bob")
	ctx := context.Background()

	// Alice adds a second passkey from her signed-in session and signs in with it elsewhere.
	second := lktest.NewPasskey()
	if codes := alice.b.Enrol(second, ""); len(codes) != 0 {
		t.Fatalf("a second passkey showed %d recovery codes, want none", len(codes))
	}
	other := env.Client()
	other.Login(second, "")
	if !allowed(other, "alice") || !allowed(alice.b, "alice") {
		t.Fatal("sessions before the removal do not work")
	}

	t.Run("another user's passkey is unknown", func(t *testing.T) {
		before := env.Tables()
		if r := alice.b.PostJSON("/.latchkey/api/passkeys/remove", map[string]string{"id": credID(bob.pk)}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		unchanged(t, env, before, "removing another user's passkey")
		if !allowed(bob.b, "bob") {
			t.Fatal("bob's session was harmed")
		}
	})

	t.Run("removing a passkey ends its sessions at once", func(t *testing.T) {
		cookie := other.Session()
		r := alice.b.PostJSON("/.latchkey/api/passkeys/remove", map[string]string{"id": credID(second)})
		if r.StatusCode != http.StatusOK || strings.Contains(string(r.Body), "redirect") {
			t.Fatalf("remove: %d %s", r.StatusCode, r.Body)
		}
		if allowed(other, "alice") {
			t.Fatal("the session made with the removed passkey still passes forward auth")
		}
		replay := env.Client()
		replay.Cookies["latchkey_session"] = cookie
		if allowed(replay, "alice") {
			t.Fatal("a replayed cookie of the removed passkey's session passes")
		}
		if !allowed(alice.b, "alice") {
			t.Fatal("the session of the remaining passkey was ended")
		}
		o := env.Client().BeginLogin()
		if r := env.Client().FinishLogin(second.Assert(o, env.Origin(), lktest.Ceremony{}), ""); r.StatusCode == http.StatusOK {
			t.Fatal("the removed passkey still signs in")
		}
		if env.Count("audit", "event = 'passkey_removed' AND user_id = ?", alice.user.ID) != 1 {
			t.Fatal("removal not audited")
		}
	})

	t.Run("the last passkey without recovery codes is kept, and the answer says why", func(t *testing.T) {
		if err := env.Store.ReplaceRecoveryCodes(ctx, alice.user.ID, nil); err != nil {
			t.Fatal(err)
		}
		before := env.Tables()
		r := alice.b.PostJSON("/.latchkey/api/passkeys/remove", map[string]string{"id": credID(alice.pk)})
		if r.StatusCode != http.StatusConflict || !strings.Contains(errorOf(r), "only passkey") || !strings.Contains(errorOf(r), "recovery codes") {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		unchanged(t, env, before, "a refused removal of the last passkey")
		if !allowed(alice.b, "alice") {
			t.Fatal("refused removal ended the session")
		}
	})

	t.Run("the last passkey with unused recovery codes can go, ending this session", func(t *testing.T) {
		r := alice.b.PostJSON("/.latchkey/api/recovery-codes", map[string]string{})
		var codes struct {
			Codes []string `json:"recovery_codes"`
		}
		if r.StatusCode != http.StatusOK || r.JSON(&codes) != nil || len(codes.Codes) != 10 {
			t.Fatalf("regenerate: %d %s", r.StatusCode, r.Body)
		}
		cookie := alice.b.Session()
		r = alice.b.PostJSON("/.latchkey/api/passkeys/remove", map[string]string{"id": credID(alice.pk)})
		var out struct {
			Redirect string `json:"redirect"`
		}
		if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || !strings.HasSuffix(out.Redirect, "/.latchkey/login") {
			t.Fatalf("remove last: %d %s", r.StatusCode, r.Body)
		}
		if alice.b.Session() != "" {
			t.Fatal("the cookie of the ended session was not cleared")
		}
		replay := env.Client()
		replay.Cookies["latchkey_session"] = cookie
		if allowed(replay, "alice") {
			t.Fatal("the session of the removed last passkey still passes")
		}
		if env.Count("credentials", "user_id = ?", alice.user.ID) != 0 {
			t.Fatal("passkey not removed")
		}
		// And the codes still lead back in.
		rb := env.Client()
		if r := rb.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": codes.Codes[3]}); r.StatusCode != http.StatusOK {
			t.Fatalf("recovery after removing every passkey: %d %s", r.StatusCode, r.Body)
		}
		pk := lktest.NewPasskey()
		rb.Enrol(pk, "")
		if !allowed(rb, "alice") {
			t.Fatal("the passkey enrolled in recovery does not sign in")
		}
	})
}

func TestRegenerateRecoveryCodes(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice := join(t, env, "alice")

	r := alice.b.PostJSON("/.latchkey/api/recovery-codes", map[string]any{"user_id": "someone else"})
	var out struct {
		Codes []string `json:"recovery_codes"`
	}
	if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || len(out.Codes) != 10 {
		t.Fatalf("regenerate: %d %s", r.StatusCode, r.Body)
	}
	seen := map[string]bool{}
	for _, c := range out.Codes {
		if len(c) != 19 || strings.Count(c, "-") != 3 || seen[c] {
			t.Fatalf("code %q: want 4 groups of 4, all distinct", c)
		}
		seen[c] = true
	}
	if env.Count("recovery_codes", "user_id = ? AND used_at = 0", alice.user.ID) != 10 {
		t.Fatal("want exactly 10 stored codes")
	}
	// Stored as hashes only.
	dump := env.Tables()
	for _, c := range append(out.Codes, alice.codes...) {
		if strings.Contains(dump, c) || strings.Contains(dump, strings.ReplaceAll(c, "-", "")) {
			t.Fatal("a recovery code is stored in plaintext")
		}
	}
	if env.Count("audit", "event = 'recovery_codes_regenerated' AND user_id = ?", alice.user.ID) != 1 {
		t.Fatal("not audited")
	}

	t.Run("old codes no longer work", func(t *testing.T) {
		before := env.Tables()
		b := env.Client()
		b.Header.Set("X-Forwarded-For", "203.0.113.50")
		if r := b.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": alice.codes[0]}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("old code: %d %s", r.StatusCode, r.Body)
		}
		unchanged(t, env, before, "an old code")
	})
	t.Run("new codes work, typed loosely", func(t *testing.T) {
		b := env.Client()
		b.Header.Set("X-Forwarded-For", "203.0.113.51")
		loose := strings.ToLower(strings.ReplaceAll(out.Codes[0], "-", " "))
		if r := b.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": loose}); r.StatusCode != http.StatusOK {
			t.Fatalf("new code: %d %s", r.StatusCode, r.Body)
		}
	})
}

// TestRevocationReachesForwardAuth: revoking one session, signing out everywhere and disabling a
// user are honoured by the very next forward-auth check in the same process (HOSTILE PUB-14).
func TestRevocationReachesForwardAuth(t *testing.T) {
	env := accountEnv(t, lktest.Config{})
	alice, bob := join(t, env, "alice"), join(t, env, "bob")
	admin := join(t, env, "root", "admins")
	laptop, phone := env.Client(), env.Client()
	laptop.Login(alice.pk, "")
	phone.Login(alice.pk, "")
	for _, b := range []*lktest.Client{alice.b, laptop, phone} {
		if !allowed(b, "alice") {
			t.Fatal("a session does not work before the test")
		}
	}
	// sessionOf maps a browser to its session ID through the account page, which marks the
	// current session.
	sessionOf := func(b *lktest.Client) string {
		t.Helper()
		page := string(b.Get("/.latchkey/account").Body)
		for _, id := range sessionIDs(t, env, alice.user.ID) {
			if strings.Contains(pageRow(page, id), "this browser") {
				return id
			}
		}
		t.Fatal("session not found on the account page")
		return ""
	}

	t.Run("another user's session is unknown", func(t *testing.T) {
		bobSID := sessionIDs(t, env, bob.user.ID)[0]
		before := env.Tables()
		if r := alice.b.PostJSON("/.latchkey/api/sessions/revoke", map[string]string{"id": bobSID}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		unchanged(t, env, before, "revoking another user's session")
		if !allowed(bob.b, "bob") {
			t.Fatal("bob was signed out by alice")
		}
	})

	t.Run("revoke another of one's sessions", func(t *testing.T) {
		id := sessionOf(phone)
		r := alice.b.PostJSON("/.latchkey/api/sessions/revoke", map[string]string{"id": id})
		if r.StatusCode != http.StatusOK || strings.Contains(string(r.Body), "redirect") {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		if allowed(phone, "alice") {
			t.Fatal("the revoked session still passes forward auth")
		}
		if !allowed(alice.b, "alice") || !allowed(laptop, "alice") {
			t.Fatal("other sessions were ended too")
		}
	})

	t.Run("revoke this session", func(t *testing.T) {
		id := sessionOf(laptop)
		cookie := laptop.Session()
		r := laptop.PostJSON("/.latchkey/api/sessions/revoke", map[string]string{"id": id})
		var out struct {
			Redirect string `json:"redirect"`
		}
		if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || !strings.HasSuffix(out.Redirect, "/.latchkey/login") || laptop.Session() != "" {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		laptop.Cookies["latchkey_session"] = cookie
		if allowed(laptop, "alice") {
			t.Fatal("the replayed cookie of the revoked session passes")
		}
	})

	t.Run("sign out everywhere", func(t *testing.T) {
		other := env.Client()
		other.Login(alice.pk, "")
		cookie := alice.b.Session()
		r := alice.b.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]string{})
		var out struct {
			Redirect string `json:"redirect"`
		}
		if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || !strings.HasSuffix(out.Redirect, "/.latchkey/login") {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
		alice.b.Cookies["latchkey_session"] = cookie
		if allowed(alice.b, "alice") || allowed(other, "alice") {
			t.Fatal("a session survived sign out everywhere")
		}
		if len(sessionIDs(t, env, alice.user.ID)) != 0 {
			t.Fatal("live sessions left in the store")
		}
		if !allowed(bob.b, "bob") {
			t.Fatal("another user was signed out")
		}
		if env.Count("audit", "event = 'sessions_revoked' AND user_id = ?", alice.user.ID) != 1 {
			t.Fatal("not audited")
		}
	})

	t.Run("disabling a user", func(t *testing.T) {
		r := admin.b.PostJSON("/.latchkey/api/admin/users/"+bob.user.ID+"/disable", map[string]string{})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("disable: %d %s", r.StatusCode, r.Body)
		}
		if allowed(bob.b, "bob") {
			t.Fatal("the disabled user's session still passes forward auth")
		}
		// A disabled user's recovery codes are refused like wrong ones.
		b := env.Client()
		b.Header.Set("X-Forwarded-For", "203.0.113.60")
		if r := b.PostJSON("/.latchkey/api/recover", map[string]string{"user": "bob", "code": bob.codes[0]}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("recovery of a disabled user: %d %s", r.StatusCode, r.Body)
		}
	})
}

// pageRow returns the account page's <li> for a session ID.
func pageRow(page, id string) string {
	i := strings.Index(page, `data-id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := page[i:]
	if j := strings.Index(rest, "</li>"); j >= 0 {
		return rest[:j]
	}
	return rest
}
