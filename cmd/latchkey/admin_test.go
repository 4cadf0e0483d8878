package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// cliEnv is a running Latchkey (lktest) whose SQLite file the CLI opens as a second handle, as
// `latchkey` run next to `latchkey serve` would. The server's clock is set to the wall clock, as
// the CLI stamps what it writes with the real time.
func cliEnv(t *testing.T) *lktest.Env {
	t.Helper()
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	env.Clock.Advance(time.Since(env.Clock.Now()))
	t.Setenv("LATCHKEY_DATA_DIR", env.Dir)
	t.Setenv("LATCHKEY_SERVER_PUBLIC_URL", env.Origin())
	return env
}

// cli runs one command line through the real entry point.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustCLI runs a command that must succeed and returns its output.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, args...)
	if code != 0 {
		t.Fatalf("latchkey %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// lastLineToken returns the token of the enrolment URL printed as the last line.
func lastLineToken(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	u, err := url.Parse(lines[len(lines)-1])
	if err != nil || u.Path != "/.latchkey/enroll" || u.Query().Get("token") == "" {
		t.Fatalf("last line is not an enrolment URL:\n%s", out)
	}
	return u.Query().Get("token")
}

// refusedWithin polls forward auth until the browser is refused; the contract is 5 seconds for a
// change made by another process (the server polls the store's revision).
func refusedWithin(t *testing.T, b *lktest.Client, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := b.Forward("app.localhost", "/", nil)
		if r.StatusCode != http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: forward auth still allows the browser after 5 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func allowedAs(b *lktest.Client, user string) bool {
	r := b.Forward("app.localhost", "/", nil)
	return r.StatusCode == http.StatusOK && r.Header.Get("Remote-User") == user
}

func TestCLIUserInviteAndPasskeys(t *testing.T) {
	env := cliEnv(t)
	out := mustCLI(t, "user", "add", "alice", "--email", "alice@example.com", "--groups", "staff")
	first := lastLineToken(t, out)
	if !strings.Contains(out, env.Origin()+"/.latchkey/enroll?token=") {
		t.Fatalf("link does not use public_url:\n%s", out)
	}
	pk1 := lktest.NewPasskey()
	b1 := env.Client()
	b1.Enrol(pk1, first)
	if !allowedAs(b1, "alice") {
		t.Fatal("enrolment through the CLI link did not sign in")
	}

	t.Run("user invite makes a new link and ends the old one", func(t *testing.T) {
		// A second unused link, then invite: only the newest one works.
		stale := lastLineToken(t, mustCLI(t, "user", "invite", "alice"))
		fresh := lastLineToken(t, mustCLI(t, "user", "invite", "alice"))
		// The CLI expired the stale link at its wall-clock time; let the server's frozen clock
		// catch up with it.
		env.Clock.Advance(time.Since(env.Clock.Now()) + time.Millisecond)
		if _, r := env.Client().BeginRegister(stale); r.StatusCode != http.StatusForbidden {
			t.Fatalf("superseded link: %d", r.StatusCode)
		}
		pk2 := lktest.NewPasskey()
		b2 := env.Client()
		if codes := b2.Enrol(pk2, fresh); len(codes) != 0 {
			t.Fatal("an invite for an enrolled user showed new recovery codes")
		}
		if _, r := env.Client().BeginRegister(fresh); r.StatusCode != http.StatusForbidden {
			t.Fatalf("used link: %d", r.StatusCode)
		}
		if !allowedAs(b2, "alice") || !allowedAs(b1, "alice") {
			t.Fatal("sessions of both passkeys should work")
		}

		out := mustCLI(t, "passkey", "list", "alice")
		for _, pk := range []*lktest.Passkey{pk1, pk2} {
			if !strings.Contains(out, base64.RawURLEncoding.EncodeToString(pk.ID)) {
				t.Fatalf("passkey list lacks a passkey:\n%s", out)
			}
		}

		// Removing the second passkey ends the sessions it made, in the running server.
		mustCLI(t, "passkey", "remove", base64.RawURLEncoding.EncodeToString(pk2.ID))
		refusedWithin(t, b2, "passkey remove")
		if !allowedAs(b1, "alice") {
			t.Fatal("the other passkey's session was ended")
		}
		if strings.Contains(mustCLI(t, "passkey", "list", "alice"), base64.RawURLEncoding.EncodeToString(pk2.ID)) {
			t.Fatal("removed passkey still listed")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"user", "invite", "nobody"}, `no user named "nobody"`},
			{[]string{"passkey", "list", "nobody"}, `no user named "nobody"`},
			{[]string{"passkey", "remove", "!!"}, "not a passkey ID"},
			{[]string{"passkey", "remove", base64.RawURLEncoding.EncodeToString([]byte("unknown"))}, "no passkey with ID"},
			{[]string{"session", "revoke", "alice", "no-such-session"}, "no live session"},
			{[]string{"audit", "--user", "nobody"}, `no user named "nobody"`},
			{[]string{"audit", "--since", "yesterday"}, "invalid argument"},
		} {
			t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
				before := env.Tables()
				_, errs, code := cli(t, tc.args...)
				if code == 0 || !strings.Contains(errs, tc.want) {
					t.Fatalf("exit %d, stderr %q; want an error containing %q", code, errs, tc.want)
				}
				if env.Tables() != before {
					t.Fatal("a refused command wrote to the database")
				}
			})
		}
	})

	t.Run("printed values cannot drive the terminal", func(t *testing.T) {
		if err := env.Store.RenameCredential(context.Background(), userID(t, env, "alice"), pk1.ID, "evil\x1b[2J\x1b]0;owned\x07"); err != nil {
			t.Fatal(err)
		}
		out := mustCLI(t, "passkey", "list", "alice")
		if strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, "evil") {
			t.Fatalf("control characters reached the output: %q", out)
		}
	})
}

func userID(t *testing.T, env *lktest.Env, name string) string {
	t.Helper()
	u, err := env.Store.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestCLISessionsDisableAndAudit(t *testing.T) {
	env := cliEnv(t)
	_, aliceToken := env.AddUser("alice")
	_, bobToken := env.AddUser("bob")
	alice, bob := env.Client(), env.Client()
	alicePK := lktest.NewPasskey()
	alice.Enrol(alicePK, aliceToken)
	bob.Enrol(lktest.NewPasskey(), bobToken)
	laptop := env.Client()
	laptop.Login(alicePK, "")

	t.Run("session list and revoke one", func(t *testing.T) {
		out := mustCLI(t, "session", "list", "alice")
		ss, err := env.Store.Sessions(context.Background(), userID(t, env, "alice"))
		if err != nil || len(ss) != 2 {
			t.Fatalf("%d sessions, %v", len(ss), err)
		}
		for _, s := range ss {
			if !strings.Contains(out, s.ID) {
				t.Fatalf("session list lacks %s:\n%s", s.ID, out)
			}
		}
		// End one of the two: exactly that browser is refused, the other keeps working.
		mustCLI(t, "session", "revoke", "alice", ss[0].ID)
		deadline := time.Now().Add(5 * time.Second)
		for allowedAs(alice, "alice") && allowedAs(laptop, "alice") {
			if time.Now().After(deadline) {
				t.Fatal("the revoked session still passes after 5 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !allowedAs(alice, "alice") && !allowedAs(laptop, "alice") {
			t.Fatal("both sessions ended")
		}
	})

	t.Run("session revoke ends every session", func(t *testing.T) {
		again := env.Client()
		again.Login(alicePK, "")
		out := mustCLI(t, "session", "revoke", "alice")
		if !strings.Contains(out, "Ended") {
			t.Fatalf("output: %s", out)
		}
		refusedWithin(t, again, "session revoke")
		refusedWithin(t, alice, "session revoke")
		if !allowedAs(bob, "bob") {
			t.Fatal("another user was signed out")
		}
	})

	t.Run("user disable", func(t *testing.T) {
		mustCLI(t, "user", "disable", "bob")
		refusedWithin(t, bob, "user disable")
		if _, errs, code := cli(t, "user", "invite", "bob"); code == 0 || !strings.Contains(errs, "disabled") {
			t.Fatalf("invite of a disabled user: exit %d %s", code, errs)
		}
	})

	t.Run("audit filters by user and age", func(t *testing.T) {
		if err := env.Store.Audit(context.Background(), store.Event{At: time.Now().Add(-48 * time.Hour), UserID: userID(t, env, "alice"),
			Event: "ancient_event"}); err != nil {
			t.Fatal(err)
		}
		all := mustCLI(t, "audit")
		for _, want := range []string{"alice", "bob", "passkey_added", "login", "user_disabled", "sessions_revoked", "ancient_event"} {
			if !strings.Contains(all, want) {
				t.Fatalf("audit lacks %q:\n%s", want, all)
			}
		}
		mine := mustCLI(t, "audit", "--user", "alice")
		if strings.Contains(mine, "bob") || !strings.Contains(mine, "sessions_revoked") {
			t.Fatalf("audit --user alice:\n%s", mine)
		}
		recent := mustCLI(t, "audit", "--since", "24h")
		if strings.Contains(recent, "ancient_event") || !strings.Contains(recent, "user_disabled") {
			t.Fatalf("audit --since 24h:\n%s", recent)
		}
	})
}

// TestPasskeyRemoveIDWithLeadingDash: a base64url credential ID may begin with "-"; the ID that
// `passkey list` prints must work as it is, with --config before or after it, and after "--".
func TestPasskeyRemoveIDWithLeadingDash(t *testing.T) {
	for _, order := range []string{"config after", "config before", "double dash"} {
		t.Run(order, func(t *testing.T) {
			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "latchkey.yaml")
			if err := os.WriteFile(cfgPath, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			st, err := openStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			u := store.User{ID: uuid.NewString(), Name: "dash"}
			id := append([]byte{0xf9}, make([]byte, 31)...) // base64url "-Q..." : starts with a dash
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			if err := st.RegisterCredential(ctx, store.Enrolment{Credential: store.Credential{ID: id, UserID: u.ID, PublicKey: []byte{1}}}); err != nil {
				t.Fatal(err)
			}
			st.Close()
			printed := base64.RawURLEncoding.EncodeToString(id)
			if printed[0] != '-' {
				t.Fatalf("test ID %q does not start with a dash", printed)
			}
			args := map[string][]string{
				"config after":  {"passkey", "remove", printed, "--config", cfgPath},
				"config before": {"passkey", "remove", "--config=" + cfgPath, printed},
				"double dash":   {"passkey", "remove", "-c", cfgPath, "--", printed},
			}[order]
			var out, errb bytes.Buffer
			if code := run(ctx, args, &out, &errb); code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, errb.String())
			}
			st, err = openStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Credential(ctx, id); err == nil {
				t.Fatal("the passkey is still there")
			}
		})
	}
}
