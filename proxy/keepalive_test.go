package proxy_test

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// connCounter is a TCP relay in front of Latchkey that counts the connections a proxy opens.
type connCounter struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func countConns(t *testing.T, target string) *connCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &connCounter{ln: ln}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.wg.Add(2)
			go func() { defer c.wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer c.wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

// TestProxiesKeepConnectionsToLatchkey: with the shipped files, nginx and Caddy reuse their
// connections to Latchkey across checks (issue 19: a new TCP connection per auth_request cost
// more than the check). 40 sequential checks must not open more than a handful of connections.
func TestProxiesKeepConnectionsToLatchkey(t *testing.T) {
	for _, proxyName := range []string{"nginx", "caddy"} {
		t.Run(proxyName, func(t *testing.T) {
			lktest.NeedBinary(t, proxyName, proxyName)
			port := lktest.FreePort(t)
			echo := lktest.NewEcho(t)
			env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: suiteRules("app.example.com:" + strconv.Itoa(port))})
			counter := countConns(t, env.Server.Listener.Addr().String())
			cfg := lktest.ProxyConfig{Port: port, Latchkey: counter.ln.Addr().String(), App: echo.Addr()}
			var p *lktest.Proc
			if proxyName == "nginx" {
				p = lktest.StartNginx(t, cfg)
			} else {
				p = lktest.StartCaddy(t, cfg)
			}
			cookie, _ := signIn(t, env, "alice", "staff")
			c := p.Client()
			c.Cookies = cookie
			const checks = 40
			for i := range checks {
				r := c.Get(t, "app.example.com:"+strconv.Itoa(port), "/dash?i="+strconv.Itoa(i), nil)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("check %d through %s: %d\n%s", i, proxyName, r.StatusCode, p.Logs())
				}
			}
			if n := counter.accepted.Load(); n > 4 {
				t.Fatalf("%s opened %d connections to Latchkey for %d checks; the shipped files must keep them alive", proxyName, n, checks)
			} else {
				t.Logf("%s: %d connection(s) to Latchkey for %d checks", proxyName, n, checks)
			}
		})
	}
}
