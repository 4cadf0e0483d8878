package proxy

import (
	"fmt"
	"strings"
	"testing"
)

// identityFuzzRules are sensitive to host name, port and path, so that an equivalent form
// reaching another rule shows as a different index.
func identityFuzzRules(t testing.TB) *Rules {
	t.Helper()
	rs, err := CompileRules([]RuleConfig{
		{Hosts: []string{"app.example.com:8443"}, Paths: []string{"^/admin/"}, Policy: "deny"},
		{Hosts: []string{"app.example.com"}, Paths: []string{"^/admin/"}, Groups: []string{"admins"}, Policy: "passkey"},
		{Hosts: []string{"*.example.com:8443"}, Policy: "bypass"},
		{Hosts: []string{"app.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
		{Hosts: []string{"*.example.com"}, Paths: []string{`^/api/v[0-9]+/`, `\.css$`}, Policy: "passkey"},
		{Hosts: []string{"[::1]", "10.0.0.1:443"}, Policy: "deny"},
		{Hosts: []string{"app.example.com:443"}, Paths: []string{"^/tls/"}, Policy: "bypass"},
		{Hosts: []string{"app.example.com"}, Policy: "passkey"},
	}, "deny")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// hostVariants returns spellings of the canonical host c that a browser or proxy may send for
// the same site: letters in other case (the bits of flip choose which), a trailing dot, the
// scheme's default port written out, a port with a leading zero.
func hostVariants(c, scheme string, flip uint64) []string {
	name, port := hostAndPort(c)
	if strings.IndexByte(name, ':') >= 0 {
		// IPv6 literal: other spellings of the address, with and without the default port.
		if port == "" {
			return []string{"[" + name + "]", "[" + name + "]:" + defaultPort(scheme)}
		}
		return []string{"[" + name + "]:" + port, "[" + name + "]:0" + port}
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if 'a' <= ch && ch <= 'z' && flip&(1<<(i%64)) != 0 {
			ch -= 'a' - 'A'
		}
		b.WriteByte(ch)
	}
	mixed := b.String()
	if port == "" {
		return []string{mixed, mixed + ".", mixed + ":" + defaultPort(scheme), mixed + ".:" + defaultPort(scheme), mixed + ":0" + defaultPort(scheme)}
	}
	out := []string{mixed + ":" + port, mixed + ".:" + port}
	if len(port) < 5 {
		out = append(out, mixed+":0"+port)
	}
	return out
}

// pathVariants returns spellings of the normalised path p that mean the same resource: a dot
// segment, a duplicate slash, a detour through a parent segment, each at the slash chosen by
// at, and one unreserved character percent-encoded.
func pathVariants(p string, at uint64) []string {
	var slashes []int
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			slashes = append(slashes, i)
		}
	}
	i := slashes[int(at%uint64(len(slashes)))]
	out := []string{
		p[:i] + "/." + p[i:],
		p[:i] + "/" + p[i:],
		p[:i+1] + "zz/../" + p[i+1:],
		p[:i+1] + "%2e/" + p[i+1:],
		p[:i+1] + "zz/%2E%2e/" + p[i+1:],
	}
	for j := int((at >> 8) % uint64(len(p))); j < len(p); j++ {
		if c := p[j]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			out = append(out, p[:j]+fmt.Sprintf("%%%02X", c)+p[j+1:], p[:j]+fmt.Sprintf("%%%02x", c)+p[j+1:])
			break
		}
	}
	return out
}

// FuzzEquivalentFormsSameRule feeds host and path variants to CanonicalHost, NormalizePath and
// the rule matcher, and checks that every equivalent spelling of a request (letter case, a
// trailing dot, the default port written out, dot segments, duplicate slashes, percent-encoded
// unreserved characters) is canonicalised to the same host and path and reaches the same rule
// (issue 16).
func FuzzEquivalentFormsSameRule(f *testing.F) {
	for _, s := range []struct {
		host, path string
		https      bool
	}{
		{"app.example.com", "/admin/", true},
		{"APP.example.com.:8443", "/admin/x", true},
		{"app.example.com:443", "/tls/x", false},
		{"app.example.com", "/tls/", true},
		{"x.example.com:08443", "/api/v1/", true},
		{"deep.x.example.com", "/api/v2/users", false},
		{"app.example.com", "/public/a.css", true},
		{"app.example.com", "/admin", true},
		{"[::1]:443", "/", true},
		{"[0:0::1]:8443", "/admin/", true},
		{"10.0.0.1", "/x", true},
		{"example.com", "/a/b/c/", false},
		{"app.example.com:80", "/caf%C3%A9/", false},
		{"app.example.com", "/%61dmin/", true},
		{"app.example.com", "//admin//", true},
		{"app.example.com", "/x/../admin/./", true},
		{"app.example.com", "/compare/main...feature/", true},
	} {
		f.Add(s.host, s.path, s.https, uint64(0x5555), uint64(7))
	}
	rs := identityFuzzRules(f)
	f.Fuzz(func(t *testing.T, host, rawPath string, https bool, flip, at uint64) {
		scheme := "http"
		if https {
			scheme = "https"
		}
		c, ok := CanonicalHost(host, scheme)
		if !ok {
			return
		}
		p, err := NormalizePath(rawPath)
		if err != nil {
			return
		}
		want := rs.Match(&Request{Method: "GET", Scheme: scheme, Host: c, Path: p})
		for _, hv := range hostVariants(c, scheme, flip) {
			hc, ok := CanonicalHost(hv, scheme)
			if !ok || hc != c {
				t.Fatalf("host %q canonicalises to %q (%v), its equivalent %q to %q", host, c, ok, hv, hc)
			}
		}
		for _, pv := range pathVariants(p, at) {
			pc, err := NormalizePath(pv)
			if err != nil || pc != p {
				t.Fatalf("path %q normalises to %q, its equivalent %q to %q (%v)", rawPath, p, pv, pc, err)
			}
		}
		// The matcher itself, on a spelling the caller forgot to canonicalise only in ways the
		// contract allows: the explicit default port.
		name, port := hostAndPort(c)
		if port == "" && strings.IndexByte(name, ':') < 0 {
			explicit, _ := CanonicalHost(name+":"+defaultPort(scheme), "")
			if got := rs.Match(&Request{Method: "GET", Scheme: scheme, Host: explicit, Path: p}); got != want {
				t.Fatalf("%s://%s%s matched rule %d, with the port written out (%s) rule %d", scheme, c, p, want.Index, explicit, got.Index)
			}
		}
		// A rule host written without a port never loses a request to the default policy
		// because of a port: the same name on another port reaches a rule too.
		if want.Index >= 0 && strings.IndexByte(name, ':') < 0 && anyPort(want, name) {
			other := rs.Match(&Request{Method: "GET", Scheme: scheme, Host: name + ":9999", Path: p})
			if other.Index < 0 {
				t.Fatalf("%s%s matched rule %d, but on port 9999 it fell to the default policy", c, p, want.Index)
			}
		}
	})
}

// anyPort reports whether r covers name on every port: no hosts at all, or a matching host or
// wildcard written without a port.
func anyPort(r *Rule, name string) bool {
	if len(r.hosts) == 0 && len(r.wildcards) == 0 {
		return true
	}
	for _, e := range r.hosts {
		if e.name == name && e.port == "" {
			return true
		}
	}
	for _, w := range r.wildcards {
		if w.port == "" && len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return true
		}
	}
	return false
}
