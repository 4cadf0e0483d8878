package auth_test

import (
	"net/http/httptest"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// BenchmarkAuthenticate measures the session check that every forward-auth request makes:
// cookie parsing, securecookie verification and decryption, and the in-memory view lookup.
func BenchmarkAuthenticate(b *testing.B) {
	env := lktest.New(b, lktest.Config{})
	_, token := env.AddUser("bench")
	c := env.Client()
	c.Enrol(lktest.NewPasskey(), token)
	req := httptest.NewRequest("GET", "/.latchkey/auth/forward", nil)
	req.Header.Set("Cookie", "_ga=GA1.2.3; latchkey_session="+c.Session()+"; theme=dark")
	if _, ok := env.Auth.Authenticate(req); !ok {
		b.Fatal("session not accepted")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := env.Auth.Authenticate(req); !ok {
			b.Fatal("session not accepted")
		}
	}
}

// BenchmarkAuthenticateHostSeveralDomains is the same check with three domains configured
// (issue 23): the host picks the domain and its codec, and the session's domain is compared.
func BenchmarkAuthenticateHostSeveralDomains(b *testing.B) {
	env := lktest.New(b, lktest.Config{PublicURL: "https://auth.example.com", CookieDomain: "example.com", RPID: "example.com",
		Domains: []lktest.DomainConfig{{Domain: "example.net", PublicURL: "https://auth.example.net"},
			{Domain: "example.org", PublicURL: "https://auth.example.org"}}})
	_, token := env.AddUser("bench")
	c := env.Client()
	c.Enrol(lktest.NewPasskey(), token)
	req := httptest.NewRequest("GET", "/.latchkey/auth/forward", nil)
	req.Header.Set("Cookie", "_ga=GA1.2.3; latchkey_session="+c.Session()+"; theme=dark")
	if _, ok := env.Auth.AuthenticateHost(req, "grafana.example.com"); !ok {
		b.Fatal("session not accepted")
	}
	if _, ok := env.Auth.AuthenticateHost(req, "wiki.example.org"); ok {
		b.Fatal("example.com session accepted on example.org")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := env.Auth.AuthenticateHost(req, "grafana.example.com"); !ok {
			b.Fatal("session not accepted")
		}
	}
}
