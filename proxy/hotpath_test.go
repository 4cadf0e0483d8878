package proxy_test

import (
	"net/http"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// TestHotPathReadsNoDatabase closes the database under a running server: a forward-auth check
// with a valid cookie must still be answered, because it is decided from the cookie and the
// in-memory view alone. Any query would now fail, and a failure denies.
func TestHotPathReadsNoDatabase(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny",
		Rules: []proxy.RuleConfig{{Hosts: []string{"app.example.com"}, Policy: "passkey"}}})
	_, token := env.AddUser("alice")
	c := env.Client()
	c.Enrol(lktest.NewPasskey(), token)
	anon := env.Client()
	// Warm up: the first sight of a cookie pays for its verification.
	if r := c.Forward("app.example.com", "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("before closing the database: %d", r.StatusCode)
	}
	if err := env.Store.DB().Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if r := c.Forward("app.example.com", "/d/1?x=2", nil); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
			t.Fatalf("check %d with the database closed: %d %v", i, r.StatusCode, r.Header)
		}
		// A request without a session is answered from memory too, and creates no state.
		if r := anon.Forward("app.example.com", "/", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous check %d with the database closed: %d", i, r.StatusCode)
		}
	}
	// Control: something that does need the store now fails, so the database really is gone;
	// liveness asks nothing of the store and stays 200.
	if r := c.Get("/.latchkey/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database closed: %d", r.StatusCode)
	}
	if r := c.Get("/.latchkey/healthz"); r.StatusCode != http.StatusOK {
		t.Fatalf("healthz with the database closed: %d", r.StatusCode)
	}
}
