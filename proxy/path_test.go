package proxy

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"empty", "", "/"},
		{"root", "/", "/"},
		{"canonical", "/api/dashboards", "/api/dashboards"},
		{"admin", "/admin", "/admin"},
		{"encoded letter", "/%61dmin", "/admin"},
		{"upper-case escape", "/%41dmin", "/Admin"},
		{"double slash", "//admin", "/admin"},
		{"dot dot", "/x/../admin", "/admin"},
		// A directory keeps its trailing slash, so "^/admin/" covers "/admin/" (issue 16).
		{"trailing slash", "/admin/", "/admin/"},
		{"no trailing slash", "/admin", "/admin"},
		{"many slashes", "///a////b///", "/a/b/"},
		{"dot", "/./admin/.", "/admin/"},
		{"dot dot names the parent directory", "/admin/x/..", "/admin/"},
		{"double slash before directory", "//admin/", "/admin/"},
		{"dot segment before directory", "/./admin/", "/admin/"},
		{"parent before directory", "/x/../admin/", "/admin/"},
		{"encoded letter in directory", "/%61dmin/", "/admin/"},
		{"double slash inside", "/admin//x", "/admin/x"},
		{"case kept", "/ADMIN/", "/ADMIN/"},
		{"root dot dot", "/..", "/"},
		{"root dot dot slash", "/../", "/"},
		{"dot dot above root", "/../../admin", "/admin"},
		{"only dot dot", "/..", "/"},
		{"encoded dot segment", "/public/%2e%2e/admin", "/admin"},
		{"encoded dot upper", "/public/%2E%2E/admin", "/admin"},
		{"half encoded dot", "/public/.%2e/admin", "/admin"},
		{"encoded single dot", "/%2e/admin", "/admin"},
		{"dots inside a name", "/compare/main...feature", "/compare/main...feature"},
		{"dotfile", "/.well-known/x", "/.well-known/x"},
		{"encoded space", "/my%20file.pdf", "/my file.pdf"},
		{"raw utf-8", "/caf\u00e9", "/caf\u00e9"},
		{"encoded utf-8", "/caf%C3%A9", "/caf\u00e9"},
		{"sub-delims", "/a,b=c&d+e!$'()*@:~", "/a,b=c&d+e!$'()*@:~"},
		{"latchkey", "/.latchkey/account", "/.latchkey/account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath(tt.raw)
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestNormalizePathAmbiguous(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"relative", "admin"},
		{"absolute URL", "https://evil.com/"},
		{"encoded slash", "/public%2F..%2Fadmin"},
		{"encoded slash lower", "/a%2fb"},
		{"raw backslash", "/public\\..\\admin"},
		{"encoded backslash", "/%5Cevil.com"},
		{"encoded backslash lower", "/%5cevil.com"},
		{"raw nul", "/admin\x00.css"},
		{"encoded nul", "/admin%00.css"},
		{"raw tab", "/a\tb"},
		{"encoded tab", "/%09/evil.com"},
		{"encoded lf", "/%0a/evil.com"},
		{"raw cr lf", "/a\r\nX-Injected: 1"},
		{"encoded cr", "/%0d/evil.com"},
		{"encoded 1f", "/a%1Fb"},
		{"raw del", "/a\x7fb"},
		{"encoded del", "/a%7Fb"},
		{"c1 control raw", "/a\u0085b"},
		{"c1 control encoded", "/a%C2%85b"},
		{"bad escape", "/%zz"},
		{"half bad escape", "/%4g"},
		{"truncated escape", "/admin%4"},
		{"lone percent", "/100%"},
		{"percent at end minus one", "/%"},
		{"double encoding", "/%252F%252Fevil.com"},
		{"encoded percent", "/100%25"},
		{"invalid utf-8 encoded", "/%C3%28"},
		{"invalid utf-8 raw", "/\xff"},
		{"overlong slash", "/%C0%AF"},
		{"surrogate", "/%ED%A0%80"},
		{"path parameter raw", "/admin;jsessionid=x"},
		{"path parameter dot", "/public/..;/admin"},
		{"path parameter encoded", "/admin%3Bx"},
		{"raw query", "/admin?x=/public/"},
		{"encoded query", "/admin%3Fx=/public/"},
		{"raw fragment", "/admin#/public/"},
		{"encoded fragment", "/admin%23/public/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePath(tt.raw)
			if !errors.Is(err, ErrAmbiguousPath) {
				t.Fatalf("NormalizePath(%q) = %q, %v; want ErrAmbiguousPath", tt.raw, got, err)
			}
			if got != "" {
				t.Fatalf("NormalizePath(%q) returned %q with an error", tt.raw, got)
			}
		})
	}
}

// splitURI is what a forward-auth adapter does with X-Forwarded-Uri before NormalizePath: the
// query is not part of the path. (A fragment is never sent; one that arrives stays in the
// path and is refused.)
func splitURI(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}

// TestPUB06PathRules is HOSTILE.md PUB-06: with the bypass rule ^/public/ on
// public.example.com, none of these may reach the bypass; each is either refused (400) or
// judged as the decoded, normalised path.
func TestPUB06PathRules(t *testing.T) {
	rs := hostileRules(t)
	tests := []struct {
		uri     string
		refused bool   // NormalizePath refuses it
		path    string // otherwise, the path judged
	}{
		{"/admin?x=/public/", false, "/admin"},
		{"/admin#/public/", true, ""},
		{"/public/../admin", false, "/admin"},
		{"/public/%2e%2e/admin", false, "/admin"},
		{"/public%2F..%2Fadmin", true, ""},
		{"/public/./../admin", false, "/admin"},
		{"/public/..;/admin", true, ""},
		{"/public/%2e%2e%2fadmin", true, ""},
		{"/public\\..\\admin", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			// Both the split URI (what the adapters do) and the whole URI (a careless
			// caller) must be safe.
			for _, raw := range []string{splitURI(tt.uri), tt.uri} {
				p, err := NormalizePath(raw)
				if err != nil {
					if raw == splitURI(tt.uri) && !tt.refused {
						t.Fatalf("NormalizePath(%q) refused: %v", raw, err)
					}
					continue
				}
				if raw == splitURI(tt.uri) {
					if tt.refused {
						t.Fatalf("NormalizePath(%q) = %q, want refusal", raw, p)
					}
					if p != tt.path {
						t.Fatalf("NormalizePath(%q) = %q, want %q", raw, p, tt.path)
					}
				}
				r := rs.Match(&Request{Method: "GET", Host: "public.example.com", Path: p})
				if r.Policy == PolicyBypass {
					t.Fatalf("%q (path %q) hit the bypass rule %d", raw, p, r.Index)
				}
			}
		})
	}
	// The positive control: the bypass still works for what it is meant for.
	if r := rs.Match(&Request{Method: "GET", Host: "public.example.com", Path: "/public/x"}); r.Policy != PolicyBypass {
		t.Fatalf("/public/x got %v", r.Policy)
	}
}

func TestNormalizePathAllocs(t *testing.T) {
	for _, p := range []string{"/", "/api/dashboards", "/d/abc-123/my-dashboard.json", "/compare/a...b"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := NormalizePath(p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("NormalizePath(%q) allocates %.1f times", p, allocs)
		}
	}
	for _, p := range []string{"/a%00", "/%zz", "/a\\b"} {
		if allocs := testing.AllocsPerRun(100, func() { _, _ = NormalizePath(p) }); allocs > 1 {
			t.Errorf("refusing %q allocates %.1f times", p, allocs)
		}
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ name, raw string }{
		{"canonical", "/api/dashboards"},
		{"long canonical", "/api/datasources/proxy/uid/abc123/api/v1/query_range.json"},
		{"encoded", "/public/%2e%2e/api/dash%62oards/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = NormalizePath(bc.raw)
			}
		})
	}
}

// hasDotDotSegment reports whether p has a ".." path segment. (A ".." inside a name, as in
// Gitea's /compare/main...feature, is not a traversal and is kept.)
func hasDotDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return true
		}
	}
	return false
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/api/dashboards", "//admin", "/x/../admin", "/public/%2e%2e/admin",
		"/public%2F..%2Fadmin", "/%5Cevil.com", "/%00", "/%zz", "/a;b", "/caf%C3%A9", "/a..b/",
		"/%252F", "/\xff", "/a%C2%85",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := NormalizePath(raw)
		if err != nil {
			if !errors.Is(err, ErrAmbiguousPath) || out != "" {
				t.Fatalf("NormalizePath(%q) = %q, %v", raw, out, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") || strings.HasSuffix(raw, "/") != strings.HasSuffix(out, "/") &&
			!strings.HasSuffix(raw, "/.") && !strings.HasSuffix(raw, "/..") && !strings.HasSuffix(raw, "%2e") &&
			!strings.HasSuffix(raw, "%2E") && raw != "" && out != "/" {
			t.Fatalf("NormalizePath(%q) = %q: bad shape (a directory keeps its trailing slash, a file gets none)", raw, out)
		}
		if hasDotDotSegment(out) || strings.Contains(out, "//") || strings.ContainsAny(out, "\\\x00%;?#") {
			t.Fatalf("NormalizePath(%q) = %q: not normalised", raw, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] == 0x7f {
				t.Fatalf("NormalizePath(%q) = %q: control character", raw, out)
			}
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", raw, out, again, err)
		}
	})
}
