package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

var debugRules = []proxy.RuleConfig{
	{Hosts: []string{"app.localhost"}, Policy: "passkey"},
	{Hosts: []string{"public.localhost"}, Policy: "bypass"},
}

func debugJSON(t *testing.T, c *lktest.Client, hdr http.Header) (proxy.DebugReport, *lktest.Response) {
	t.Helper()
	h := http.Header{"Accept": {"application/json"}}
	for k, v := range hdr {
		h[k] = v
	}
	r := c.Do(http.MethodGet, "", "/.latchkey/debug/request", nil, h)
	var rep proxy.DebugReport
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("debug answer status %d, want 403 always", r.StatusCode)
	}
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatalf("debug answer is not JSON: %v\n%s", err, r.Body)
	}
	return rep, r
}

func header(rep proxy.DebugReport, name string) proxy.DebugHeader {
	for _, h := range rep.Headers {
		if h.Name == name {
			return h
		}
	}
	return proxy.DebugHeader{}
}

func TestDebugRequestFromTrustedProxy(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: debugRules})
	_, enrol := env.AddUser("alice", "staff")
	alice := env.Client()
	alice.Enrol(lktest.NewPasskey(), enrol)
	_, enrolR := env.AddUser("root", "admins")
	root := env.Client()
	root.Enrol(lktest.NewPasskey(), enrolR)
	cookie := root.Session()
	r := alice.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci", "hosts": []string{"app.localhost"}})
	var tok struct{ Token string }
	if r.StatusCode != http.StatusCreated || r.JSON(&tok) != nil {
		t.Fatalf("token: %d %s", r.StatusCode, r.Body)
	}

	forward := func(host string, extra ...string) http.Header {
		h := http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {host},
			"X-Forwarded-Uri": {"/dash?x=1"}, "X-Forwarded-For": {"198.51.100.7"}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Add(extra[i], extra[i+1])
		}
		return h
	}

	t.Run("signed-in browser navigation, forward style", func(t *testing.T) {
		rep, raw := debugJSON(t, root, forward("app.localhost", "X-Real-IP", "192.168.1.1"))
		if !rep.PeerTrusted || rep.Style != "forward" || rep.Target == nil || rep.Target.OriginalURL != "http://app.localhost/dash?x=1" ||
			rep.Target.Client != "198.51.100.7" || rep.Target.Path != "/dash" {
			t.Fatalf("report = %+v", rep)
		}
		if !rep.Cookie.Present || !rep.Cookie.Valid || rep.Cookie.User != "root" {
			t.Fatalf("cookie = %+v", rep.Cookie)
		}
		if rep.Rule == nil || rep.Rule.Index != 0 || rep.Rule.Policy != "passkey" || rep.Decision != "allowed" || !strings.HasPrefix(rep.ForwardAnswer, "200") {
			t.Fatalf("rule %+v decision %q answer %q", rep.Rule, rep.Decision, rep.ForwardAnswer)
		}
		if h := header(rep, "X-Forwarded-Host"); !h.Honoured || h.Value != "app.localhost" {
			t.Fatalf("X-Forwarded-Host = %+v", h)
		}
		if h := header(rep, "X-Real-Ip"); !h.Present || h.Honoured {
			t.Fatalf("X-Real-IP = %+v", h)
		}
		if strings.Contains(string(raw.Body), cookie) {
			t.Fatal("the session cookie is echoed")
		}
	})

	t.Run("text form for people", func(t *testing.T) {
		r := root.Do(http.MethodGet, "", "/.latchkey/debug/request", nil, forward("app.localhost"))
		body := string(r.Body)
		if r.StatusCode != http.StatusForbidden || !strings.Contains(body, "Original URL: http://app.localhost/dash?x=1") ||
			!strings.Contains(body, "Rule: access_control.rules[0], policy passkey") || !strings.Contains(body, "Decision: allowed") ||
			strings.Contains(body, cookie) {
			t.Fatalf("text report: %d\n%s", r.StatusCode, body)
		}
		if r.Header.Get("Remote-User") != "" {
			t.Fatal("the debugger set Remote-User")
		}
	})

	// Issue 16: through a portal proxy every client arrives from the trusted address, so the
	// trusted peer alone opens nothing: no session, a non-admin session and an API token alone
	// are all refused; only an admin's session cookie opens the report.
	for name, c := range map[string]*lktest.Client{"no session": env.Client(), "non-admin session": alice} {
		t.Run("trusted peer, "+name+", refused", func(t *testing.T) {
			r := c.Do(http.MethodGet, "", "/.latchkey/debug/request", nil, forward("app.localhost", "Accept", "application/json"))
			if r.StatusCode != http.StatusForbidden || r.Header.Get("Content-Type") == "application/json" ||
				strings.Contains(string(r.Body), "X-Forwarded-Host") || strings.Contains(string(r.Body), "peer_trusted") {
				t.Fatalf("%d %s\n%s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
		})
	}
	t.Run("trusted peer, API token only, refused", func(t *testing.T) {
		r := env.Client().Do(http.MethodGet, "", "/.latchkey/debug/request", nil,
			forward("app.localhost", "Accept", "application/json", "Authorization", "Bearer "+tok.Token))
		if r.StatusCode != http.StatusForbidden || r.Header.Get("Content-Type") == "application/json" {
			t.Fatalf("%d %s\n%s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
		}
	})

	t.Run("API token, never echoed", func(t *testing.T) {
		rep, raw := debugJSON(t, root, forward("app.localhost", "Authorization", "Bearer "+tok.Token))
		if !rep.Token.Present || !rep.Token.Valid || rep.Token.User != "alice" || rep.Decision != "allowed" {
			t.Fatalf("token report = %+v, decision %s", rep.Token, rep.Decision)
		}
		if strings.Contains(string(raw.Body), tok.Token) || strings.Contains(string(raw.Body), tok.Token[3:]) {
			t.Fatal("the token is echoed")
		}
	})

	t.Run("nginx style, no rule matches", func(t *testing.T) {
		rep, _ := debugJSON(t, root, http.Header{"X-Original-URL": {"https://other.localhost/x"}, "X-Original-Method": {"GET"}})
		if rep.Style != "request" || rep.Rule == nil || rep.Rule.Index != -1 || rep.Decision != "forbidden" || rep.RequestAnswer != "403" {
			t.Fatalf("report = %+v rule %+v", rep, rep.Rule)
		}
		if h := header(rep, "X-Original-Url"); !h.Honoured {
			t.Fatalf("X-Original-URL = %+v", h)
		}
	})

	t.Run("no forwarded headers at all", func(t *testing.T) {
		rep, _ := debugJSON(t, root, nil)
		if rep.Style != "none" || rep.Decision != "bad_request" || rep.TargetError == "" {
			t.Fatalf("report = %+v", rep)
		}
	})

	t.Run("repeated host header", func(t *testing.T) {
		rep, _ := debugJSON(t, root, forward("app.localhost", "X-Forwarded-Host", "evil.localhost"))
		if rep.Decision != "bad_request" || !strings.Contains(header(rep, "X-Forwarded-Host").Note, "more than once") ||
			!strings.Contains(rep.TargetError, "two X-Forwarded-Host headers") {
			t.Fatalf("report = %+v", rep)
		}
	})
}

func TestDebugRequestAccess(t *testing.T) {
	// The test client connects from loopback, which this Env does not trust.
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: debugRules, TrustedProxies: []string{"192.0.2.1/32"}})
	_, enrolA := env.AddUser("alice", "staff")
	alice := env.Client()
	alice.Enrol(lktest.NewPasskey(), enrolA)
	_, enrolR := env.AddUser("root", "admins")
	root := env.Client()
	root.Enrol(lktest.NewPasskey(), enrolR)
	hdr := http.Header{"X-Forwarded-Host": {"app.localhost"}, "X-Forwarded-Uri": {"/"}, "Accept": {"application/json"}}

	for name, c := range map[string]*lktest.Client{"signed out": env.Client(), "non-admin": alice} {
		t.Run(name+" from an untrusted peer", func(t *testing.T) {
			r := c.Do(http.MethodGet, "", "/.latchkey/debug/request", nil, hdr)
			if r.StatusCode != http.StatusForbidden || strings.Contains(string(r.Body), "X-Forwarded-Host") || r.Header.Get("Content-Type") == "application/json" {
				t.Fatalf("%d %s\n%s", r.StatusCode, r.Header.Get("Content-Type"), r.Body)
			}
		})
	}
	t.Run("admin from an untrusted peer", func(t *testing.T) {
		rep, _ := debugJSON(t, root, hdr)
		if rep.PeerTrusted || rep.Decision != "forbidden" || header(rep, "X-Forwarded-Host").Honoured || len(rep.Hints) == 0 {
			t.Fatalf("report = %+v", rep)
		}
	})
}
