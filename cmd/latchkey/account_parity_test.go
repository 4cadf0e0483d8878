package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/store"
)

// consoleAdmin enrols an admin in the running server and returns their browser, freshly verified.
func consoleAdmin(t *testing.T, env *lktest.Env) *lktest.Client {
	t.Helper()
	_, token := env.AddUser("root", "admins")
	b := env.Client()
	b.Enrol(lktest.NewPasskey(), token)
	return b
}

// TestCLIAndConsoleValidateAlike (issue 16, item 7): the same bad input gets the same refusal,
// word for word, from `latchkey user add` and from the admin console, and neither writes a user.
// Control characters anywhere are refused (and quoted, never echoed raw to a terminal).
func TestCLIAndConsoleValidateAlike(t *testing.T) {
	env := cliEnv(t)
	root := consoleAdmin(t, env)
	for _, tc := range []struct {
		name, user, email, display, group string
		field                             string
	}{
		{"space in name", "a b", "", "", "", "user name"},
		{"escape in name", "ok\x1b[2J", "", "", "", "user name"},
		{"newline inside name", "a\nb", "", "", "", "user name"},
		{"bidi override in name", "adm\u202enim", "", "", "", "user name"},
		{"overlong name", strings.Repeat("a", 65), "", "", "", "user name"},
		{"e-mail without @", "erin", "no-at", "", "", "e-mail"},
		{"header injection in e-mail", "erin", "a@example.com\r\nBcc: x@example.net", "", "", "e-mail"},
		{"display name in e-mail", "erin", "Erin <erin@example.com>", "", "", "e-mail"},
		{"two addresses", "erin", "a@example.com,b@example.com", "", "", "e-mail"},
		{"terminal title in display name", "erin", "", "Erin\x1b]0;pwned\x07", "", "display name"},
		{"zero-width joiner in display name", "erin", "", "Er\u200din", "", "display name"},
		{"space in group", "erin", "", "", "two words", "group"},
		{"NUL in group", "erin", "", "", "ops\x00", "group"},
		{"escape in group", "erin", "", "", "ops\x1b[31m", "group"},
		{"zero-width space in group", "erin", "", "", "adm\u200bins", "group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := env.Count("users", "")
			args := []string{"user", "add", tc.user}
			if tc.email != "" {
				args = append(args, "--email", tc.email)
			}
			if tc.display != "" {
				args = append(args, "--display-name", tc.display)
			}
			if tc.group != "" {
				args = append(args, "--groups", tc.group)
			}
			out, errs, code := cli(t, args...)
			if code == 0 {
				t.Fatalf("CLI accepted it:\n%s", out)
			}
			body := map[string]any{"name": tc.user, "email": tc.email, "display_name": tc.display}
			if tc.group != "" {
				body["groups"] = []string{tc.group}
			}
			r := root.PostJSON("/.latchkey/api/admin/users", body)
			var ans struct {
				Error string `json:"error"`
			}
			if r.StatusCode != http.StatusBadRequest || r.JSON(&ans) != nil {
				t.Fatalf("console: %d %s", r.StatusCode, r.Body)
			}
			if !strings.HasPrefix(ans.Error, tc.field+": ") {
				t.Errorf("console refused %q, want a refusal of the %s", ans.Error, tc.field)
			}
			if cliMsg := strings.TrimSuffix(strings.TrimPrefix(errs, "latchkey: "), "\n"); cliMsg != ans.Error {
				t.Errorf("different refusals:\n cli:     %q\n console: %q", cliMsg, ans.Error)
			}
			// Quoted: nothing the terminal would act on reaches it.
			for _, c := range errs {
				if c < 0x20 && c != '\n' || c == 0x7f || c == '\u202e' || c == '\u200b' || c == '\u200d' {
					t.Errorf("the CLI printed control character %U", c)
				}
			}
			if env.Count("users", "") != users {
				t.Fatal("a user was written")
			}
		})
	}
}

// TestCLIAndConsoleAuditAlike (issue 16, item 7): the same operations made with the CLI (on
// carol) and in the console (on dave) leave the same audit rows, in the same order, each naming
// the actor ("cli" or the admin) and the target.
func TestCLIAndConsoleAuditAlike(t *testing.T) {
	env := cliEnv(t)
	root := consoleAdmin(t, env)
	ctx := context.Background()
	post := func(path string, body any) *lktest.Response {
		t.Helper()
		r := root.PostJSON(path, body)
		if r.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %s", path, r.StatusCode, r.Body)
		}
		return r
	}
	enrolFrom := func(link string) (*lktest.Passkey, *lktest.Client) {
		t.Helper()
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		pk, b := lktest.NewPasskey(), env.Client()
		b.Enrol(pk, u.Query().Get("token"))
		return pk, b
	}

	// Add, and enrol a passkey (which signs in: one session each).
	out := mustCLI(t, "user", "add", "carol", "--groups", "staff, ops", "--email", "carol@example.com")
	carolPK, _ := enrolFrom("http://x/.latchkey/enroll?token=" + lastLineToken(t, out))
	var added struct{ ID, Link string }
	if err := post("/.latchkey/api/admin/users", map[string]any{"name": "dave", "groups": []string{"staff", "ops"}, "email": "dave@example.com"}).JSON(&added); err != nil {
		t.Fatal(err)
	}
	davePK, _ := enrolFrom(added.Link)
	carol, err := env.Store.UserByName(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	dave := added.ID
	base := "/.latchkey/api/admin/users/" + dave

	mustCLI(t, "user", "invite", "carol")
	post(base+"/invite", map[string]any{})

	mustCLI(t, "session", "revoke", "carol")
	post(base+"/sessions/revoke", map[string]any{"all": true})

	if out := mustCLI(t, "user", "disable", "carol"); !strings.Contains(out, "Disabled carol. Ended 0 sessions and revoked 0 API tokens; expired 1 unused link.") {
		t.Errorf("user disable said:\n%s", out)
	}
	post(base+"/disable", map[string]any{})
	mustCLI(t, "user", "enable", "carol")
	post(base+"/enable", map[string]any{})

	// One session each again, then end exactly that one.
	env.Client().Login(carolPK, "")
	env.Client().Login(davePK, "")
	sessionOf := func(userID string) string {
		t.Helper()
		ss, err := env.Store.Sessions(ctx, userID)
		if err != nil || len(ss) != 1 {
			t.Fatalf("%d sessions, %v", len(ss), err)
		}
		return ss[0].ID
	}
	mustCLI(t, "session", "revoke", "carol", sessionOf(carol.ID))
	post(base+"/sessions/revoke", map[string]any{"id": sessionOf(dave)})

	mustCLI(t, "passkey", "remove", base64.RawURLEncoding.EncodeToString(carolPK.ID))
	post(base+"/passkeys/remove", map[string]any{"id": base64.RawURLEncoding.EncodeToString(davePK.ID)})

	mustCLI(t, "user", "remove", "carol")
	if r := root.Do(http.MethodDelete, "", base, nil, http.Header{"Origin": {env.Origin()}}); r.StatusCode != http.StatusOK {
		t.Fatalf("remove dave: %d %s", r.StatusCode, r.Body)
	}

	vocabulary := map[string]bool{account.EventUserAdded: true, account.EventUserInvited: true, account.EventUserDisabled: true,
		account.EventUserEnabled: true, account.EventUserRemoved: true, account.EventPasskeyRemoved: true,
		account.EventSessionRevoked: true, account.EventSessionsRevoked: true, account.EventLinkCreated: true}
	rows := func(userID, actor, name string, pk *lktest.Passkey) []string {
		t.Helper()
		events, err := env.Store.AuditEvents(ctx, store.AuditFilter{UserID: userID, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := len(events) - 1; i >= 0; i-- { // oldest first
			e := events[i]
			if !vocabulary[e.Event] {
				continue
			}
			d := e.Detail
			if e.Event != account.EventLinkCreated {
				prefix := "actor=" + actor + " target=" + name
				if !strings.HasPrefix(d, prefix) {
					t.Errorf("%s row %q does not name actor and target (%s)", e.Event, d, prefix)
				}
				d = "actor=A target=T" + strings.TrimPrefix(d, prefix)
			}
			if e.Event == account.EventPasskeyRemoved && !strings.HasSuffix(d, " passkey="+account.CredentialRef(pk.ID)) {
				t.Errorf("passkey_removed row %q does not name the passkey", d)
			}
			out = append(out, e.Event+" "+regexp.MustCompile(`passkey=\S+`).ReplaceAllString(d, "passkey=P"))
		}
		return out
	}
	cliRows := rows(carol.ID, "cli", "carol", carolPK)
	consoleRows := rows(dave, "root", "dave", davePK)
	want := []string{
		"enrolment_link_created ",
		"user_added actor=A target=T groups=staff,ops",
		"enrolment_link_created ",
		"user_invited actor=A target=T",
		"sessions_revoked actor=A target=T sessions=1 tokens=0",
		"user_disabled actor=A target=T sessions=0 tokens=0 links=1",
		"user_enabled actor=A target=T",
		"session_revoked actor=A target=T session=other",
		"passkey_removed actor=A target=T passkey=P",
		"user_removed actor=A target=T",
	}
	if strings.Join(cliRows, "\n") != strings.Join(want, "\n") {
		t.Errorf("CLI audit rows:\n%s\nwant:\n%s", strings.Join(cliRows, "\n"), strings.Join(want, "\n"))
	}
	if strings.Join(consoleRows, "\n") != strings.Join(cliRows, "\n") {
		t.Errorf("console audit rows differ from the CLI's:\nconsole:\n%s\ncli:\n%s", strings.Join(consoleRows, "\n"), strings.Join(cliRows, "\n"))
	}
}
