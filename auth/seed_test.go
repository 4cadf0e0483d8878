package auth_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// TestSeedSecurityGuarantees has one subtest per row of the product guide's table of threats
// (section 13): each attack is made for real against the server and must fail.
func TestSeedSecurityGuarantees(t *testing.T) {
	rules := []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}
	setup := func(t *testing.T) (*lktest.Env, *lktest.Passkey, *lktest.Client, []string) {
		env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: rules})
		_, token := env.AddUser("alice")
		pk := lktest.NewPasskey()
		c := env.Client()
		codes := c.Enrol(pk, token)
		return env, pk, c, codes
	}
	refused := func(t *testing.T, env *lktest.Env, r *lktest.Response, before string) {
		t.Helper()
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d (%s), want 400", r.StatusCode, r.Body)
		}
		for _, ck := range r.Cookies() {
			if ck.Name == "latchkey_session" && ck.MaxAge >= 0 && ck.Value != "" {
				t.Fatal("a refused login set a session cookie")
			}
		}
		if after := env.Tables(); after != before {
			t.Fatalf("a refused login wrote to the store:\nbefore %s\nafter %s", before, after)
		}
	}

	t.Run("phishing: an assertion made for another origin", func(t *testing.T) {
		env, pk, _, _ := setup(t)
		b := env.Client()
		o := b.BeginLogin()
		before := env.Tables()
		// A look-alike site relays our challenge; the browser signs for the origin it is on.
		refused(t, env, b.FinishLogin(pk.Assert(o, "https://latchkey-login.example.net", lktest.Ceremony{}), ""), before)
	})
	t.Run("man in the middle: an assertion for another relying party", func(t *testing.T) {
		env, pk, _, _ := setup(t)
		b := env.Client()
		o := b.BeginLogin()
		before := env.Tables()
		refused(t, env, b.FinishLogin(pk.Assert(o, env.Origin(), lktest.Ceremony{RPID: "evil.example"}), ""), before)
	})
	t.Run("replay: the same assertion twice", func(t *testing.T) {
		env, pk, _, _ := setup(t)
		b := env.Client()
		o := b.BeginLogin()
		body := pk.Assert(o, env.Origin(), lktest.Ceremony{})
		if r := b.FinishLogin(body, ""); r.StatusCode != http.StatusOK {
			t.Fatalf("first use: %d %s", r.StatusCode, r.Body)
		}
		before := env.Tables()
		refused(t, env, b.FinishLogin(body, ""), before)
		// Also after beginning a fresh ceremony: the old challenge is not the new one.
		b.BeginLogin()
		refused(t, env, b.FinishLogin(body, ""), before)
	})
	t.Run("credential stuffing: a key that was never enrolled", func(t *testing.T) {
		env, pk, _, _ := setup(t)
		b := env.Client()
		o := b.BeginLogin()
		stranger := lktest.NewPasskey()
		stranger.ID, stranger.UserHandle = pk.ID, pk.UserHandle // right names, wrong key
		before := env.Tables()
		refused(t, env, b.FinishLogin(stranger.Assert(o, env.Origin(), lktest.Ceremony{}), ""), before)
	})
	t.Run("no user verification: UV flag clear", func(t *testing.T) {
		env, pk, _, _ := setup(t)
		b := env.Client()
		o := b.BeginLogin()
		up := lktest.FlagUP
		before := env.Tables()
		refused(t, env, b.FinishLogin(pk.Assert(o, env.Origin(), lktest.Ceremony{Flags: &up}), ""), before)
	})
	t.Run("database leak: a copy of the database signs nobody in", func(t *testing.T) {
		env, pk, c, codes := setup(t)
		// Put every kind of secret the product has into play: a session, recovery codes, a fresh
		// enrolment link (unused), and an API token.
		_, unusedToken := env.AddUser("bob")
		r := c.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"app.localhost"}, "expires_in": "2160h"})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create token: %d %s", r.StatusCode, r.Body)
		}
		var tok struct{ Token string }
		json.Unmarshal(r.Body, &tok)
		copyPath := filepath.Join(t.TempDir(), "leak.db")
		if err := env.Store.Backup(t.Context(), copyPath); err != nil {
			t.Fatal(err)
		}
		leak, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatal(err)
		}
		pkcs8, _ := x509.MarshalPKCS8PrivateKey(pk.Key)
		secrets := map[string][]byte{
			"private key scalar": mustBytes(pk.Key.Bytes()), "private key (PKCS#8)": pkcs8,
			"session cookie": []byte(c.Session()), "enrolment token": []byte(unusedToken), "API token": []byte(tok.Token),
		}
		for i, code := range codes {
			secrets["recovery code "+string(rune('0'+i))] = []byte(code)
			secrets["recovery code (typed) "+string(rune('0'+i))] = []byte(strings.ReplaceAll(code, "-", ""))
		}
		for name, s := range secrets {
			if len(s) > 0 && bytes.Contains(leak, s) {
				t.Errorf("the database copy contains the %s", name)
			}
		}
		// Now use what the copy does hold, as an attacker would: every stored value is tried as
		// a recovery code, an enrolment token, an API token and a session cookie.
		var values []string
		for _, q := range []string{"SELECT code_hash FROM recovery_codes", "SELECT token_hash FROM invites",
			"SELECT token_hash FROM api_tokens", "SELECT id FROM sessions"} {
			rows, err := env.Store.DB().Query(q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v []byte
				rows.Scan(&v)
				values = append(values, string(v), base64.RawURLEncoding.EncodeToString(v))
			}
			rows.Close()
		}
		attacker := env.Client()
		for _, v := range values {
			if r := attacker.PostJSON("/.latchkey/api/recover", map[string]string{"user": "alice", "code": v}); r.StatusCode == http.StatusOK {
				t.Fatalf("a stored value worked as a recovery code")
			}
			env.Clock.Advance(time.Hour) // stay clear of the recovery rate limit
			if r := attacker.PostJSON("/.latchkey/api/register/begin", map[string]string{"token": v}); r.StatusCode == http.StatusOK {
				t.Fatalf("a stored value worked as an enrolment token")
			}
			if !printable(v) {
				continue // raw hash bytes cannot travel in a header; their base64 form is tried
			}
			if r := attacker.Forward("app.localhost", "/", http.Header{"Authorization": {"Bearer " + v}}); r.StatusCode == http.StatusOK {
				t.Fatalf("a stored value worked as an API token")
			}
			probe := env.Client()
			probe.Cookies["latchkey_session"] = v
			if r := probe.Forward("app.localhost", "/", nil); r.StatusCode == http.StatusOK {
				t.Fatalf("a stored session ID worked as a session cookie")
			}
		}
		// Control: the real secrets do work, so the probes above were able to succeed. (From
		// another address: the wrong tokens above have rate-limited the attacker's.)
		if r := c.Forward("app.localhost", "/", http.Header{"Authorization": {"Bearer " + tok.Token},
			"X-Forwarded-For": {"198.51.100.99"}}); r.StatusCode != http.StatusOK {
			t.Fatalf("control: the real API token was refused: %d", r.StatusCode)
		}
		if r := env.Client().PostJSON("/.latchkey/api/register/begin", map[string]string{"token": unusedToken}); r.StatusCode != http.StatusOK {
			t.Fatalf("control: the real enrolment token was refused: %d %s", r.StatusCode, r.Body)
		}
	})
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func mustBytes(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
