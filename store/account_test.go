package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// TestAccountRevocation runs DisableUser, RevokeAccess and SetUserEmail (issue 16) on SQLite and
// on a real PostgreSQL: what they end, that they touch only their user, and that enabling a
// user revives nothing.
func TestAccountRevocation(t *testing.T) {
	eachBackend(t, func(e *env) {
		t, ctx, st, clk := e.t, e.ctx, e.st, e.clock
		alice, bob := e.user("alice"), e.user("bob")
		now := clk.Now()
		for i, u := range []store.User{alice, alice, bob} {
			if err := st.CreateSession(ctx, session(e, u.ID, uuid.NewString())); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateToken(ctx, store.Token{ID: uuid.NewString(), UserID: u.ID, Name: "t", Hash: hash(uuid.NewString()),
				Hosts: []string{"a.example.com"}, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			purpose := store.PurposeEnrol
			if i == 1 {
				purpose = store.PurposeRecover
			}
			if _, err := st.CreateInvite(ctx, store.Invite{TokenHash: hash(uuid.NewString()), UserID: u.ID, Purpose: purpose,
				ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		live := func(userID string) (sessions, tokens, links int) {
			n := ms(clk.Now())
			return e.count("sessions", "user_id = ? AND revoked_at = 0", userID),
				e.count("api_tokens", "user_id = ? AND revoked_at = 0", userID),
				e.count("invites", "user_id = ? AND used_at = 0 AND expires_at > ?", userID, n)
		}

		clk.Advance(time.Second)
		rv, err := st.DisableUser(ctx, alice.ID)
		if err != nil || rv != (store.Revoked{Sessions: 2, Tokens: 2, Links: 2}) {
			t.Fatalf("DisableUser = %+v, %v", rv, err)
		}
		if s, tk, l := live(alice.ID); s+tk+l != 0 {
			t.Fatalf("alice still has %d sessions, %d tokens, %d links", s, tk, l)
		}
		if s, tk, l := live(bob.ID); s != 1 || tk != 1 || l != 1 {
			t.Fatalf("bob lost something: %d sessions, %d tokens, %d links", s, tk, l)
		}
		if err := st.SetUserDisabled(ctx, alice.ID, false); err != nil {
			t.Fatal(err)
		}
		if s, tk, l := live(alice.ID); s+tk+l != 0 {
			t.Fatalf("enabling revived %d sessions, %d tokens, %d links", s, tk, l)
		}
		if _, err := st.DisableUser(ctx, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DisableUser of nobody: %v", err)
		}

		rv, err = st.RevokeAccess(ctx, bob.ID, false)
		if err != nil || rv != (store.Revoked{Sessions: 1}) || e.count("api_tokens", "user_id = ? AND revoked_at = 0", bob.ID) != 1 {
			t.Fatalf("RevokeAccess without tokens = %+v, %v", rv, err)
		}
		if rv, err = st.RevokeAccess(ctx, bob.ID, true); err != nil || rv != (store.Revoked{Tokens: 1}) {
			t.Fatalf("RevokeAccess with tokens = %+v, %v", rv, err)
		}

		if _, err := st.CreateInvite(ctx, store.Invite{TokenHash: hash("bob-recover"), UserID: bob.ID, Purpose: store.PurposeRecover,
			Email: bob.Email, ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetUserEmail(ctx, bob.ID, "bob@example.org"); err != nil {
			t.Fatal(err)
		}
		if u, _ := st.UserByID(ctx, bob.ID); u.Email != "bob@example.org" {
			t.Fatalf("e-mail = %q", u.Email)
		}
		if e.count("invites", "user_id = ? AND purpose = 'recover' AND expires_at > ?", bob.ID, ms(clk.Now())) != 0 {
			t.Fatal("a recovery link outlived the e-mail change")
		}
		if e.count("invites", "user_id = ? AND purpose = 'enrol' AND expires_at > ?", bob.ID, ms(clk.Now())) != 1 {
			t.Fatal("the e-mail change expired an enrolment link")
		}
		if err := st.SetUserEmail(ctx, uuid.NewString(), "x@example.org"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetUserEmail of nobody: %v", err)
		}
	})
}

func ms(t time.Time) int64 { return t.UnixMilli() }
