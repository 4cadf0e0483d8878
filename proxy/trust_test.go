package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustTrusted(t testing.TB, cidrs ...string) TrustedProxies {
	t.Helper()
	tp, err := ParseTrustedProxies(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestParseTrustedProxies(t *testing.T) {
	tp := mustTrusted(t, "127.0.0.0/8", "::1/128", "10.1.2.3", "fd00::1", "172.16.5.4/12", "::ffff:192.168.0.0/112")
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true}, // dual-stack listener
		{"10.1.2.3", true},
		{"10.1.2.4", false},
		{"fd00::1", true},
		{"fd00::2", false},
		{"172.31.0.1", true}, // host bits in the CIDR are masked
		{"192.168.3.4", true},
		{"::ffff:192.168.3.4", true},
		{"203.0.113.9", false},
		{"::2", false},
		{"fe80::1%eth0", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := tp.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
	t.Run("invalid addr", func(t *testing.T) {
		if tp.Contains(netip.Addr{}) {
			t.Fatal("zero Addr is trusted")
		}
	})
	t.Run("zero value trusts nobody", func(t *testing.T) {
		if (TrustedProxies{}).Contains(netip.MustParseAddr("127.0.0.1")) {
			t.Fatal("zero TrustedProxies trusts 127.0.0.1")
		}
	})
}

func TestParseTrustedProxiesErrors(t *testing.T) {
	_, err := ParseTrustedProxies([]string{"127.0.0.1", "x", "10.0.0.0/33", "", "fe80::1%eth0", " 10.0.0.1"})
	if err == nil {
		t.Fatal("accepted bad entries")
	}
	for _, want := range []string{
		`trusted_proxies[1]: invalid CIDR or IP address "x"`,
		`trusted_proxies[2]: invalid CIDR or IP address "10.0.0.0/33"`,
		`trusted_proxies[3]: invalid CIDR or IP address ""`,
		`trusted_proxies[4]:`,
		`trusted_proxies[5]:`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "trusted_proxies[0]") {
		t.Errorf("error names a good entry: %v", err)
	}
}

func TestPeerAddr(t *testing.T) {
	tests := []struct {
		remote string
		want   string // "" for !ok
	}{
		{"127.0.0.1:1234", "127.0.0.1"},
		{"[::1]:1234", "::1"},
		{"[::ffff:10.0.0.1]:1234", "10.0.0.1"},
		{"[fe80::1%eth0]:1234", "fe80::1"},
		{"10.0.0.1", "10.0.0.1"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"", ""},
		{"@", ""},
		{"localhost:80", ""},
		{"1.2.3.4:", ""},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			a, ok := PeerAddr(&http.Request{RemoteAddr: tt.remote})
			if tt.want == "" {
				if ok {
					t.Fatalf("PeerAddr(%q) = %v, want !ok", tt.remote, a)
				}
				return
			}
			if !ok || a != netip.MustParseAddr(tt.want) {
				t.Fatalf("PeerAddr(%q) = %v, %v; want %s", tt.remote, a, ok, tt.want)
			}
		})
	}
}

func newRequest(remote string, hdr ...string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestClientAddr(t *testing.T) {
	tp := mustTrusted(t, "127.0.0.1", "10.0.0.0/8")
	tests := []struct {
		name string
		req  *http.Request
		want string // "" for !ok
	}{
		{"untrusted peer ignores header", newRequest("203.0.113.9:5555", "X-Forwarded-For", "192.168.1.10"), "203.0.113.9"},
		{"untrusted peer ignores garbage", newRequest("203.0.113.9:5555", "X-Forwarded-For", "a"), "203.0.113.9"},
		{"trusted peer without header", newRequest("127.0.0.1:5555"), "127.0.0.1"},
		{"one hop", newRequest("127.0.0.1:5555", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9"},
		{"right-most untrusted", newRequest("127.0.0.1:5555", "X-Forwarded-For", "198.51.100.1, 203.0.113.9"), "203.0.113.9"},
		{"skips trusted hops", newRequest("127.0.0.1:5555", "X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.5,10.0.0.6"), "203.0.113.9"},
		{"all trusted gives left-most", newRequest("127.0.0.1:5555", "X-Forwarded-For", "10.0.0.7, 10.0.0.5"), "10.0.0.7"},
		{"multiple header lines in order", newRequest("127.0.0.1:5555", "X-Forwarded-For", "198.51.100.1", "X-Forwarded-For", "203.0.113.9, 10.0.0.5"), "203.0.113.9"},
		{"multiple lines all trusted", newRequest("127.0.0.1:5555", "X-Forwarded-For", "10.0.0.1", "X-Forwarded-For", "10.0.0.2"), "10.0.0.1"},
		{"ipv6", newRequest("127.0.0.1:5555", "X-Forwarded-For", "2001:db8::1"), "2001:db8::1"},
		{"ipv6 bracketed", newRequest("127.0.0.1:5555", "X-Forwarded-For", "[2001:db8::1]"), "2001:db8::1"},
		{"ipv6 with port", newRequest("127.0.0.1:5555", "X-Forwarded-For", "[2001:db8::1]:443"), "2001:db8::1"},
		{"ipv4 with port", newRequest("127.0.0.1:5555", "X-Forwarded-For", "203.0.113.9:61000"), "203.0.113.9"},
		{"mapped", newRequest("[::ffff:127.0.0.1]:5555", "X-Forwarded-For", "::ffff:203.0.113.9"), "203.0.113.9"},
		{"tabs and spaces", newRequest("127.0.0.1:5555", "X-Forwarded-For", " \t203.0.113.9 \t"), "203.0.113.9"},
		{"garbage left of the client is never read", newRequest("127.0.0.1:5555", "X-Forwarded-For", "a, 203.0.113.9"), "203.0.113.9"},
		{"garbage", newRequest("127.0.0.1:5555", "X-Forwarded-For", "a"), ""},
		{"unknown", newRequest("127.0.0.1:5555", "X-Forwarded-For", "unknown"), ""},
		{"empty header", newRequest("127.0.0.1:5555", "X-Forwarded-For", ""), ""},
		{"empty element", newRequest("127.0.0.1:5555", "X-Forwarded-For", "203.0.113.9,"), ""},
		{"garbage after trusted hop", newRequest("127.0.0.1:5555", "X-Forwarded-For", "203.0.113.9, x, 10.0.0.1"), ""},
		{"zone", newRequest("127.0.0.1:5555", "X-Forwarded-For", "fe80::1%eth0"), ""},
		{"hostname", newRequest("127.0.0.1:5555", "X-Forwarded-For", "localhost"), ""},
		{"forwarded syntax", newRequest("127.0.0.1:5555", "X-Forwarded-For", "for=192.168.1.10"), ""},
		{"unparsable peer", newRequest("not-an-ip", "X-Forwarded-For", "203.0.113.9"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := tp.ClientAddr(tt.req)
			if tt.want == "" {
				if ok {
					t.Fatalf("ClientAddr = %v, want no address", a)
				}
				return
			}
			if !ok || a != netip.MustParseAddr(tt.want) {
				t.Fatalf("ClientAddr = %v, %v; want %s", a, ok, tt.want)
			}
		})
	}
}

// TestPUB07ClientAddressSpoofing is HOSTILE.md PUB-07: a bypass rule for 192.168.0.0/16 must
// not be reachable by 203.0.113.9 through any spoofed header, and an unparsable value counts as
// "no address" (Authentik CVE-2024-47070), never as a match.
func TestPUB07ClientAddressSpoofing(t *testing.T) {
	tp := mustTrusted(t, "127.0.0.1")
	rs, err := CompileRules([]RuleConfig{
		{Networks: []string{"192.168.0.0/16"}, Policy: "bypass"},
	}, "deny")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  *http.Request
		want string // "" for no address
	}{
		{"nginx appends to spoofed header", newRequest("127.0.0.1:40000", "X-Forwarded-For", "192.168.1.10, 203.0.113.9"), "203.0.113.9"},
		{"spoofed header as separate line", newRequest("127.0.0.1:40000", "X-Forwarded-For", "192.168.1.10", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9"},
		{"unparsable value", newRequest("127.0.0.1:40000", "X-Forwarded-For", "a"), ""},
		{"unparsable value appended", newRequest("127.0.0.1:40000", "X-Forwarded-For", "a, 203.0.113.9"), "203.0.113.9"},
		{"X-Real-IP ignored", newRequest("127.0.0.1:40000", "X-Real-IP", "192.168.1.10", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9"},
		{"Forwarded ignored", newRequest("127.0.0.1:40000", "Forwarded", "for=192.168.1.10", "X-Forwarded-For", "203.0.113.9"), "203.0.113.9"},
		{"X-Real-IP alone ignored", newRequest("127.0.0.1:40000", "X-Real-IP", "192.168.1.10"), "127.0.0.1"},
		{"Forwarded alone ignored", newRequest("127.0.0.1:40000", "Forwarded", "for=192.168.1.10"), "127.0.0.1"},
		{"direct from attacker", newRequest("203.0.113.9:40000", "X-Forwarded-For", "192.168.1.10", "X-Real-IP", "192.168.1.10", "Forwarded", "for=192.168.1.10"), "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := tp.ClientAddr(tt.req)
			if tt.want == "" {
				if ok {
					t.Fatalf("ClientAddr = %v, want no address", a)
				}
			} else if !ok || a != netip.MustParseAddr(tt.want) {
				t.Fatalf("ClientAddr = %v, %v; want %s", a, ok, tt.want)
			}
			r := rs.Match(&Request{Method: "GET", Host: "grafana.example.com", Path: "/", Client: a, ClientOK: ok})
			if r.Policy != PolicyDeny || r.Index != -1 {
				t.Fatalf("client %v (ok=%v) matched rule %d %v, want the default deny", a, ok, r.Index, r.Policy)
			}
		})
	}
	// The positive control: a real LAN client behind the proxy does get the bypass.
	a, ok := tp.ClientAddr(newRequest("127.0.0.1:40000", "X-Forwarded-For", "192.168.1.10"))
	if r := rs.Match(&Request{Client: a, ClientOK: ok}); r.Policy != PolicyBypass {
		t.Fatalf("LAN client %v got %v", a, r.Policy)
	}
}

func TestClientAddrAllocs(t *testing.T) {
	tp := mustTrusted(t, "127.0.0.1", "10.0.0.0/8")
	r := newRequest("127.0.0.1:5555", "X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.5")
	if allocs := testing.AllocsPerRun(100, func() { tp.ClientAddr(r) }); allocs != 0 {
		t.Fatalf("ClientAddr allocates %.1f times", allocs)
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.1:1234", "192.168.1.10, 203.0.113.9")
	f.Add("127.0.0.1:1234", "a")
	f.Add("[::1]:1", "[2001:db8::1]:443,\n10.0.0.1")
	f.Add("203.0.113.9:1", "192.168.1.10")
	f.Add("[fe80::1%eth0]:1", ",,")
	tp, err := ParseTrustedProxies([]string{"127.0.0.0/8", "::1/128", "10.0.0.0/8"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, line := range strings.Split(xff, "\n") {
			r.Header.Add("X-Forwarded-For", line)
		}
		a, ok := tp.ClientAddr(r)
		peer, peerOK := PeerAddr(r)
		switch {
		case !peerOK:
			if ok {
				t.Fatalf("address %v from an unparsable peer %q", a, remote)
			}
		case !tp.Contains(peer):
			if !ok || a != peer {
				t.Fatalf("untrusted peer %v, but ClientAddr = %v, %v", peer, a, ok)
			}
		case ok:
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("ClientAddr = %v: not a plain address", a)
			}
		}
	})
}
