package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// TestOIDCStore runs the OpenID Provider's storage against every backend (issue 22).
func TestOIDCStore(t *testing.T) {
	eachBackend(t, testOIDC)
}

func testOIDC(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	se := session(e, alice.ID, "s1")
	if err := st.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}

	c := store.OIDCClient{ID: "cid", Name: "grafana", SecretHash: hash("secret"), RedirectURIs: []string{"https://a/cb", "https://a/cb,2"},
		Groups: []string{"ops"}, CreatedAt: e.clock.Now()}
	if err := st.CreateOIDCClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateOIDCClient(ctx, store.OIDCClient{ID: "other", Name: "grafana", RedirectURIs: []string{"x:/"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	got, err := st.OIDCClientByName(ctx, "grafana")
	if err != nil || got.ID != "cid" || !slices.Equal(got.RedirectURIs, c.RedirectURIs) || !slices.Equal(got.Groups, []string{"ops"}) || got.Public {
		t.Fatalf("client round trip: %+v %v", got, err)
	}
	if err := st.SetOIDCClientSecret(ctx, "grafana", hash("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.OIDCClient(ctx, "cid"); string(got.SecretHash) != string(hash("new")) {
		t.Fatal("secret not replaced")
	}

	t.Run("codes are redeemed once; a replay revokes the family", func(t *testing.T) {
		now := e.clock.Now()
		a := store.OIDCAuthRequest{ID: "r1", ClientID: "cid", Request: []byte(`{}`), CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if err := st.PutOIDCAuthRequest(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOIDCCode(ctx, "r1", hash("code"), now.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a code for an unapproved request: %v", err)
		}
		if err := st.ApproveOIDCAuthRequest(ctx, "r1", alice.ID, "s1", now, []byte(`{"amr":["hwk"]}`)); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOIDCCode(ctx, "r1", hash("code"), now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOIDCCode(ctx, "r1", hash("code2"), now.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a second code: %v", err)
		}
		if _, err := st.OIDCAuthRequestByID(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a request with a code is no longer pending: %v", err)
		}
		r, err := st.RedeemOIDCCode(ctx, hash("code"))
		if err != nil || r.UserID != alice.ID || r.SessionID != "s1" || string(r.Request) != `{"amr":["hwk"]}` {
			t.Fatalf("redeem: %+v %v", r, err)
		}
		tok := store.OIDCToken{Hash: hash("rt1"), Kind: store.OIDCRefresh, Family: "r1", ClientID: "cid", UserID: alice.ID,
			SessionID: "s1", Scopes: []string{"openid", "offline_access"}, AuthTime: now, AMR: []string{"hwk", "user"},
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}
		if err := st.CreateOIDCToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RedeemOIDCCode(ctx, hash("code")); !errors.Is(err, store.ErrReused) {
			t.Fatalf("second redemption: %v", err)
		}
		if s, _ := st.OIDCToken(ctx, hash("rt1")); s.RevokedAt.IsZero() {
			t.Fatal("the replay did not revoke the family")
		}
	})

	t.Run("refresh rotation, reuse, session state", func(t *testing.T) {
		now := e.clock.Now()
		tok := store.OIDCToken{Hash: hash("a"), Kind: store.OIDCRefresh, Family: "f2", ClientID: "cid", UserID: alice.ID,
			SessionID: "s1", Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour), FamilyExpiresAt: now.Add(time.Hour)}
		if err := st.CreateOIDCToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		s, err := st.OIDCToken(ctx, hash("a"))
		if err != nil || !s.SessionLive || s.UserDisabled || !slices.Equal(s.Scopes, []string{"openid"}) || !s.AuthTime.Equal(now.Truncate(time.Millisecond)) {
			t.Fatalf("token state: %+v %v", s, err)
		}
		next := tok
		next.Hash = hash("b")
		if err := st.RotateOIDCRefresh(ctx, hash("a"), next); err != nil {
			t.Fatal(err)
		}
		third := tok
		third.Hash = hash("c")
		if err := st.RotateOIDCRefresh(ctx, hash("a"), third); !errors.Is(err, store.ErrReused) {
			t.Fatalf("rotating a used token: %v", err)
		}
		if s, _ := st.OIDCToken(ctx, hash("b")); s.RevokedAt.IsZero() {
			t.Fatal("reuse did not revoke the family")
		}
		if _, err := st.OIDCToken(ctx, hash("c")); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a token was stored on a refused rotation")
		}
		tok.Hash, tok.Family = hash("d"), "f3"
		if err := st.CreateOIDCToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RevokeSessions(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if s, _ := st.OIDCToken(ctx, hash("d")); s.SessionLive {
			t.Fatal("a revoked session reads as live")
		}
	})

	t.Run("ended sessions for back-channel logout, claimed once", func(t *testing.T) {
		bob := e.user("bob")
		if err := st.CreateSession(ctx, session(e, bob.ID, "sb")); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateOIDCClient(ctx, store.OIDCClient{ID: "bc", Name: "bc", RedirectURIs: []string{"https://b/cb"},
			BackchannelLogoutURI: "https://b/logout", CreatedAt: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := st.RecordOIDCSession(ctx, "sb", "bc", bob.ID); err != nil {
				t.Fatal(err)
			}
		}
		st.RecordOIDCSession(ctx, "sb", "cid", bob.ID) // a client without a logout URI
		if ended, err := st.EndedOIDCSessions(ctx, 10); err != nil || len(ended) != 0 {
			t.Fatalf("a live session listed as ended: %v %v", ended, err)
		}
		if _, err := st.RevokeSessions(ctx, bob.ID); err != nil {
			t.Fatal(err)
		}
		ended, err := st.EndedOIDCSessions(ctx, 10)
		if err != nil || len(ended) != 1 || ended[0].LogoutURI != "https://b/logout" || ended[0].UserID != bob.ID {
			t.Fatalf("ended sessions: %+v %v", ended, err)
		}
		if won, err := st.ClaimOIDCSessionEnd(ctx, ended[0].ID); !won || err != nil {
			t.Fatalf("first claim: %v %v", won, err)
		}
		if won, _ := st.ClaimOIDCSessionEnd(ctx, ended[0].ID); won {
			t.Fatal("claimed twice")
		}
		if ended, _ := st.EndedOIDCSessions(ctx, 10); len(ended) != 0 {
			t.Fatalf("notified session listed again: %+v", ended)
		}
	})

	t.Run("consent, keys, sweep, client removal", func(t *testing.T) {
		if _, err := st.OIDCConsent(ctx, alice.ID, "cid"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		for _, sc := range [][]string{{"openid"}, {"openid", "email"}} {
			if err := st.PutOIDCConsent(ctx, alice.ID, "cid", sc); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := st.OIDCConsent(ctx, alice.ID, "cid"); err != nil || !slices.Equal(got, []string{"openid", "email"}) {
			t.Fatalf("consent: %v %v", got, err)
		}
		now := e.clock.Now()
		if err := st.AddOIDCKey(ctx, store.OIDCKey{ID: "k1", Alg: "RS256", Sealed: []byte{1}, CreatedAt: now}, false); err != nil {
			t.Fatal(err)
		}
		if err := st.AddOIDCKey(ctx, store.OIDCKey{ID: "k2", Alg: "RS256", Sealed: []byte{2}, CreatedAt: now}, false); err != nil {
			t.Fatal(err)
		}
		if keys, _ := st.OIDCKeys(ctx); len(keys) != 1 {
			t.Fatalf("first use added %d keys, want 1", len(keys))
		}
		e.clock.Advance(time.Second)
		if err := st.AddOIDCKey(ctx, store.OIDCKey{ID: "k3", Alg: "ES256", Sealed: []byte{3}, CreatedAt: e.clock.Now()}, true); err != nil {
			t.Fatal(err)
		}
		keys, _ := st.OIDCKeys(ctx)
		if len(keys) != 2 || keys[0].ID != "k3" || !keys[0].RetiredAt.IsZero() || keys[1].RetiredAt.IsZero() {
			t.Fatalf("after rotation: %+v", keys)
		}
		if err := st.DropOIDCKeys(ctx, e.clock.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if keys, _ := st.OIDCKeys(ctx); len(keys) != 1 {
			t.Fatalf("retired key not dropped: %+v", keys)
		}
		e.clock.Advance(48 * time.Hour)
		if err := st.SweepOIDC(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count("oidc_tokens", ""); n != 0 {
			t.Fatalf("%d expired tokens left after the sweep", n)
		}
		if n := e.count("oidc_auth_requests", ""); n != 0 {
			t.Fatalf("%d expired requests left", n)
		}
		if err := st.DeleteOIDCClient(ctx, "grafana"); err != nil {
			t.Fatal(err)
		}
		if n := e.count("oidc_consents", ""); n != 0 {
			t.Fatal("consents outlived their client")
		}
		if err := st.DeleteOIDCClient(ctx, "grafana"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second removal: %v", err)
		}
	})
}
