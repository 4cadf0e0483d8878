package auth_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// TestStaleViewFailsClosed is issue 17's bounded staleness: with the store unreachable, forward
// auth keeps answering from memory for at most max_staleness, then refuses every session and token
// with 503 and Retry-After (a page for browsers, JSON otherwise, in forward-auth and reverse-proxy
// mode); a request without credentials is still a plain 401; liveness stays 200, readiness 503.
func TestStaleViewFailsClosed(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", MaxStaleness: 1500 * time.Millisecond,
		Routes: map[string]string{"routed.localhost": upstream.URL},
		Rules:  []proxy.RuleConfig{{Hosts: []string{"app.localhost", "routed.localhost"}, Policy: "passkey"}, {Hosts: []string{"open.localhost"}, Policy: "bypass"}}})
	alice := enrolled(t, env, "alice", lktest.NewPasskey())
	tok := newToken(t, alice, map[string]any{"name": "ci", "hosts": []string{"app.localhost"}})
	script := env.Client()
	if r := alice.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: %d", r.StatusCode)
	}
	if r := alice.Get("/.latchkey/readyz"); r.StatusCode != http.StatusOK {
		t.Fatalf("readyz before the outage: %d %s", r.StatusCode, r.Body)
	}

	if err := env.Store.Close(); err != nil { // both pools: every store call now fails
		t.Fatal(err)
	}
	start := time.Now()
	for {
		r := alice.Forward("app.localhost", "/", nil)
		if r.StatusCode == http.StatusServiceUnavailable {
			t.Logf("fail closed %s after the store went away", time.Since(start).Round(time.Millisecond))
			break
		}
		if r.StatusCode != http.StatusOK {
			t.Fatalf("while the view is fresh: %d %s", r.StatusCode, r.Body)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the view never went stale with the store closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := alice.Forward("app.localhost", "/", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
		!strings.Contains(r.Header.Get("Content-Type"), "application/json") || r.Header.Get("Remote-User") != "" {
		t.Fatalf("API client, stale: %d %v %s", r.StatusCode, r.Header, r.Body)
	}
	r = alice.Forward("app.localhost", "/", http.Header{"Accept": {"text/html"}})
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
		!strings.Contains(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.Body), "database") {
		t.Fatalf("browser, stale: %d %v %s", r.StatusCode, r.Header, r.Body)
	}
	if r := script.Forward("app.localhost", "/", bearer(tok.Token, "198.51.100.1")); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("token, stale: %d", r.StatusCode)
	}
	if r := alice.Do(http.MethodGet, "routed.localhost", "/", nil, http.Header{"Accept": {"text/html"}}); r.StatusCode != http.StatusServiceUnavailable ||
		r.Header.Get("Retry-After") == "" {
		t.Fatalf("reverse proxy, stale: %d %v", r.StatusCode, r.Header)
	}
	if r := script.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials, stale: %d", r.StatusCode)
	}
	if r := alice.Forward("open.localhost", "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("bypass rule, stale: %d", r.StatusCode)
	}
	if r := alice.Get("/.latchkey/healthz"); r.StatusCode != http.StatusOK {
		t.Fatalf("healthz, stale: %d", r.StatusCode)
	}
	if r := alice.Get("/.latchkey/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz, stale: %d", r.StatusCode)
	}
	if n := strings.Count(env.Logs.String(), "session view is stale"); n != 1 {
		t.Fatalf("going stale was logged %d times, want once:\n%s", n, env.Logs.String())
	}
}

// TestReadyzNeedsAWritableStore: a write lock held elsewhere (another process mid-transaction, a
// full or locked file) makes readiness 503 within the store timeout while checks still pass.
func TestReadyzNeedsAWritableStore(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", StoreTimeout: 300 * time.Millisecond,
		Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	alice := enrolled(t, env, "alice", lktest.NewPasskey())
	other, err := sql.Open("sqlite", "file:"+env.DBPath+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if r := alice.Get("/.latchkey/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the write lock held elsewhere: %d %s", r.StatusCode, r.Body)
	}
	if r := alice.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("forward auth with the write lock held elsewhere: %d", r.StatusCode)
	}
	if r := alice.Get("/.latchkey/healthz"); r.StatusCode != http.StatusOK {
		t.Fatalf("healthz with the write lock held elsewhere: %d", r.StatusCode)
	}
	conn.ExecContext(context.Background(), "ROLLBACK")
	if r := alice.Get("/.latchkey/readyz"); r.StatusCode != http.StatusOK {
		t.Fatalf("readyz after the lock was released: %d %s", r.StatusCode, r.Body)
	}
}

// TestRunFlushesBeforeItReturns: the last-seen times gathered in memory are written by the time
// Run returns, so that serve can close the store after it (issue 17: the flush at shutdown ran
// after the store was closed and was lost).
func TestRunFlushesBeforeItReturns(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}})
	alice := enrolled(t, env, "alice", lktest.NewPasskey())
	env.Clock.Advance(10 * time.Minute)
	if r := alice.Forward("app.localhost", "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("forward: %d", r.StatusCode)
	}
	env.Stop()
	var seen int64
	if err := env.Store.DB().QueryRow("SELECT MAX(last_seen_at) FROM sessions").Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if want := env.Clock.Now().UnixMilli(); seen != want {
		t.Fatalf("last_seen_at after Run returned = %d, want %d (the final flush)", seen, want)
	}
}
