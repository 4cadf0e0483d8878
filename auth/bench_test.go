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
