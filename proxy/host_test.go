package proxy

import (
	"strings"
	"testing"
)

func TestCanonicalHost(t *testing.T) {
	tests := []struct {
		name, host, scheme string
		want               string
		ok                 bool
	}{
		{"plain", "grafana.example.com", "https", "grafana.example.com", true},
		{"upper case", "GRAFANA.Example.COM", "https", "grafana.example.com", true},
		{"trailing dot", "grafana.example.com.", "https", "grafana.example.com", true},
		{"https default port", "grafana.example.com:443", "https", "grafana.example.com", true},
		{"http default port", "grafana.example.com:80", "http", "grafana.example.com", true},
		{"scheme case", "grafana.example.com:443", "HTTPS", "grafana.example.com", true},
		{"http port on https", "grafana.example.com:80", "https", "grafana.example.com:80", true},
		{"non-default port", "grafana.example.com:8443", "https", "grafana.example.com:8443", true},
		{"leading zero default port", "grafana.example.com:0443", "https", "grafana.example.com", true},
		{"leading zero port", "grafana.example.com:08443", "https", "grafana.example.com:8443", true},
		{"dot and port", "Grafana.Example.com.:443", "https", "grafana.example.com", true},
		{"dot and other port", "grafana.example.com.:8443", "https", "grafana.example.com:8443", true},
		{"unknown scheme keeps port", "a.example.com:443", "ftp", "a.example.com:443", true},
		{"localhost", "localhost:8080", "http", "localhost:8080", true},
		{"underscore", "my_service", "http", "my_service", true},
		{"ipv4", "127.0.0.1:8080", "http", "127.0.0.1:8080", true},
		{"ipv4 default port", "127.0.0.1:80", "http", "127.0.0.1", true},
		{"ipv6 bracketed", "[::1]", "https", "::1", true},
		{"ipv6 default port", "[::1]:443", "https", "::1", true},
		{"ipv6 port keeps brackets", "[::1]:8443", "https", "[::1]:8443", true},
		{"ipv6 canonical form", "[0:0:0:0:0:0:0:1]:8443", "https", "[::1]:8443", true},
		{"ipv6 upper case", "[FE80::AB]", "https", "fe80::ab", true},
		{"ipv6 bare", "::1", "https", "::1", true},
		{"ipv4-mapped ipv6", "[::ffff:1.2.3.4]", "https", "::ffff:1.2.3.4", true},

		{"empty", "", "https", "", false},
		{"only dot", ".", "https", "", false},
		{"two trailing dots", "example.com..", "https", "", false},
		{"empty label", "a..example.com", "https", "", false},
		{"leading dot", ".example.com", "https", "", false},
		{"userinfo", "user@example.com", "https", "", false},
		{"userinfo with password", "grafana.example.com:pw@evil.com", "https", "", false},
		{"space", "grafana.example.com ", "https", "", false},
		{"inner space", "grafana example.com", "https", "", false},
		{"tab", "grafana.example.com\t", "https", "", false},
		{"nul", "grafana.example.com\x00.evil.com", "https", "", false},
		{"crlf", "grafana.example.com\r\nX: y", "https", "", false},
		{"percent", "evil.com%40grafana.example.com", "https", "", false},
		{"slash", "evil.com/grafana.example.com", "https", "", false},
		{"backslash", "evil.com\\grafana.example.com", "https", "", false},
		{"unicode", "grafänа.example.com", "https", "", false},
		{"empty port", "grafana.example.com:", "https", "", false},
		{"port zero", "grafana.example.com:0", "https", "", false},
		{"port too big", "grafana.example.com:65536", "https", "", false},
		{"port not numeric", "grafana.example.com:https", "https", "", false},
		{"port too long", "grafana.example.com:000443", "https", "", false},
		{"port sign", "grafana.example.com:+443", "https", "", false},
		{"two ports", "grafana.example.com:443:443", "https", "", false},
		{"only port", ":443", "https", "", false},
		{"ipv6 unclosed", "[::1", "https", "", false},
		{"ipv6 junk after bracket", "[::1]x", "https", "", false},
		{"ipv6 empty port", "[::1]:", "https", "", false},
		{"ipv6 zone", "[fe80::1%25eth0]", "https", "", false},
		{"ipv6 bare zone", "fe80::1%eth0", "https", "", false},
		{"ipv4 in brackets", "[127.0.0.1]", "https", "", false},
		{"not ipv6", "[evil.com]", "https", "", false},
		{"too long", strings.Repeat("a.", 200) + "com", "https", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CanonicalHost(tt.host, tt.scheme)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("CanonicalHost(%q, %q) = %q, %v; want %q, %v", tt.host, tt.scheme, got, ok, tt.want, tt.ok)
			}
			if ok {
				again, ok2 := CanonicalHost(got, tt.scheme)
				if again != got || !ok2 {
					t.Fatalf("not idempotent: CanonicalHost(%q) = %q, %v", got, again, ok2)
				}
			}
		})
	}
}

// TestPUB05HostCanonicalization is HOSTILE.md PUB-05: variants of admin.example.com must hit
// the admin rule (and so be refused to a non-admin, 403), unknown and empty hosts must get the
// default policy (deny), never an allow.
func TestPUB05HostCanonicalization(t *testing.T) {
	rs := hostileRules(t)
	adminRule := rs.Match(&Request{Method: "GET", Host: "admin.example.com", Path: "/"})
	if adminRule.Index != 1 {
		t.Fatalf("admin.example.com matched rule %d, want 1", adminRule.Index)
	}
	tests := []struct {
		name, host string
		wantIndex  int // -1: default policy; -2: host refused before matching
	}{
		{"exact", "admin.example.com", 1},
		{"mixed case", "ADMIN.Example.COM", 1},
		{"trailing dot", "admin.example.com.", 1},
		{"default port", "admin.example.com:443", 1},
		{"all at once", "Admin.Example.Com.:443", 1},
		{"unknown host", "unknown.example.com", -1},
		{"empty host", "", -2},
		{"suffix trick", "admin.example.com.evil.com", -1},
		// A rule without a port covers its host on every port (issue 16): never the default policy.
		{"other port", "admin.example.com:8443", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := CanonicalHost(tt.host, "https")
			if !ok {
				if tt.wantIndex != -2 {
					t.Fatalf("CanonicalHost(%q) refused", tt.host)
				}
				return // the caller denies: nothing to match
			}
			if tt.wantIndex == -2 {
				t.Fatalf("CanonicalHost(%q) = %q, want refusal", tt.host, h)
			}
			r := rs.Match(&Request{Method: "GET", Scheme: "https", Host: h, Path: "/"})
			if r.Index != tt.wantIndex {
				t.Fatalf("host %q matched rule %d, want %d", tt.host, r.Index, tt.wantIndex)
			}
			if r.Policy == PolicyBypass {
				t.Fatalf("host %q got bypass", tt.host)
			}
			if r.Policy == PolicyPasskey && r.Allows("bob", []string{"users"}) {
				t.Fatalf("host %q allows a non-admin", tt.host)
			}
			if r.Index == -1 && r.Policy != PolicyDeny {
				t.Fatalf("default policy is %v, want deny", r.Policy)
			}
		})
	}
}

func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{
		"grafana.example.com", "GRAFANA.example.com.:443", "[::1]:8443", "::1", "a..b",
		"user@host", "host:0080", "[fe80::1%25en0]:80", "127.0.0.1:80", "x:",
	} {
		f.Add(s, "https")
		f.Add(s, "http")
	}
	f.Fuzz(func(t *testing.T, host, scheme string) {
		got, ok := CanonicalHost(host, scheme)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", host, got)
			}
			return
		}
		again, ok2 := CanonicalHost(got, scheme)
		if !ok2 || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", host, got, again, ok2)
		}
		if strings.ContainsAny(got, "@/\\ %") || strings.ToLower(got) != got || strings.HasSuffix(got, ".") {
			t.Fatalf("CanonicalHost(%q) = %q is not canonical", host, got)
		}
	})
}
