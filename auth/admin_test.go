package auth_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

type enrolment struct {
	ID   string `json:"id"`
	Link string `json:"link"`
	QR   string `json:"qr"`
}

// stepUp performs a fresh passkey verification in the browser's existing session.
func stepUp(t *testing.T, env *lktest.Env, b *lktest.Client, pk *lktest.Passkey) *lktest.Response {
	t.Helper()
	r := b.PostJSON("/.latchkey/api/login/begin", map[string]any{"step_up": true})
	o, err := lktest.ParseOptions(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b.FinishLogin(pk.Assert(o, env.Origin(), lktest.Ceremony{}), "")
}

func TestAdminAccess(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	rootPK := lktest.NewPasskey()
	root := enrolled(t, env, "root", rootPK, "admins")
	alice := enrolled(t, env, "alice", lktest.NewPasskey(), "staff")
	adminURL := env.Origin() + "/.latchkey/admin"

	for _, path := range []string{"/.latchkey/admin", "/.latchkey/admin/audit", "/.latchkey/admin/users/x"} {
		t.Run("non-admin page "+path, func(t *testing.T) {
			if r := alice.Get(path); r.StatusCode != http.StatusForbidden {
				t.Fatalf("%s as a non-admin: %d", path, r.StatusCode)
			}
		})
	}
	t.Run("non-admin API", func(t *testing.T) {
		before := env.Tables()
		r := alice.PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "mallory", "groups": []string{"admins"}})
		if r.StatusCode != http.StatusForbidden || env.Tables() != before {
			t.Fatalf("add user as a non-admin: %d", r.StatusCode)
		}
	})
	t.Run("signed out", func(t *testing.T) {
		r := env.Client().Get("/.latchkey/admin")
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusFound || loc.Path != "/.latchkey/login" || loc.Query().Get("rd") != adminURL {
			t.Fatalf("signed out: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		if r := env.Client().PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "x"}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("signed-out API: %d", r.StatusCode)
		}
	})
	t.Run("fresh admin", func(t *testing.T) {
		r := root.Get("/.latchkey/admin")
		if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), "alice") || !strings.Contains(string(r.Body), "/.latchkey/static/admin.js") {
			t.Fatalf("admin page: %d", r.StatusCode)
		}
		if !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("admin page CSP = %q", r.Header.Get("Content-Security-Policy"))
		}
	})
	t.Run("admin without a fresh verification", func(t *testing.T) {
		env.Clock.Advance(6 * time.Minute)
		r := root.Get("/.latchkey/admin/audit?user=alice")
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusFound || loc.Query().Get("stepup") != "1" || loc.Query().Get("rd") != adminURL+"/audit?user=alice" {
			t.Fatalf("stale admin: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		before := env.Tables()
		if r := root.PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "carol"}); r.StatusCode != http.StatusUnauthorized || env.Tables() != before {
			t.Fatalf("stale admin API: %d", r.StatusCode)
		}
		if r := stepUp(t, env, root, rootPK); r.StatusCode != http.StatusOK {
			t.Fatalf("step-up: %d %s", r.StatusCode, r.Body)
		}
		if r := root.Get("/.latchkey/admin/audit?user=alice"); r.StatusCode != http.StatusOK {
			t.Fatalf("after step-up: %d", r.StatusCode)
		}
	})
}

func TestAdminActions(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	root := enrolled(t, env, "root", lktest.NewPasskey(), "admins")
	rootUser, _ := env.Store.UserByName(t.Context(), "root")

	var carol enrolment
	t.Run("add a user: link and QR code shown once", func(t *testing.T) {
		r := root.PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "carol", "display_name": "Carol", "email": "carol@example.com", "groups": []string{"family", " ", "family"}})
		if r.StatusCode != http.StatusCreated || r.JSON(&carol) != nil || !strings.Contains(carol.Link, "/.latchkey/enroll?token=") {
			t.Fatalf("add user: %d %s", r.StatusCode, r.Body)
		}
		png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(carol.QR, "data:image/png;base64,"))
		if !strings.HasPrefix(carol.QR, "data:image/png;base64,") || err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("QR code is not a PNG data URL: %.60s", carol.QR)
		}
		u, err := env.Store.UserByName(t.Context(), "carol")
		if err != nil || strings.Join(u.Groups, ",") != "family" || u.Email != "carol@example.com" {
			t.Fatalf("stored user = %+v, %v", u, err)
		}
		if r := root.PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "carol"}); r.StatusCode != http.StatusConflict {
			t.Fatalf("duplicate: %d", r.StatusCode)
		}
		for _, bad := range []map[string]any{{"name": "a b"}, {"name": ""}, {"name": "x", "groups": []string{"a,b"}}, {"name": "x", "email": "no-at"}} {
			if r := root.PostJSON("/.latchkey/api/admin/users", bad); r.StatusCode != http.StatusBadRequest {
				t.Errorf("%v: %d", bad, r.StatusCode)
			}
		}
		if r := root.Get("/.latchkey/admin/users/" + carol.ID); r.StatusCode != http.StatusOK || strings.Contains(string(r.Body), carol.Link) {
			t.Fatalf("user page: %d (the link must not be shown again)", r.StatusCode)
		}
	})

	carolPK := lktest.NewPasskey()
	cb := env.Client()
	t.Run("re-invite replaces the link", func(t *testing.T) {
		var again enrolment
		r := root.PostJSON("/.latchkey/api/admin/users/"+carol.ID+"/invite", map[string]any{})
		if r.StatusCode != http.StatusOK || r.JSON(&again) != nil || again.Link == carol.Link {
			t.Fatalf("invite: %d %s", r.StatusCode, r.Body)
		}
		old, _ := url.Parse(carol.Link)
		if r := env.Client().Get("/.latchkey/enroll?token=" + url.QueryEscape(old.Query().Get("token"))); r.StatusCode != http.StatusForbidden {
			t.Fatalf("old link after re-invite: %d", r.StatusCode)
		}
		nl, _ := url.Parse(again.Link)
		cb.Enrol(carolPK, nl.Query().Get("token"))
		if r := cb.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("carol after enrolment: %d", r.StatusCode)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		if r := root.PostJSON("/.latchkey/api/admin/users/"+carol.ID+"/disable", map[string]any{}); r.StatusCode != http.StatusOK {
			t.Fatalf("disable: %d %s", r.StatusCode, r.Body)
		}
		if r := cb.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("disabled user: %d", r.StatusCode)
		}
		if r := root.PostJSON("/.latchkey/api/admin/users/"+carol.ID+"/enable", map[string]any{}); r.StatusCode != http.StatusOK {
			t.Fatalf("enable: %d", r.StatusCode)
		}
		cb.Login(carolPK, "")
		if r := cb.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("enabled user: %d", r.StatusCode)
		}
		if r := root.PostJSON("/.latchkey/api/admin/users/"+rootUser.ID+"/disable", map[string]any{}); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("admin disabling themselves: %d", r.StatusCode)
		}
		if r := root.Do(http.MethodPost, "", "/.latchkey/api/admin/users/"+carol.ID+"/disable", strings.NewReader("{}"),
			http.Header{"Content-Type": {"application/json"}, "Origin": {"https://evil.example"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site disable: %d", r.StatusCode)
		}
	})

	t.Run("revoke sessions and remove a passkey", func(t *testing.T) {
		sessions, _ := env.Store.Sessions(t.Context(), carol.ID)
		if len(sessions) != 1 {
			t.Fatalf("carol has %d sessions", len(sessions))
		}
		if r := root.PostJSON("/.latchkey/api/admin/users/"+carol.ID+"/sessions/revoke", map[string]any{"id": sessions[0].ID}); r.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
		}
		if r := cb.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked session: %d", r.StatusCode)
		}
		cb.Login(carolPK, "")
		creds, _ := env.Store.Credentials(t.Context(), carol.ID)
		id := base64.RawURLEncoding.EncodeToString(creds[0].ID)
		if r := root.PostJSON("/.latchkey/api/admin/users/"+rootUser.ID+"/passkeys/remove", map[string]any{"id": id}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("carol's passkey under root's user: %d", r.StatusCode)
		}
		if r := root.PostJSON("/.latchkey/api/admin/users/"+carol.ID+"/passkeys/remove", map[string]any{"id": id}); r.StatusCode != http.StatusOK {
			t.Fatalf("remove passkey: %d %s", r.StatusCode, r.Body)
		}
		if r := cb.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("session of a removed passkey: %d", r.StatusCode)
		}
	})

	t.Run("remove the user", func(t *testing.T) {
		if r := root.Do(http.MethodDelete, "", "/.latchkey/api/admin/users/"+carol.ID, nil, http.Header{"Origin": {env.Origin()}}); r.StatusCode != http.StatusOK {
			t.Fatalf("remove: %d %s", r.StatusCode, r.Body)
		}
		if _, err := env.Store.UserByID(t.Context(), carol.ID); err == nil {
			t.Fatal("user still stored")
		}
		if r := root.Get("/.latchkey/admin/users/" + carol.ID); r.StatusCode != http.StatusNotFound {
			t.Fatalf("page of a removed user: %d", r.StatusCode)
		}
	})

	t.Run("every action audited", func(t *testing.T) {
		for _, ev := range []string{"user_added", "user_invited", "user_disabled", "user_enabled",
			"session_revoked", "passkey_removed", "user_removed"} {
			if env.Count("audit", "event = ? AND user_id = ? AND detail LIKE 'actor=root target=carol%'", ev, carol.ID) != 1 {
				t.Errorf("%s not audited once", ev)
			}
		}
	})

	t.Run("audit log filters and pages", func(t *testing.T) {
		for i := 0; i < 60; i++ {
			env.Store.Audit(t.Context(), store.Event{UserID: rootUser.ID, Event: "paging_test"})
		}
		r := root.Get("/.latchkey/admin/audit?event=paging_test")
		body := string(r.Body)
		if r.StatusCode != http.StatusOK || strings.Count(body, `data-event="paging_test"`) != 50 || !strings.Contains(body, `id="audit-next"`) {
			t.Fatalf("audit page 1: %d, %d rows", r.StatusCode, strings.Count(body, `data-event="paging_test"`))
		}
		r = root.Get("/.latchkey/admin/audit?event=paging_test&page=2")
		if body := string(r.Body); strings.Count(body, `data-event="paging_test"`) != 10 || strings.Contains(body, `id="audit-next"`) || !strings.Contains(body, `id="audit-prev"`) {
			t.Fatalf("audit page 2: %d rows", strings.Count(body, `data-event="paging_test"`))
		}
		r = root.Get("/.latchkey/admin/audit?user=root&event=login")
		if body := string(r.Body); strings.Contains(body, `data-event="paging_test"`) || strings.Contains(body, `data-event="user_added"`) {
			t.Fatal("audit filter by user and event leaks other rows")
		}
		if r := root.Get("/.latchkey/admin/audit?user=nobody"); strings.Contains(string(r.Body), `data-event="paging_test"`) {
			t.Fatal("an unknown user shows every row")
		}
	})
}
