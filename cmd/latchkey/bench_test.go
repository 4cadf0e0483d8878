package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// BenchmarkAppForwardAuth measures one forward-auth check through the whole application as
// `serve` wires it (request logging, metrics, the proxy handler and the auth service), with a
// valid session cookie. It complements proxy's BenchmarkForwardAuthValidCookie, which measures
// the handler alone.
func BenchmarkAppForwardAuth(b *testing.B) {
	cfg := Default()
	cfg.DataDir = b.TempDir()
	cfg.Log.Level = "warn"
	cfg.AccessControl.Rules = []proxy.RuleConfig{{Hosts: []string{"app.localhost"}, Policy: "passkey"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := buildApp(ctx, cfg, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer a.store.Close()
	handler := a.handler
	srv := httptest.NewServer(handler)
	defer srv.Close()
	if err := bootstrap(ctx, a, io.Discard); err != nil {
		b.Fatal(err)
	}
	admin, err := a.store.UserByName(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	env := lktest.Remote(b, srv.URL, a.public)
	token := enrolmentToken(b, a, admin.ID)
	c := env.Client()
	c.Enrol(lktest.NewPasskey(), token)
	req := httptest.NewRequest(http.MethodGet, "/.latchkey/auth/forward", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-Method", "GET")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "app.localhost")
	req.Header.Set("X-Forwarded-Uri", "/d/dashboard?orgId=1")
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("Cookie", "latchkey_session="+c.Session())
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("check: %d", w.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
	}
}

// enrolmentToken makes a fresh enrolment link for a user and returns its token.
func enrolmentToken(tb testing.TB, a *app, userID string) string {
	tb.Helper()
	link, err := auth.NewEnrolmentLink(context.Background(), a.store, a.public, userID, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(link)
	if err != nil {
		tb.Fatal(err)
	}
	return u.Query().Get("token")
}
