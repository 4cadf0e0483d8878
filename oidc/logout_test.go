package oidc_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/latchkeyhq/latchkey/oidc"
)

// logoutReceiver is a client's back-channel logout endpoint: it hands over each logout token.
func logoutReceiver(t *testing.T) (*httptest.Server, chan string) {
	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.ParseForm() != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		got <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// awaitToken waits for a logout token; the bound only keeps a broken poller from hanging the test.
func awaitToken(t *testing.T, got chan string) string {
	t.Helper()
	select {
	case tok := <-got:
		return tok
	case <-time.After(30 * time.Second):
		t.Fatal("no logout token arrived")
		return ""
	}
}

func TestBackchannelLogout(t *testing.T) {
	f := newFixture(t, fixtureOpts{run: true})
	recv, got := logoutReceiver(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true, BackchannelLogoutURI: recv.URL + "/logout"})
	silent := f.addClient(oidc.NewClient{Name: "silent", Trusted: true})
	_, idt := f.signIn(c, alice)
	f.signIn(silent, alice)
	var cl struct {
		SID string `json:"sid"`
	}
	idt.Claims(&cl)
	if cl.SID == "" {
		t.Fatal("no sid in the ID token")
	}
	if r := alice.b.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]string{}); r.StatusCode != http.StatusOK {
		t.Fatalf("revoke-all: %d", r.StatusCode)
	}
	raw := awaitToken(t, got)
	// go-oidc verifies the signature against the JWKS, the issuer and the audience.
	lt, err := f.rp.Verifier(&gooidc.Config{ClientID: c.id}).Verify(f.ctx, raw)
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var claims struct {
		SID    string         `json:"sid"`
		Events map[string]any `json:"events"`
		Nonce  *string        `json:"nonce"`
	}
	lt.Claims(&claims)
	if lt.Subject != alice.u.ID || claims.SID != cl.SID || claims.Events["http://schemas.openid.net/event/backchannel-logout"] == nil || claims.Nonce != nil {
		t.Fatalf("logout token claims: sub %q %+v", lt.Subject, claims)
	}
	// Sent once: a later session's sign-in and end bring exactly one more token.
	b2 := f.env.Client()
	b2.Login(alice.pk, "")
	bob := &user{u: alice.u, pk: alice.pk, b: b2}
	f.signIn(c, bob)
	if err := f.env.Store.SetUserDisabled(f.ctx, alice.u.ID, true); err != nil {
		t.Fatal(err)
	}
	awaitToken(t, got)
	// The poller audits a logout after sending it, in the loop that sent the second token.
	if f.env.Count("audit", "event = 'oidc_backchannel_logout'") < 1 {
		t.Fatal("logout not audited")
	}
	select {
	case extra := <-got:
		t.Fatalf("a logout token was sent twice: %s", extra)
	default:
	}
}
