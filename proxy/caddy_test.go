package proxy_test

import (
	"strconv"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestCaddy runs the deploy/caddy Caddyfile in a real Caddy in front of a real upstream, with
// Latchkey's /.latchkey/auth/forward behind forward_auth.
func TestCaddy(t *testing.T) {
	lktest.NeedBinary(t, "caddy", "caddy")
	port := lktest.FreePort(t)
	echo := lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: suiteRules("app.example.com:" + strconv.Itoa(port))})
	p := lktest.StartCaddy(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: echo.Addr()})
	proxySuite(t, env, echo, p)
}
