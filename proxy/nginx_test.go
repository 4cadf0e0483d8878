package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestNginx runs the deploy/nginx server block and snippets in a real nginx in front of a real
// upstream, with Latchkey's /.latchkey/auth/request behind auth_request.
func TestNginx(t *testing.T) {
	lktest.NeedBinary(t, "nginx", "nginx")
	port := lktest.FreePort(t)
	echo := lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: suiteRules("app.example.com:" + strconv.Itoa(port))})
	p := lktest.StartNginx(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: echo.Addr()})
	proxySuite(t, env, echo, p)
}

// TestNginxUnavailableIs503: auth_request turns any answer but 2xx, 401 and 403 into nginx's own
// 500. With the shipped snippets, Latchkey failing closed (its view past max_staleness while the
// database is away: 503) reaches the client as 503 with Latchkey's Retry-After, and Latchkey not
// answering at all as 503 with a default Retry-After; the application sees nothing, and its own
// 500s still pass as they are.
func TestNginxUnavailableIs503(t *testing.T) {
	lktest.NeedBinary(t, "nginx", "nginx")
	port := lktest.FreePort(t)
	app := "app.example.com:" + strconv.Itoa(port)
	var seen atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if r.URL.Path == "/boom" {
			http.Error(w, "the application's own failure", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(upstream.Close)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", MaxStaleness: 1500 * time.Millisecond, Rules: suiteRules(app)})
	p := lktest.StartNginx(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: upstream.Listener.Addr().String()})
	cookie, _ := signIn(t, env, "alice")
	c := p.Client()
	c.Cookies = cookie
	if r := c.Get(t, app, "/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("before the outage: %d", r.StatusCode)
	}
	if r := c.Get(t, app, "/boom", nil); r.StatusCode != http.StatusInternalServerError || !strings.Contains(string(r.Body), "the application's own failure") {
		t.Fatalf("the application's own 500: %d %s", r.StatusCode, r.Body)
	}

	if err := env.Store.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var r *lktest.Response
	for {
		r = c.Get(t, app, "/", nil)
		if r.StatusCode != http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.Header.Get("Retry-After") == "5" {
		t.Fatalf("Latchkey failing closed through nginx: %d, Retry-After %q (want Latchkey's own)\n%s", r.StatusCode, r.Header.Get("Retry-After"), r.Body)
	}
	before := seen.Load()
	for i := 0; i < 3; i++ {
		if r := c.Get(t, app, "/", nil); r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("during the outage: %d", r.StatusCode)
		}
	}
	if n := seen.Load() - before; n != 0 {
		t.Errorf("the application saw %d requests during the outage", n)
	}

	env.Server.Close() // Latchkey gone: nginx gets no answer at all
	r = c.Get(t, app, "/", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "5" {
		t.Fatalf("Latchkey unreachable through nginx: %d, Retry-After %q\n%s", r.StatusCode, r.Header.Get("Retry-After"), r.Body)
	}
	if n := seen.Load() - before; n != 0 {
		t.Errorf("the application saw %d requests with Latchkey down", n)
	}
}
