package proxy

import (
	"net/url"
	"strings"
	"testing"
)

const accountURL = "https://auth.example.com/.latchkey/account"

// hostilePolicy is the HOSTILE.md topology: portal https://auth.example.com, cookie domain
// example.com, rule hosts from hostileRules.
func hostilePolicy(t testing.TB) RedirectPolicy {
	t.Helper()
	portal, err := url.Parse("https://auth.example.com")
	if err != nil {
		t.Fatal(err)
	}
	return RedirectPolicy{Portal: portal, Hosts: hostileRules(t).Hosts(), CookieDomain: "example.com"}
}

func TestRedirectAccount(t *testing.T) {
	p := hostilePolicy(t)
	if got := p.Account(); got != accountURL {
		t.Fatalf("Account() = %q", got)
	}
	portal, _ := url.Parse("http://localhost:8080/some/prefix")
	if got := (RedirectPolicy{Portal: portal}).Account(); got != "http://localhost:8080/.latchkey/account" {
		t.Fatalf("Account() = %q", got)
	}
}

func TestRedirectSafeAllowed(t *testing.T) {
	p := hostilePolicy(t)
	tests := []struct{ name, raw, want string }{
		{"rule host", "https://grafana.example.com/d/abc?orgId=1#panel", ""},
		{"rule host root", "https://admin.example.com", ""},
		{"portal", "https://auth.example.com/", ""},
		{"portal account", "https://auth.example.com/.latchkey/account", ""},
		{"portal account with query", "https://auth.example.com/.latchkey/account?tab=passkeys", ""},
		{"cookie domain subdomain", "https://wiki.example.com/page", ""},
		{"cookie domain deeper", "https://a.b.example.com/", ""},
		{"cookie domain apex", "https://example.com/", ""},
		{"default port", "https://grafana.example.com:443/x", ""},
		{"scheme case", "HTTPS://grafana.example.com/", "https://grafana.example.com/"},
		{"host case and dot", "https://GRAFANA.example.com./", ""},
		{"encoded path", "https://grafana.example.com/a%20b", ""},
		{"dots inside path kept as sent", "https://grafana.example.com/a/../b", ""},
		{"public path", "https://public.example.com/public/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.raw
			}
			got, ok := p.Safe(tt.raw)
			if !ok || got != want {
				t.Fatalf("Safe(%q) = %q, %v; want %q", tt.raw, got, ok, want)
			}
		})
	}
}

// sinkRefuses checks the SAFE-REDIRECT expectation: the account page, never the input.
func sinkRefuses(t *testing.T, p RedirectPolicy, raw string) {
	t.Helper()
	got, ok := p.Safe(raw)
	if ok || got != p.Account() {
		t.Fatalf("Safe(%q) = %q, %v; want the account page", raw, got, ok)
	}
}

// TestPUB08SlashBackslash is HOSTILE.md PUB-08 (slash, backslash and encoded forms). The rows
// are the rd values as the sinks see them after query decoding.
func TestPUB08SlashBackslash(t *testing.T) {
	p := hostilePolicy(t)
	for _, raw := range []string{
		"//evil.com", "///evil.com", "/\\evil.com", "\\/evil.com", "\\\\evil.com", "/%5Cevil.com",
		"%2F%2Fevil.com", "%252F%252Fevil.com", "/./\\evil.com", "/./../../\\evil.com", "/..//evil.com",
		// The same shapes behind an allowed prefix.
		"https://grafana.example.com\\@evil.com", "https://grafana.example.com/\\evil.com",
		"https://grafana.example.com/%5Cevil.com", "https://grafana.example.com/%2F%2Fevil.com",
		"https://grafana.example.com/%252F%252Fevil.com", "//grafana.example.com/",
		"https:\\\\evil.com",
	} {
		t.Run(raw, func(t *testing.T) { sinkRefuses(t, p, raw) })
	}
}

// TestPUB09SchemesAndControls is HOSTILE.md PUB-09.
func TestPUB09SchemesAndControls(t *testing.T) {
	p := hostilePolicy(t)
	for _, raw := range []string{
		"https:evil.com", "https:/evil.com", "https:///evil.com", "HTTPS://evil.com",
		"javascript:alert(1)", "JaVaScRiPt:alert(1)", "java%0ascript:alert(1)", "java\nscript:alert(1)",
		" javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:x",
		"/%09/evil.com", "/%0a/evil.com", "/%0d/evil.com", "/%0b\\evil.com", "%20//evil.com",
		"http://grafana.example.com/", // downgrade while public_url is https
		"https:grafana.example.com", "https:/grafana.example.com/", "https:///grafana.example.com/",
		" https://grafana.example.com/", "https://grafana.example.com/ ", "https://grafana.example.com/\t",
		"https://grafana.example.com/\u00a0", "\ufeffhttps://grafana.example.com/",
		"https://grafana.example.com/%0d%0aSet-Cookie:x", "https://grafana.example.com/\r\nx",
		"https://grafana.example.com/\x00", "https://grafana.example.com/%00",
		"https://grafana.example.com/\xff", "ftp://grafana.example.com/", "wss://grafana.example.com/",
		"", "grafana.example.com", "/relative/path",
	} {
		t.Run(raw, func(t *testing.T) { sinkRefuses(t, p, raw) })
	}
}

// TestPUB10HostConfusion is HOSTILE.md PUB-10.
func TestPUB10HostConfusion(t *testing.T) {
	p := hostilePolicy(t)
	for _, raw := range []string{
		"https://grafana.example.com@evil.com/", "https://grafana.example.com:pw@evil.com/",
		"https://evil.com%40grafana.example.com", "https://grafana.example.com.evil.com/",
		"https://example.com.evil.com/", "https://evilexample.com/", "https://grafana.example.community/",
		"https://grafana.example.com:8443/",
		"https://user@grafana.example.com/", "https://:@grafana.example.com/", "https://@grafana.example.com/",
		"https://auth.example.com:8443/", "https://grafana.example.com:0443x/",
		"https://grafana.example.com..", "https://.example.com/", "https://[::1]/",
		"https://127.0.0.1/", "https://grafana.example.com%2eevil.com/", "https://evil.com#@grafana.example.com",
		"https://evil.com?@grafana.example.com", "https://evil.com\\@grafana.example.com",
		"https://xn--grafana-.example.com.evil.com/",
	} {
		t.Run(raw, func(t *testing.T) { sinkRefuses(t, p, raw) })
	}
}

func TestRedirectLatchkeyPaths(t *testing.T) {
	p := hostilePolicy(t)
	for _, raw := range []string{
		"https://auth.example.com/.latchkey/login?rd=https://evil.com",
		"https://auth.example.com/.latchkey/logout",
		"https://auth.example.com/.latchkey/api/tokens",
		"https://auth.example.com/.latchkey",
		"https://auth.example.com/.latchkey/",
		"https://auth.example.com/.LATCHKEY/login",
		"https://auth.example.com/.latchkey/account/../logout",
		"https://auth.example.com/x/../.latchkey/login",
		"https://auth.example.com/%2elatchkey/login",
		"https://auth.example.com/.latchkey/account/x",
		"https://auth.example.com/.latchkey//account/../login",
		"https://grafana.example.com/.latchkey/auth/forward", // in reverse-proxy mode every host has /.latchkey/
		"https://auth.example.com/.latchkey/%2e%2e/.latchkey/login",
		"https://auth.example.com/.latchkey/account;x",
		"https://auth.example.com/a%2f..%2f.latchkey/login",
	} {
		t.Run(raw, func(t *testing.T) { sinkRefuses(t, p, raw) })
	}
	for _, raw := range []string{
		"https://auth.example.com/.latchkey/./account",
		"https://auth.example.com/.latchkeys/x",
		"https://auth.example.com/x.latchkey/login",
	} {
		t.Run("allowed "+raw, func(t *testing.T) {
			if _, ok := p.Safe(raw); !ok {
				t.Fatalf("Safe(%q) refused", raw)
			}
		})
	}
}

func TestRedirectWildcardsAndPorts(t *testing.T) {
	portal, _ := url.Parse("https://auth.example.com")
	p := RedirectPolicy{Portal: portal, Hosts: []string{"*.apps.example.net", "x.example.net:8443", "*.example.org:9443"}}
	tests := []struct {
		raw string
		ok  bool
	}{
		{"https://a.apps.example.net/", true},
		{"https://b.a.apps.example.net/", true},
		{"https://apps.example.net/", false},
		{"https://evilapps.example.net/", false},
		{"https://a.apps.example.net:8443/", false},
		{"https://x.example.net:8443/", true},
		{"https://x.example.net/", false},
		{"https://y.example.org:9443/", true},
		{"https://y.example.org/", false},
		{"https://wiki.example.com/", false}, // no cookie domain configured
		{"https://auth.example.com/", true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			if _, ok := p.Safe(tt.raw); ok != tt.ok {
				t.Fatalf("Safe(%q) ok = %v, want %v", tt.raw, ok, tt.ok)
			}
		})
	}
}

func TestRedirectHTTPPortal(t *testing.T) {
	portal, _ := url.Parse("http://localhost:8080")
	p := RedirectPolicy{Portal: portal, Hosts: []string{"grafana.localhost"}, CookieDomain: ".localhost."}
	tests := []struct {
		raw string
		ok  bool
	}{
		{"http://localhost:8080/", true},
		{"http://localhost:8080/.latchkey/account", true},
		{"https://localhost:8080/", true}, // the portal host with the portal port; https is always allowed
		{"http://localhost/", true},       // inside cookie domain on its default port
		{"http://localhost:9090/", false},
		{"http://grafana.localhost/", true},
		{"https://grafana.localhost/", true},
		{"http://app.localhost/", true},
		{"http://evil.com/", false},
		{"http://localhost:8080/.latchkey/login", false},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			if _, ok := p.Safe(tt.raw); ok != tt.ok {
				t.Fatalf("Safe(%q) ok = %v, want %v", tt.raw, ok, tt.ok)
			}
		})
	}
	if got, _ := p.Safe("http://evil.com/"); got != "http://localhost:8080/.latchkey/account" {
		t.Fatalf("fallback = %q", got)
	}
}

func TestRedirectNilPortal(t *testing.T) {
	p := RedirectPolicy{Hosts: []string{"grafana.example.com"}}
	if got, ok := p.Safe("https://grafana.example.com/"); ok || got != "/.latchkey/account" {
		t.Fatalf("Safe with nil portal = %q, %v", got, ok)
	}
}

// allowedTarget is an independent statement of the HOSTILE topology's allowed targets, for
// the fuzzer to check Safe against.
func allowedTarget(u *url.URL) bool {
	if u.Scheme != "https" || u.User != nil || u.Opaque != "" {
		return false
	}
	if port := u.Port(); port != "" && port != "443" {
		return false
	}
	h := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if h != "example.com" && !strings.HasSuffix(h, ".example.com") {
		return false
	}
	p, err := NormalizePath(u.EscapedPath())
	if err != nil {
		return false
	}
	return (p != "/.latchkey" && !strings.HasPrefix(strings.ToLower(p), "/.latchkey/")) || p == accountPath
}

func FuzzRedirectSafe(f *testing.F) {
	for _, s := range []string{
		"https://grafana.example.com/d/x?y=1", "//evil.com", "/\\evil.com", "https:evil.com",
		"https://grafana.example.com@evil.com/", "javascript:alert(1)", "https://auth.example.com/.latchkey/account",
		"https://auth.example.com/.latchkey/login", "https://grafana.example.com:8443/", "HTTPS://Example.COM./",
		"https://evil.com%40grafana.example.com", "http://grafana.example.com/",
	} {
		f.Add(s)
	}
	p := hostilePolicy(f)
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := p.Safe(raw)
		if !ok {
			if got != accountURL {
				t.Fatalf("refused %q but returned %q", raw, got)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q, result %q does not parse: %v", raw, got, err)
		}
		if !allowedTarget(u) {
			t.Fatalf("accepted %q as %q, which is not an allowed target", raw, got)
		}
		if strings.ContainsAny(got, " \t\r\n\\\x00") {
			t.Fatalf("accepted %q as %q with unsafe characters", raw, got)
		}
		// Re-validating the output must accept it as it stands.
		if again, ok := p.Safe(got); !ok || again != got {
			t.Fatalf("accepted %q as %q, but that re-validates as %q, %v", raw, got, again, ok)
		}
	})
}

// TestWriteQueryEscapedMatchesQueryEscape holds the login redirect's own escaper to the bytes
// url.Values.Encode writes: every byte value alone and within text, and the lengths it sizes
// its buffer with.
func TestWriteQueryEscapedMatchesQueryEscape(t *testing.T) {
	cases := []string{"", "app.example.com", "/d/dashboard?orgId=1&from=now-6h", "/a b+c%20d#frag", "[::1]:8443/ü/€?q=☃",
		"/~user/_x-y.z", "/%zz%", "\x00\x7f\xff"}
	for c := 0; c < 256; c++ {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	for _, s := range cases {
		var b strings.Builder
		writeQueryEscaped(&b, s)
		want := url.QueryEscape(s)
		if b.String() != want {
			t.Errorf("writeQueryEscaped(%q) = %q, url.QueryEscape = %q", s, b.String(), want)
		}
		if n := queryEscapedLen(s); n != len(want) {
			t.Errorf("queryEscapedLen(%q) = %d, want %d", s, n, len(want))
		}
	}
}

// TestLoginLocationIsValuesEncode compares the login address with url.Values' encoding of rd
// and stepup, for the schemes with a constant escaped prefix and one without.
func TestLoginLocationIsValuesEncode(t *testing.T) {
	h := &Handler{loginURL: "https://auth.example.com/.latchkey/login"}
	for _, tg := range []target{
		{scheme: "https", host: "app.example.com", uri: "/d/x?orgId=1&a=b c"},
		{scheme: "http", host: "[::1]:8080", uri: "/"},
		{scheme: "wss", host: "app.example.com:8443", uri: "/ü?☃=1"},
	} {
		for _, stepUp := range []bool{false, true} {
			v := url.Values{"rd": {tg.originalURL()}}
			if stepUp {
				v.Set("stepup", "1")
			}
			want := h.loginURL + "?" + v.Encode()
			if got := h.loginLocation(&tg, stepUp); got != want {
				t.Errorf("loginLocation(%+v, %v) = %q, want %q", tg, stepUp, got, want)
			}
		}
	}
}
