package proxy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// hostileRules is the HOSTILE.md test topology: grafana → passkey, admin → group admins,
// public.example.com ^/public/ → bypass, default deny.
func hostileRules(t testing.TB) *Rules {
	t.Helper()
	rs, err := CompileRules([]RuleConfig{
		{Hosts: []string{"grafana.example.com"}, Policy: "passkey"},
		{Hosts: []string{"admin.example.com"}, Groups: []string{"admins"}, Policy: "passkey"},
		{Hosts: []string{"public.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
	}, "deny")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{PolicyDeny, PolicyBypass, PolicyPasskey} {
		t.Run(p.String(), func(t *testing.T) {
			got, err := ParsePolicy(p.String())
			if err != nil || got != p {
				t.Fatalf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
			}
		})
	}
	for _, s := range []string{"", "allow", "Deny", "PASSKEY", " bypass", "one_factor"} {
		t.Run("bad "+s, func(t *testing.T) {
			got, err := ParsePolicy(s)
			if err == nil {
				t.Fatalf("ParsePolicy(%q) accepted", s)
			}
			if got != PolicyDeny {
				t.Fatalf("ParsePolicy(%q) = %v on error, want deny", s, got)
			}
		})
	}
	if got := Policy(9).String(); got != "Policy(9)" {
		t.Errorf("Policy(9).String() = %q", got)
	}
}

func TestRulesMatch(t *testing.T) {
	rs, err := CompileRules([]RuleConfig{
		0: {Hosts: []string{"public.example.com"}, Paths: []string{"^/public/", `^/health$`}, Policy: "bypass"},
		1: {Hosts: []string{"public.example.com"}, Policy: "passkey"},
		2: {Hosts: []string{"*.apps.example.com"}, Methods: []string{"get", "HEAD"}, Policy: "bypass"},
		3: {Hosts: []string{"*.apps.example.com"}, Policy: "passkey"},
		4: {Hosts: []string{"lan.example.com"}, Networks: []string{"192.168.0.0/16", "10.1.2.3", "fd00::/8"}, Policy: "bypass"},
		5: {Hosts: []string{"lan.example.com"}, Policy: "deny"},
		6: {Hosts: []string{"GRAFANA.example.com.:443", "grafana.example.com:8443"}, Policy: "passkey"},
		7: {Paths: []string{"/api/"}, Methods: []string{"DELETE"}, Policy: "deny"},
		8: {Hosts: []string{"*.example.org:8443"}, Policy: "passkey"},
	}, "bypass")
	if err != nil {
		t.Fatal(err)
	}
	lan := netip.MustParseAddr("192.168.1.10")
	tests := []struct {
		name   string
		req    Request
		index  int
		policy Policy
	}{
		{"bypass path", Request{Method: "GET", Host: "public.example.com", Path: "/public/x"}, 0, PolicyBypass},
		{"second path of rule", Request{Method: "GET", Host: "public.example.com", Path: "/health"}, 0, PolicyBypass},
		{"anchored path miss falls through", Request{Method: "GET", Host: "public.example.com", Path: "/healthz"}, 1, PolicyPasskey},
		{"first match wins", Request{Method: "GET", Host: "public.example.com", Path: "/admin"}, 1, PolicyPasskey},
		{"path is search not prefix", Request{Method: "GET", Host: "public.example.com", Path: "/x/public/"}, 1, PolicyPasskey},
		{"wildcard subdomain", Request{Method: "GET", Host: "a.apps.example.com", Path: "/"}, 2, PolicyBypass},
		{"wildcard deeper subdomain", Request{Method: "HEAD", Host: "b.a.apps.example.com", Path: "/"}, 2, PolicyBypass},
		{"wildcard never apex", Request{Method: "GET", Host: "apps.example.com", Path: "/"}, -1, PolicyBypass},
		{"wildcard dot boundary", Request{Method: "GET", Host: "evilapps.example.com", Path: "/"}, -1, PolicyBypass},
		{"wildcard without port, any port", Request{Method: "GET", Host: "a.apps.example.com:8443", Path: "/"}, 2, PolicyBypass},
		{"method lower case folds", Request{Method: "get", Host: "a.apps.example.com", Path: "/"}, 2, PolicyBypass},
		{"method miss falls through", Request{Method: "POST", Host: "a.apps.example.com", Path: "/"}, 3, PolicyPasskey},
		{"network match", Request{Method: "GET", Host: "lan.example.com", Path: "/", Client: lan, ClientOK: true}, 4, PolicyBypass},
		{"network bare address", Request{Method: "GET", Host: "lan.example.com", Path: "/", Client: netip.MustParseAddr("10.1.2.3"), ClientOK: true}, 4, PolicyBypass},
		{"network mapped address", Request{Method: "GET", Host: "lan.example.com", Path: "/", Client: netip.MustParseAddr("::ffff:192.168.1.10"), ClientOK: true}, 4, PolicyBypass},
		{"network ipv6", Request{Method: "GET", Host: "lan.example.com", Path: "/", Client: netip.MustParseAddr("fd12::1"), ClientOK: true}, 4, PolicyBypass},
		{"network miss", Request{Method: "GET", Host: "lan.example.com", Path: "/", Client: netip.MustParseAddr("203.0.113.9"), ClientOK: true}, 5, PolicyDeny},
		{"network no client", Request{Method: "GET", Host: "lan.example.com", Path: "/", Client: lan, ClientOK: false}, 5, PolicyDeny},
		{"network invalid client", Request{Method: "GET", Host: "lan.example.com", Path: "/", ClientOK: true}, 5, PolicyDeny},
		{"exact host canonicalised", Request{Method: "GET", Scheme: "https", Host: "grafana.example.com", Path: "/"}, 6, PolicyPasskey},
		{"rule port 443 is not plain http", Request{Method: "GET", Scheme: "http", Host: "grafana.example.com", Path: "/"}, -1, PolicyBypass},
		{"rule port 443 and an unknown scheme", Request{Method: "GET", Host: "grafana.example.com", Path: "/"}, -1, PolicyBypass},
		{"rule port 443 and explicit port", Request{Method: "GET", Scheme: "http", Host: "grafana.example.com:443", Path: "/"}, 6, PolicyPasskey},
		{"exact host with port", Request{Method: "GET", Host: "grafana.example.com:8443", Path: "/"}, 6, PolicyPasskey},
		{"exact host other port", Request{Method: "DELETE", Host: "grafana.example.com:9000", Path: "/api/x"}, 7, PolicyDeny},
		{"any host rule", Request{Method: "DELETE", Host: "other.example.net", Path: "/api/v1"}, 7, PolicyDeny},
		{"wildcard with port", Request{Method: "GET", Host: "x.example.org:8443", Path: "/"}, 8, PolicyPasskey},
		{"wildcard with port needs port", Request{Method: "GET", Scheme: "https", Host: "x.example.org", Path: "/"}, -1, PolicyBypass},
		{"default policy", Request{Method: "GET", Host: "nothing.example.net", Path: "/"}, -1, PolicyBypass},
		{"ip literal host", Request{Method: "GET", Host: "[::1]:8443", Path: "/"}, -1, PolicyBypass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rs.Match(&tt.req)
			if r == nil {
				t.Fatal("Match returned nil")
			}
			if r.Index != tt.index || r.Policy != tt.policy {
				t.Fatalf("Match(%+v) = rule %d %v, want %d %v", tt.req, r.Index, r.Policy, tt.index, tt.policy)
			}
		})
	}
}

// TestCompileRulesHostHints: an internationalised name must be written as browsers send it
// (punycode), and the error says so.
func TestCompileRulesHostHints(t *testing.T) {
	_, err := CompileRules([]RuleConfig{{Hosts: []string{"bücher.example.com", "*.bücher.example.com", "https://x.example.com/"}, Policy: "deny"}}, "")
	if err == nil || strings.Count(err.Error(), "xn--") != 2 || !strings.Contains(err.Error(), "not a URL") {
		t.Fatalf("err = %v", err)
	}
	if _, err := CompileRules([]RuleConfig{{Hosts: []string{"xn--bcher-kva.example.com", "*.XN--bcher-kva.example.com:8443"}, Policy: "deny"}}, ""); err != nil {
		t.Fatal(err)
	}
}

func TestRulesMatchDefaults(t *testing.T) {
	t.Run("nil rules deny", func(t *testing.T) {
		var rs *Rules
		if r := rs.Match(&Request{Host: "x"}); r == nil || r.Policy != PolicyDeny || r.Index != -1 {
			t.Fatalf("nil Rules matched %+v", r)
		}
	})
	t.Run("empty default policy is deny", func(t *testing.T) {
		rs, err := CompileRules(nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if r := rs.Match(&Request{Host: "x"}); r.Policy != PolicyDeny || r.Index != -1 {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("default passkey", func(t *testing.T) {
		rs, err := CompileRules(nil, "passkey")
		if err != nil {
			t.Fatal(err)
		}
		if r := rs.Match(&Request{Host: "x"}); r.Policy != PolicyPasskey || !r.Allows("anyone", nil) {
			t.Fatalf("got %+v", r)
		}
	})
}

func TestRuleAllows(t *testing.T) {
	rs, err := CompileRules([]RuleConfig{
		{Hosts: []string{"open.example.com"}, Policy: "passkey"},
		{Hosts: []string{"admin.example.com"}, Groups: []string{"admins", "ops"}, Policy: "passkey"},
		{Hosts: []string{"alice.example.com"}, Users: []string{"alice"}, Policy: "passkey"},
		{Hosts: []string{"both.example.com"}, Users: []string{"alice"}, Groups: []string{"admins"}, Policy: "passkey"},
	}, "deny")
	if err != nil {
		t.Fatal(err)
	}
	rule := func(host string) *Rule { return rs.Match(&Request{Host: host, Path: "/"}) }
	tests := []struct {
		name, host, user string
		groups           []string
		want             bool
	}{
		{"no requirement", "open.example.com", "bob", nil, true},
		{"group member", "admin.example.com", "bob", []string{"users", "admins"}, true},
		{"other group of any-of", "admin.example.com", "bob", []string{"ops"}, true},
		{"not a member", "admin.example.com", "bob", []string{"users"}, false},
		{"no groups", "admin.example.com", "bob", nil, false},
		{"group case matters", "admin.example.com", "bob", []string{"Admins"}, false},
		{"user named as group", "admin.example.com", "admins", nil, false},
		{"listed user", "alice.example.com", "alice", nil, true},
		{"other user", "alice.example.com", "bob", []string{"alice"}, false},
		{"user case matters", "alice.example.com", "Alice", nil, false},
		{"empty user", "alice.example.com", "", nil, false},
		{"users or groups: user", "both.example.com", "alice", nil, true},
		{"users or groups: group", "both.example.com", "bob", []string{"admins"}, true},
		{"users or groups: neither", "both.example.com", "bob", []string{"users"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rule(tt.host).Allows(tt.user, tt.groups); got != tt.want {
				t.Fatalf("Allows(%q, %q) on %s = %v, want %v", tt.user, tt.groups, tt.host, got, tt.want)
			}
		})
	}
}

func TestCompileRulesFields(t *testing.T) {
	rs, err := CompileRules([]RuleConfig{{
		Hosts:          []string{"grafana.example.com"},
		Policy:         "passkey",
		MaxAge:         10 * time.Minute,
		DeviceBound:    true,
		Authenticators: []string{"EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4"},
	}}, "deny")
	if err != nil {
		t.Fatal(err)
	}
	r := rs.Match(&Request{Host: "grafana.example.com", Path: "/"})
	if r.Index != 0 || r.MaxAge != 10*time.Minute || !r.DeviceBound ||
		!reflect.DeepEqual(r.Authenticators, []string{"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"}) {
		t.Fatalf("compiled rule = %+v", r)
	}
}

func TestCompileRulesErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []RuleConfig
		def   string
		want  []string // each must appear in the error
	}{
		{"bad regexp", []RuleConfig{{Policy: "deny"}, {Policy: "deny"}, {Paths: []string{"^/ok", "("}, Policy: "deny"}},
			"deny", []string{"access_control.rules[2].paths[1]: error parsing regexp: "}},
		{"bad network", []RuleConfig{{Networks: []string{"10.0.0.0/8", "x"}, Policy: "bypass"}},
			"deny", []string{`access_control.rules[0].networks[1]: invalid CIDR "x"`}},
		{"bad network mask", []RuleConfig{{Networks: []string{"10.0.0.0/33"}, Policy: "bypass"}},
			"deny", []string{`access_control.rules[0].networks[0]: invalid CIDR "10.0.0.0/33"`}},
		{"unknown policy", []RuleConfig{{Policy: "deny"}, {Policy: "allow"}},
			"deny", []string{`access_control.rules[1].policy: unknown policy "allow" (deny | passkey | bypass)`}},
		{"missing policy", []RuleConfig{{Hosts: []string{"a.example.com"}}},
			"deny", []string{`access_control.rules[0].policy: unknown policy ""`}},
		{"bad default", nil, "allow", []string{`access_control.default_policy: unknown policy "allow"`}},
		{"bad host", []RuleConfig{{Hosts: []string{"ok.example.com", "user@evil.com"}, Policy: "deny"}},
			"deny", []string{`access_control.rules[0].hosts[1]: invalid host "user@evil.com"`}},
		{"bad wildcard", []RuleConfig{{Hosts: []string{"*", "*.", "*.*.example.com", "foo.*.example.com"}, Policy: "deny"}},
			"deny", []string{"rules[0].hosts[0]:", "rules[0].hosts[1]:", "rules[0].hosts[2]:", "rules[0].hosts[3]:"}},
		{"wildcard on ip", []RuleConfig{{Hosts: []string{"*.::1"}, Policy: "deny"}},
			"deny", []string{"rules[0].hosts[0]: invalid host pattern"}},
		{"bad method", []RuleConfig{{Methods: []string{"GET", "", "GE T"}, Policy: "deny"}},
			"deny", []string{"rules[0].methods[1]:", "rules[0].methods[2]:"}},
		{"empty subject", []RuleConfig{{Groups: []string{""}, Users: []string{""}, Policy: "passkey"}},
			"deny", []string{"rules[0].groups[0]:", "rules[0].users[0]:"}},
		{"negative max age", []RuleConfig{{MaxAge: -time.Second, Policy: "passkey"}},
			"deny", []string{"rules[0].max_age:"}},
		{"bad aaguid", []RuleConfig{{Authenticators: []string{"not-a-uuid"}, Policy: "passkey"}},
			"deny", []string{`rules[0].authenticators[0]: invalid AAGUID "not-a-uuid"`}},
		{"bypass with groups", []RuleConfig{{Groups: []string{"admins"}, Policy: "bypass"}},
			"deny", []string{"rules[0].policy: bypass cannot be combined"}},
		{"all problems at once", []RuleConfig{{Paths: []string{"["}, Policy: "nope"}, {Networks: []string{"1.2.3"}, Policy: "deny"}},
			"maybe", []string{"rules[0].paths[0]:", "rules[0].policy:", "rules[1].networks[0]:", "default_policy:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := CompileRules(tt.rules, tt.def)
			if err == nil {
				t.Fatal("CompileRules accepted bad config")
			}
			if rs != nil {
				t.Fatal("CompileRules returned rules with an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRulesHosts(t *testing.T) {
	rs, err := CompileRules([]RuleConfig{
		{Hosts: []string{"Grafana.example.com.", "*.apps.example.com"}, Policy: "passkey"},
		{Hosts: []string{"grafana.example.com:443", "x.example.com:8443", "*.Example.org:8443"}, Policy: "deny"},
		{Paths: []string{"^/"}, Policy: "deny"},
	}, "deny")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"grafana.example.com", "*.apps.example.com", "x.example.com:8443", "*.example.org:8443"}
	if got := rs.Hosts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Hosts() = %q, want %q", got, want)
	}
}

func TestRulesMatchAllocs(t *testing.T) {
	rs := benchRules(t)
	reqs := benchRequests()
	for _, req := range reqs {
		rs.Match(req) // warm the regexp machine pool
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, req := range reqs {
			rs.Match(req)
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %.1f times per run", allocs)
	}
}

func benchRules(t testing.TB) *Rules {
	t.Helper()
	var cfg []RuleConfig
	for _, h := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		cfg = append(cfg, RuleConfig{Hosts: []string{h + ".example.com"}, Paths: []string{"^/static/", `\.css$`}, Policy: "bypass"})
	}
	cfg = append(cfg,
		RuleConfig{Hosts: []string{"*.apps.example.com"}, Networks: []string{"192.168.0.0/16"}, Policy: "bypass"},
		RuleConfig{Hosts: []string{"admin.example.com"}, Groups: []string{"admins"}, Policy: "passkey"},
		RuleConfig{Hosts: []string{"grafana.example.com"}, Methods: []string{"GET", "POST"}, Policy: "passkey"},
	)
	rs, err := CompileRules(cfg, "deny")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func benchRequests() []*Request {
	c := netip.MustParseAddr("203.0.113.9")
	return []*Request{
		{Method: "GET", Host: "grafana.example.com", Path: "/api/dashboards", Client: c, ClientOK: true},
		{Method: "GET", Host: "h.example.com", Path: "/static/app.css", Client: c, ClientOK: true},
		{Method: "GET", Host: "x.apps.example.com", Path: "/", Client: c, ClientOK: true},
		{Method: "GET", Host: "unknown.example.com", Path: "/", Client: c, ClientOK: true},
	}
}

func BenchmarkRulesMatch(b *testing.B) {
	rs := benchRules(b)
	reqs := benchRequests()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rs.Match(reqs[i%len(reqs)])
	}
}
