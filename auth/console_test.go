package auth_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// signalAnswer is the Signal API data of the ceremony answers (issue 20).
type signalAnswer struct {
	RPID          string   `json:"rp_id"`
	UserID        string   `json:"user_id"`
	Name          string   `json:"name"`
	DisplayName   string   `json:"display_name"`
	CredentialIDs []string `json:"credential_ids"`
}

// TestCeremonyAnswersForThePage: registration names the new passkey and marks it used by the
// sign-in it made; registration, sign-in and removal hand the page the passkeys the server
// accepts and the user's names, for the Signal API; a passkey made in a recovery session leads
// to the account page's follow-ups.
func TestCeremonyAnswersForThePage(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	user, token := env.AddUser("alice")
	b := env.Client()
	pk := lktest.NewPasskey()
	o, r := b.BeginRegister(token)
	if r.StatusCode != http.StatusOK {
		t.Fatal(r.StatusCode)
	}
	r = b.PostJSON("/.latchkey/api/register/finish", pk.Attest(o, env.Origin(), lktest.Ceremony{}))
	var reg struct {
		Passkey  struct{ ID, Name string }
		Signal   signalAnswer
		Redirect string
		Codes    []string `json:"recovery_codes"`
	}
	if r.StatusCode != http.StatusOK || r.JSON(&reg) != nil {
		t.Fatalf("register/finish: %d %s", r.StatusCode, r.Body)
	}
	pkID := base64.RawURLEncoding.EncodeToString(pk.ID)
	if reg.Passkey.ID != pkID || reg.Passkey.Name == "" {
		t.Errorf("the answer names the passkey %+v, want ID %s and a name", reg.Passkey, pkID)
	}
	handle := base64.RawURLEncoding.EncodeToString(pk.UserHandle)
	if reg.Signal.RPID != "localhost" || reg.Signal.UserID != handle || reg.Signal.Name != "alice" ||
		reg.Signal.DisplayName != user.DisplayName || strings.Join(reg.Signal.CredentialIDs, ",") != pkID {
		t.Errorf("signal data %+v, want rp localhost, handle %s, alice and the one passkey", reg.Signal, handle)
	}
	stored, err := env.Store.Credential(t.Context(), pk.ID)
	if err != nil || stored.Name != reg.Passkey.Name || !stored.LastUsedAt.Equal(stored.CreatedAt) || stored.LastUsedAt.IsZero() {
		t.Errorf("stored passkey %q used %v created %v (%v): the enrolment's sign-in used it", stored.Name, stored.LastUsedAt, stored.CreatedAt, err)
	}

	// A sign-in answers the same data; its last use is the store's.
	env.Clock.Advance(3600e9)
	bo := b.BeginLogin()
	pk.Counter++
	r = b.FinishLogin(pk.Assert(bo, env.Origin(), lktest.Ceremony{}), "")
	var login struct {
		Redirect string
		Signal   signalAnswer
	}
	if r.StatusCode != http.StatusOK || r.JSON(&login) != nil || strings.Join(login.Signal.CredentialIDs, ",") != pkID || login.Signal.UserID != handle {
		t.Fatalf("login/finish: %d %s", r.StatusCode, r.Body)
	}
	stored, _ = env.Store.Credential(t.Context(), pk.ID)
	if !stored.LastUsedAt.Equal(env.Clock.Now()) {
		t.Errorf("last used %v after a sign-in at %v", stored.LastUsedAt, env.Clock.Now())
	}
	page := string(b.Get("/.latchkey/account").Body)
	if want := `<time datetime="` + env.Clock.Now().UTC().Format("2006-01-02T15:04:05Z") + `"`; !strings.Contains(page, `class="last-used">`+want) {
		t.Errorf("the account page does not show the sign-in's time %s as last used", want)
	}

	// A second passkey, then its removal: the answer lists the one left.
	pk2 := lktest.NewPasskey()
	pk2.UserHandle = pk.UserHandle
	b.Enrol(pk2, "")
	r = b.PostJSON("/.latchkey/api/passkeys/remove", map[string]string{"id": base64.RawURLEncoding.EncodeToString(pk2.ID)})
	var removed struct{ Signal signalAnswer }
	if r.StatusCode != http.StatusOK || r.JSON(&removed) != nil || strings.Join(removed.Signal.CredentialIDs, ",") != pkID {
		t.Fatalf("remove: %d %s", r.StatusCode, r.Body)
	}

	// Recovery: the passkey made in the recovery session leads to ?recovered=1.
	rb := env.Client()
	if r := rb.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": strings.ToLower(strings.ReplaceAll(reg.Codes[0], "-", ""))}); r.StatusCode != http.StatusOK {
		t.Fatalf("recover with a code typed in lower case without dashes: %d %s", r.StatusCode, r.Body)
	}
	if body := string(rb.Get("/.latchkey/login").Body); !strings.Contains(body, `id="recovery-create-passkey" href="/.latchkey/enroll"`) {
		t.Error("the login page of a recovery session does not link to creating a passkey")
	}
	pk3 := lktest.NewPasskey()
	pk3.UserHandle = pk.UserHandle
	o, _ = rb.BeginRegister("")
	r = rb.PostJSON("/.latchkey/api/register/finish", pk3.Attest(o, env.Origin(), lktest.Ceremony{}))
	var rec struct{ Redirect string }
	if r.StatusCode != http.StatusOK || r.JSON(&rec) != nil || rec.Redirect != env.Origin()+"/.latchkey/account?recovered=1" {
		t.Fatalf("register/finish in a recovery session: %d %s", r.StatusCode, r.Body)
	}
	page = string(rb.Get("/.latchkey/account?recovered=1").Body)
	if !strings.Contains(page, `id="after-recovery"`) || !strings.Contains(page, `<li data-id="`+pkID+`">`) {
		t.Error("after a recovery the account page does not offer to remove the old passkey")
	}
}

// TestAuditPageFilters: readable names, actor and target columns, the event dropdown and a
// range of days.
func TestAuditPageFilters(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny"})
	root := enrolled(t, env, "root", lktest.NewPasskey(), "admins")
	var carol enrolment
	if r := root.PostJSON("/.latchkey/api/admin/users", map[string]any{"name": "carol"}); r.StatusCode != http.StatusCreated || r.JSON(&carol) != nil {
		t.Fatalf("add: %d", r.StatusCode)
	}
	if r := root.PostJSON("/.latchkey/api/admin/users/"+carol.ID+"/disable", map[string]any{}); r.StatusCode != http.StatusOK {
		t.Fatalf("disable: %d", r.StatusCode)
	}
	day := env.Clock.Now().UTC()
	page := func(q string) string {
		r := root.Get("/.latchkey/admin/audit" + q)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("audit%s: %d", q, r.StatusCode)
		}
		return string(r.Body)
	}
	body := page("")
	for _, want := range []string{
		`<tr data-event="user_disabled">`,
		`<td data-label="Event" class="event-name" title="user_disabled">User disabled</td>`,
		`<td data-label="Actor" class="actor">root</td>`,
		`<td data-label="Target" class="target">carol</td>`,
		`<option value="user_disabled">User disabled</option>`,
		`<option value="passkey_added">Passkey added</option>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the audit page lacks %s", want)
		}
	}
	if strings.Contains(body, `class="detail">actor=`) {
		t.Error("the detail column repeats actor= and target=")
	}
	if b := page("?event=user_disabled"); strings.Count(b, "<tr data-event=") != 1 || !strings.Contains(b, `<option value="user_disabled" selected>`) {
		t.Error("the event filter does not select one event type")
	}
	for _, c := range []struct {
		q    string
		rows bool
	}{
		{"?from=" + day.Format("2006-01-02") + "&to=" + day.Format("2006-01-02"), true},
		{"?from=" + day.AddDate(0, 0, 1).Format("2006-01-02"), false},
		{"?to=" + day.AddDate(0, 0, -1).Format("2006-01-02"), false},
		{"?from=not-a-date", true},
	} {
		if got := strings.Contains(page(c.q), "<tr data-event="); got != c.rows {
			t.Errorf("audit%s: rows %v, want %v", c.q, got, c.rows)
		}
	}
}
