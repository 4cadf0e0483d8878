package proxy_test

import (
	"strconv"
	"testing"

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
