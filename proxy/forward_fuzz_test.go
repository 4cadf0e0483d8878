package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/store"
)

// fuzzHandler is a real Handler (real auth service over a real SQLite file) with the HOSTILE
// topology: a passkey host, a group host, a bypass path on public.example.com, default deny.
func fuzzHandler(f *testing.F) *Handler {
	f.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Path: filepath.Join(f.TempDir(), "fuzz.db")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	public, _ := url.Parse("https://auth.example.com")
	key := []byte("0123456789abcdef0123456789abcdef")
	svc, err := auth.New(ctx, st, auth.Options{PublicURL: public, RPID: "example.com", CookieDomain: "example.com", HashKey: key, BlockKey: key})
	if err != nil {
		f.Fatal(err)
	}
	rules, err := CompileRules([]RuleConfig{
		{Hosts: []string{"grafana.example.com"}, Policy: "passkey"},
		{Hosts: []string{"admin.example.com"}, Policy: "passkey", Groups: []string{"admins"}},
		{Hosts: []string{"public.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
	}, "deny")
	if err != nil {
		f.Fatal(err)
	}
	trusted, err := ParseTrustedProxies([]string{"127.0.0.0/8"})
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Options{Auth: svc, PublicURL: public, Trusted: trusted, Rules: rules,
		Redirects: RedirectPolicy{Portal: public, Hosts: rules.Hosts(), CookieDomain: "example.com"}})
	if err != nil {
		f.Fatal(err)
	}
	return h
}

// FuzzForwardHeaders feeds arbitrary X-Forwarded-* and X-Original-* values from a trusted proxy,
// with no session. Nothing may panic; the only 200 is the bypass path on public.example.com;
// no answer carries Remote-* headers; a target that parses is canonical.
func FuzzForwardHeaders(f *testing.F) {
	h := fuzzHandler(f)
	seeds := [][5]string{
		{"grafana.example.com", "/", "https", "GET", "https://grafana.example.com/"},
		{"public.example.com", "/public/x?y=1", "https", "GET", "https://public.example.com/public/x"},
		{"public.example.com", "/public/../admin", "https", "GET", "https://public.example.com/public/%2e%2e/admin"},
		{"PUBLIC.Example.COM.", "/public%2F..%2Fadmin", "HTTPS", "get", "https://public.example.com:443/public/./../admin"},
		{"public.example.com:443", "/admin?x=/public/", "http", "POST", "https://public.example.com/admin#/public/"},
		{"", "", "", "", ""},
		{"a,b", "/%zz", "ftp", "G E T", "/admin"},
		{"public.example.com", "/public/\\..\\admin", "https", "GET", "https://user@public.example.com/public/"},
		{"[::1]:80", "/public/%00", "https", "GET", "https://public.example.com/public/%C0%AE%C0%AE/admin"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	f.Fuzz(func(t *testing.T, host, uri, proto, method, original string) {
		set := func(r *http.Request, k, v string) {
			if v != "" {
				r.Header[k] = []string{v}
			}
		}
		fwd := httptest.NewRequest(http.MethodGet, "http://latchkey/.latchkey/auth/forward", nil)
		fwd.RemoteAddr = "127.0.0.1:1234"
		fwd.Header.Set("Accept", "text/html")
		set(fwd, "X-Forwarded-Host", host)
		set(fwd, "X-Forwarded-Uri", uri)
		set(fwd, "X-Forwarded-Proto", proto)
		set(fwd, "X-Forwarded-Method", method)
		req := httptest.NewRequest(http.MethodGet, "http://latchkey/.latchkey/auth/request", nil)
		req.RemoteAddr = "127.0.0.1:1234"
		set(req, "X-Original-Url", original)
		set(req, "X-Original-Method", method)

		for _, r := range []*http.Request{fwd, req} {
			var tg target
			var bad string
			peer, _ := PeerAddr(r)
			if r == fwd {
				tg, bad = h.forwardTarget(r, peer)
			} else {
				tg, bad = h.originalTarget(r, peer)
			}
			ok := bad == ""
			if ok {
				if c, cok := CanonicalHost(tg.host, tg.scheme); !cok || c != tg.host {
					t.Fatalf("target host %q is not canonical (%q)", tg.host, c)
				}
				if !strings.HasPrefix(tg.path, "/") || strings.Contains(tg.path, "/../") || strings.HasSuffix(tg.path, "/..") ||
					strings.Contains(tg.path, "/./") || strings.ContainsAny(tg.path, "?#\\\x00") {
					t.Fatalf("target path %q is not normalised", tg.path)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			for k := range w.Header() {
				if strings.HasPrefix(strings.ToLower(k), "remote-") {
					t.Fatalf("Remote-* header without a session: %v", w.Header())
				}
			}
			switch w.Code {
			case http.StatusOK:
				// A rule without a port matches the host on any port, so only the name counts.
				if name, _ := hostAndPort(tg.host); !ok || name != "public.example.com" || !strings.HasPrefix(tg.path, "/public/") {
					t.Fatalf("allowed without a session: host %q path %q (ok %v)", tg.host, tg.path, ok)
				}
			case http.StatusFound:
				if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, "https://auth.example.com/.latchkey/login?") {
					t.Fatalf("redirect to %q", loc)
				}
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			default:
				t.Fatalf("status %d", w.Code)
			}
		}
	})
}
