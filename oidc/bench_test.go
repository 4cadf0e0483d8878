package oidc_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/oidc"
)

// The OpenID Provider's hot endpoints, measured in process (handler cost, no network) next to
// the forward-auth check they are compared with (issue 22): run
//
//	go test ./oidc -run '^$' -bench . -benchtime 2s
//
// and compare ns/op. The token endpoint writes to the store on every call (rotation), userinfo
// reads it; forward auth reads memory only.

func benchFixture(b *testing.B) (*fixture, *rpClient, *user, http.Handler) {
	f := newFixture(b)
	u := f.user("bench", "admins")
	c := f.addClient(oidc.NewClient{Name: "bench", Trusted: true})
	return f, c, u, f.env.Server.Config.Handler
}

func BenchmarkForwardAuthCheck(b *testing.B) {
	f, _, u, h := benchFixture(b)
	req := httptest.NewRequest(http.MethodGet, "/.latchkey/auth/forward", nil)
	req.Host = f.env.Public.Host
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Forwarded-Host", "app.localhost")
	req.Header.Set("X-Forwarded-Uri", "/")
	req.Header.Set("Cookie", "latchkey_session="+u.b.Session())
	req.RemoteAddr = "127.0.0.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("forward auth: %d", w.Code)
		}
	}
}

func BenchmarkUserinfo(b *testing.B) {
	f, c, u, h := benchFixture(b)
	tok, _ := f.signIn(c, u)
	req := httptest.NewRequest(http.MethodGet, oidc.Prefix+"/userinfo", nil)
	req.Host = f.env.Public.Host
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.RemoteAddr = "127.0.0.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("userinfo: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkTokenRefresh is the token endpoint as apps use it most: a refresh grant with client
// authentication, rotating the refresh token (each iteration presents the one it was last given)
// and signing a new ID token.
func BenchmarkTokenRefresh(b *testing.B) {
	f, c, u, h := benchFixture(b)
	tok, _ := f.signIn(c, u)
	rt := tok.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		req := httptest.NewRequest(http.MethodPost, oidc.Prefix+"/oauth/token", strings.NewReader(form.Encode()))
		req.Host = f.env.Public.Host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.id, c.secret)
		req.RemoteAddr = "127.0.0.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("token: %d %s", w.Code, w.Body)
		}
		rt = jsonField(w.Body.String(), "refresh_token")
	}
}

func jsonField(body, key string) string {
	i := strings.Index(body, `"`+key+`":"`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(key)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}
