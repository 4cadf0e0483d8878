package auth_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

type createdToken struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

func newToken(t *testing.T, b *lktest.Client, body map[string]any) createdToken {
	t.Helper()
	r := b.PostJSON("/.latchkey/api/tokens", body)
	var out createdToken
	if r.StatusCode != http.StatusCreated || r.JSON(&out) != nil || out.ID == "" || !strings.HasPrefix(out.Token, "lk_") {
		t.Fatalf("create token: %d %s", r.StatusCode, r.Body)
	}
	return out
}

func bearer(tok string, from string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}, "X-Forwarded-For": {from}}
}

func TestAPITokens(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Authorization", r.Header.Get("Authorization"))
		w.Header().Set("X-Seen-User", r.Header.Get("Remote-User"))
	}))
	defer upstream.Close()
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", LogLevel: slog.LevelDebug,
		Routes: map[string]string{"routed.localhost": upstream.URL},
		Rules: []proxy.RuleConfig{
			{Hosts: []string{"app.localhost", "other.localhost", "routed.localhost"}, Policy: "passkey"},
			{Hosts: []string{"vault.localhost"}, Policy: "passkey", MaxAge: time.Hour},
		}})
	alicePK := lktest.NewPasskey()
	alice := enrolled(t, env, "alice", alicePK)
	tok := newToken(t, alice, map[string]any{"name": "backup script", "hosts": []string{"App.Localhost.", "vault.localhost", "routed.localhost"}, "expires_in": "720h"})
	var seen []string
	seen = append(seen, tok.Token)
	script := env.Client() // no cookies: a script

	t.Run("accepted on its hosts only", func(t *testing.T) {
		r := script.Forward("app.localhost", "/api/x", bearer(tok.Token, "198.51.100.1"))
		if r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" || r.Header.Get("Remote-Email") != "alice@example.com" {
			t.Fatalf("token on its host: %d %v", r.StatusCode, r.Header)
		}
		if r := script.Forward("other.localhost", "/", bearer(tok.Token, "198.51.100.1")); r.StatusCode != http.StatusUnauthorized || r.Header.Get("Remote-User") != "" {
			t.Fatalf("token on another host: %d", r.StatusCode)
		}
		if r := script.Forward("vault.localhost", "/", bearer(tok.Token, "198.51.100.1")); r.StatusCode != http.StatusForbidden {
			t.Fatalf("token on a max_age rule: %d, want 403", r.StatusCode)
		}
	})

	t.Run("reverse-proxy mode removes the token before the upstream", func(t *testing.T) {
		r := script.Do(http.MethodGet, "routed.localhost", "/", nil, http.Header{"Authorization": {"Bearer " + tok.Token}})
		if r.StatusCode != http.StatusOK || r.Header.Get("X-Seen-User") != "alice" || r.Header.Get("X-Seen-Authorization") != "" {
			t.Fatalf("proxied with a token: %d user=%q authorization=%q", r.StatusCode, r.Header.Get("X-Seen-User"), r.Header.Get("X-Seen-Authorization"))
		}
	})

	t.Run("a token cannot manage tokens or open pages", func(t *testing.T) {
		r := script.Do(http.MethodGet, "", "/.latchkey/api/tokens", nil, http.Header{"Authorization": {"Bearer " + tok.Token}})
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token listing tokens: %d", r.StatusCode)
		}
		r = script.Do(http.MethodGet, "", "/.latchkey/account", nil, http.Header{"Authorization": {"Bearer " + tok.Token}})
		if r.StatusCode != http.StatusFound {
			t.Fatalf("token on the account page: %d", r.StatusCode)
		}
	})

	t.Run("listed with last use, never with the secret", func(t *testing.T) {
		r := alice.Get("/.latchkey/api/tokens")
		var out struct {
			Tokens []struct {
				ID       string    `json:"id"`
				Name     string    `json:"name"`
				Hosts    []string  `json:"hosts"`
				LastUsed time.Time `json:"last_used_at"`
				Status   string    `json:"status"`
			} `json:"tokens"`
		}
		if r.StatusCode != http.StatusOK || r.JSON(&out) != nil || len(out.Tokens) != 1 {
			t.Fatalf("list: %d %s", r.StatusCode, r.Body)
		}
		got := out.Tokens[0]
		if got.ID != tok.ID || got.Name != "backup script" || strings.Join(got.Hosts, ",") != "app.localhost,vault.localhost,routed.localhost" ||
			got.Status != "active" || !got.LastUsed.Equal(env.Clock.Now()) {
			t.Fatalf("listed token = %+v", got)
		}
		if strings.Contains(string(r.Body), tok.Token) {
			t.Fatal("the list shows the token")
		}
		page := alice.Get("/.latchkey/tokens")
		if page.StatusCode != http.StatusOK || !strings.Contains(string(page.Body), "backup script") ||
			!strings.Contains(string(page.Body), "/.latchkey/static/tokens.js") || strings.Contains(string(page.Body), tok.Token) {
			t.Fatalf("tokens page: %d", page.StatusCode)
		}
	})

	t.Run("refused after expiry", func(t *testing.T) {
		short := newToken(t, alice, map[string]any{"name": "short", "hosts": []string{"app.localhost"}, "expires_in": "1h"})
		seen = append(seen, short.Token)
		if r := script.Forward("app.localhost", "/", bearer(short.Token, "198.51.100.2")); r.StatusCode != http.StatusOK {
			t.Fatalf("fresh token: %d", r.StatusCode)
		}
		env.Clock.Advance(time.Hour)
		if r := script.Forward("app.localhost", "/", bearer(short.Token, "198.51.100.2")); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("expired token: %d", r.StatusCode)
		}
		// An hour on, alice's passkey check is old: creating tokens needs a fresh one (issue 16).
		if r := stepUp(t, env, alice, alicePK); r.StatusCode != http.StatusOK {
			t.Fatalf("step-up: %d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("refused after revocation", func(t *testing.T) {
		victim := newToken(t, alice, map[string]any{"name": "leaked", "hosts": []string{"app.localhost"}})
		seen = append(seen, victim.Token)
		if r := script.Forward("app.localhost", "/", bearer(victim.Token, "198.51.100.3")); r.StatusCode != http.StatusOK {
			t.Fatalf("token before revocation: %d", r.StatusCode)
		}
		bob := enrolled(t, env, "bob", lktest.NewPasskey())
		if r := bob.Do(http.MethodDelete, "", "/.latchkey/api/tokens/"+victim.ID, nil, http.Header{"Origin": {env.Origin()}}); r.StatusCode != http.StatusNotFound {
			t.Fatalf("bob revoking alice's token: %d", r.StatusCode)
		}
		if r := alice.Do(http.MethodDelete, "", "/.latchkey/api/tokens/"+victim.ID, nil, nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("revoke without Origin: %d, want 403", r.StatusCode)
		}
		if r := alice.Do(http.MethodDelete, "", "/.latchkey/api/tokens/"+victim.ID, nil, http.Header{"Origin": {env.Origin()}}); r.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
		}
		if r := script.Forward("app.localhost", "/", bearer(victim.Token, "198.51.100.3")); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token: %d", r.StatusCode)
		}
		if env.Count("audit", "event = 'token_revoked'") != 1 || env.Count("audit", "event = 'token_created'") != 3 {
			t.Fatal("token events not audited")
		}
	})

	t.Run("rate-limited when wrong", func(t *testing.T) {
		for i := 0; i < 20; i++ {
			if r := script.Forward("app.localhost", "/", bearer("lk_wrong", "203.0.113.50")); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong token %d: %d", i, r.StatusCode)
			}
		}
		if r := script.Forward("app.localhost", "/", bearer(tok.Token, "203.0.113.50")); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("right token from a locked-out address: %d, want 401", r.StatusCode)
		}
		if r := script.Forward("app.localhost", "/", bearer(tok.Token, "203.0.113.51")); r.StatusCode != http.StatusOK {
			t.Fatalf("right token from another address: %d", r.StatusCode)
		}
		env.Clock.Advance(5 * time.Second)
		if r := script.Forward("app.localhost", "/", bearer(tok.Token, "203.0.113.50")); r.StatusCode != http.StatusOK {
			t.Fatalf("right token after the backoff: %d", r.StatusCode)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for name, body := range map[string]map[string]any{
			"no hosts":        {"name": "x", "hosts": []string{}},
			"wildcard host":   {"name": "x", "hosts": []string{"*.localhost"}},
			"host with path":  {"name": "x", "hosts": []string{"app.localhost/x"}},
			"no name":         {"hosts": []string{"app.localhost"}},
			"escape in name":  {"name": "ci\x1b[2J", "hosts": []string{"app.localhost"}},
			"negative expiry": {"name": "x", "hosts": []string{"app.localhost"}, "expires_in": "-1h"},
			"endless expiry":  {"name": "x", "hosts": []string{"app.localhost"}, "expires_in": "100000h"},
		} {
			if r := alice.PostJSON("/.latchkey/api/tokens", body); r.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %s", name, r.StatusCode, r.Body)
			}
		}
		if r := env.Client().PostJSON("/.latchkey/api/tokens", map[string]any{"name": "x", "hosts": []string{"app.localhost"}}); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("signed out: %d", r.StatusCode)
		}
	})

	t.Run("never logged or stored in plaintext", func(t *testing.T) {
		logs, tables := env.Logs.String(), env.Tables()
		var audit strings.Builder
		rows, err := env.Store.DB().Query("SELECT detail FROM audit")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var d string
			rows.Scan(&d)
			audit.WriteString(d)
		}
		rows.Close()
		for _, s := range seen {
			secret := strings.TrimPrefix(s, "lk_")
			if strings.Contains(logs, secret) || strings.Contains(tables, secret) || strings.Contains(audit.String(), secret) {
				t.Fatalf("token %s… found in logs, tables or audit", s[:6])
			}
		}
	})
}

// BenchmarkForwardAuthToken measures a forward-auth check answered by an API token (the hot path:
// header, SHA-256, one map read, host check), next to the same check with a session cookie.
func BenchmarkForwardAuthToken(b *testing.B) {
	env := lktest.New(b, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	_, enrol := env.AddUser("alice")
	alice := env.Client()
	alice.Enrol(lktest.NewPasskey(), enrol)
	r := alice.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "bench", "hosts": []string{"app.localhost"}})
	var tok createdToken
	if r.JSON(&tok) != nil || tok.Token == "" {
		b.Fatalf("token: %d %s", r.StatusCode, r.Body)
	}
	for name, hdr := range map[string][2]string{
		"token":  {"Authorization", "Bearer " + tok.Token},
		"cookie": {"Cookie", "latchkey_session=" + alice.Session()},
	} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/.latchkey/auth/forward", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Header.Set("X-Forwarded-Host", "app.localhost")
			req.Header.Set("X-Forwarded-Uri", "/")
			req.Header.Set("X-Forwarded-Proto", "http")
			req.Header.Set(hdr[0], hdr[1])
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				env.Handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
