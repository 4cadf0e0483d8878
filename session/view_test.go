package session

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// clock is a settable clock for the business time and the staleness clock of a view.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a real SQLite file with two handles on it: the server's (the view reads through it)
// and another process's (as the CLI or another replica writes).
type fixture struct {
	t     testing.TB
	ctx   context.Context
	path  string
	st    *store.Store // the server's handle
	other *store.Store // another process on the same file
	now   *clock       // business clock of store and view
	mono  *clock       // staleness clock of the view
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "latchkey.db"),
		now:  &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		mono: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	var err error
	if f.st, err = store.Open(f.ctx, store.Options{Path: f.path, Now: f.now.Now}); err != nil {
		t.Fatal(err)
	}
	if f.other, err = store.Open(f.ctx, store.Options{Path: f.path, Now: f.now.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close(); f.other.Close() })
	return f
}

func (f *fixture) view() *View {
	f.t.Helper()
	v := New(f.st, Options{Now: f.now.Now, Clock: f.mono.Now, Inactivity: 2 * time.Hour,
		PollInterval: time.Second, MaxStaleness: 5 * time.Second})
	if err := v.Load(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fixture) user(st *store.Store, name string) store.User {
	f.t.Helper()
	u := store.User{ID: uuid.NewString(), Name: name, Groups: []string{"g"}}
	if err := st.CreateUser(f.ctx, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) session(st *store.Store, userID string) (ID, store.Session, int64) {
	f.t.Helper()
	id, err := NewID()
	if err != nil {
		f.t.Fatal(err)
	}
	now := f.now.Now()
	se := store.Session{ID: EncodeID(id), UserID: userID, Method: MethodPasskey, CreatedAt: now, VerifiedAt: now,
		LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	rev, err := st.CreateSessionRev(f.ctx, se)
	if err != nil {
		f.t.Fatal(err)
	}
	return id, se, rev
}

func (f *fixture) revoke(st *store.Store, id ID) {
	f.t.Helper()
	if err := st.RevokeSession(f.ctx, "", EncodeID(id)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) expect(v *View, id ID, want Result, what string) {
	f.t.Helper()
	if _, got := v.Check(f.ctx, id, f.now.Now()); got != want {
		f.t.Fatalf("%s: check = %d, want %d", what, got, want)
	}
}

// blockOnce returns a hook that, on the first read of the given kind, signals reached and waits
// for release; every other read passes.
func blockOnce(kind string) (hook func(string), reached, release chan struct{}) {
	reached, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func(k string) {
		if k != kind {
			return
		}
		once.Do(func() {
			close(reached)
			<-release
		})
	}, reached, release
}

// TestFetchVsRevoke: a fetch of an unknown session reads it live, then stalls before inserting
// it; meanwhile the session is revoked and the revocation applied. The late insert must not bring
// the session back (issue 17's lost update in fetch).
func TestFetchVsRevoke(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	u := f.user(f.other, "alice")
	id, _, _ := f.session(f.other, u.ID) // made by another process; the view has not polled
	hook, reached, release := blockOnce("fetch")
	v.hookRead = hook
	res := make(chan Result, 1)
	go func() {
		_, r := v.Check(f.ctx, id, f.now.Now())
		res <- r
	}()
	<-reached // the fetch has read the session, live, and not inserted it yet
	f.revoke(f.other, id)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expect(v, id, Refused, "after the revocation was applied, with the fetch in flight")
	close(release)
	<-res // what the racing check answered is not the point: what the view holds after is
	f.expect(v, id, Refused, "after the stalled fetch inserted its older read")
	f.mono.Advance(2 * time.Second) // past the ask-once interval: the store is asked again
	f.expect(v, id, Refused, "later")
}

// TestLoadVsRevoke: a full load reads a snapshot with the session live and stalls before applying
// it; meanwhile the revocation is applied. The older snapshot must not revive the session.
func TestLoadVsRevoke(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	u := f.user(f.other, "alice")
	id, _, _ := f.session(f.other, u.ID)
	hook, reached, release := blockOnce("load")
	v.hookRead = hook
	done := make(chan error, 1)
	go func() { done <- v.Load(f.ctx) }() // a reload, as after a pruned change log
	<-reached
	f.revoke(f.other, id)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expect(v, id, Refused, "after the revocation, with the load in flight")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.expect(v, id, Refused, "after the stalled load applied its older snapshot")
}

// TestAddVsRevoke: the process that made a session adds it to its view with the revision of its
// creation; when a revocation was applied first (another process revoked it at once), the add
// must not revive it. And an add followed by a revocation ends it.
func TestAddVsRevoke(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	u := f.user(f.st, "alice")
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	id, row, rev := f.session(f.st, u.ID)
	f.revoke(f.other, id)
	if err := v.CatchUp(f.ctx); err != nil { // another handler's Refresh got there first
		t.Fatal(err)
	}
	v.Add(row, rev)
	f.expect(v, id, Refused, "a revoked session added late")

	id2, row2, rev2 := f.session(f.st, u.ID)
	v.Add(row2, rev2)
	f.expect(v, id2, Allowed, "a session added at once")
	f.revoke(f.other, id2)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expect(v, id2, Refused, "an added session, revoked")
	v.Add(row2, rev2) // a retried add of the same row
	f.expect(v, id2, Refused, "an added session, revoked, added again")
}

// TestUserChangesReachTheView: tokens made, users disabled and deleted by another process reach
// the view with one catch-up each.
func TestUserChangesReachTheView(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	alice := f.user(f.st, "alice")
	bob := f.user(f.st, "bob")
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	a1, r1, rev1 := f.session(f.st, alice.ID)
	v.Add(r1, rev1)
	b1, rb, revb := f.session(f.st, bob.ID)
	v.Add(rb, revb)
	hash := sha256.Sum256([]byte("lk_token"))
	tok := store.Token{ID: uuid.NewString(), UserID: bob.ID, Name: "ci", Hash: hash[:], Hosts: []string{"app.example.com"},
		CreatedAt: f.now.Now(), ExpiresAt: f.now.Now().Add(time.Hour)}
	if err := f.other.CreateToken(f.ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, r := v.Token(hash, f.now.Now()); r != Refused {
		t.Fatalf("a token made elsewhere, before the poll: %d", r)
	}
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	if id, r := v.Token(hash, f.now.Now()); r != Allowed || id.User.Name != "bob" || id.TokenHosts[0] != "app.example.com" {
		t.Fatalf("a token made elsewhere, after one poll: %d %+v", r, id)
	}
	f.expect(v, a1, Allowed, "alice")
	// Disabling bob (another process) ends his sessions and tokens; alice is untouched.
	if err := f.other.SetUserDisabled(f.ctx, bob.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expect(v, b1, Refused, "a disabled user's session")
	if _, r := v.Token(hash, f.now.Now()); r != Refused {
		t.Fatalf("a disabled user's token: %d", r)
	}
	f.expect(v, a1, Allowed, "alice after bob was disabled")
	// Deleting alice ends hers.
	if err := f.other.DeleteUser(f.ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expect(v, a1, Refused, "a deleted user's session")
}

// TestUnknownCookieAskedOncePerInterval: a validly signed cookie of a session the store does not
// have costs one read per interval, however often it is replayed.
func TestUnknownCookieAskedOncePerInterval(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	var reads int
	v.hookRead = func(k string) {
		if k == "fetch" {
			reads++
		}
	}
	id, _ := NewID()
	for range 100 {
		f.expect(v, id, Refused, "an unknown session")
	}
	if reads != 1 {
		t.Fatalf("an unknown session replayed 100 times cost %d reads, want 1", reads)
	}
	f.mono.Advance(1500 * time.Millisecond)
	f.expect(v, id, Refused, "an unknown session, next interval")
	if reads != 2 {
		t.Fatalf("after the interval: %d reads, want 2", reads)
	}
}

// TestIdleSessionAskedOncePerInterval: an idle session (past the inactivity limit here) is asked
// about at most once per interval; another replica's more recent use revives it.
func TestIdleSessionAskedOncePerInterval(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	u := f.user(f.st, "alice")
	id, row, rev := f.session(f.st, u.ID)
	v.Add(row, rev)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.now.Advance(3 * time.Hour)
	var reads int
	v.hookRead = func(k string) {
		if k == "fetch" {
			reads++
		}
	}
	for range 50 {
		f.expect(v, id, Refused, "an idle session")
	}
	if reads != 1 {
		t.Fatalf("an idle session replayed 50 times cost %d reads, want 1", reads)
	}
	// Another replica saw it a minute ago and flushed that.
	if err := f.other.TouchSessions(f.ctx, map[string]time.Time{row.ID: f.now.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	f.expect(v, id, Refused, "within the same interval, the store is not asked")
	f.mono.Advance(2 * time.Second)
	f.expect(v, id, Allowed, "seen elsewhere recently")
	if reads != 2 {
		t.Fatalf("reads = %d, want 2", reads)
	}
}

// TestStaleFailsClosedAndRecovers: past MaxStaleness without a confirmed poll, checks answer
// Stale (sessions and tokens); a poll that the store answers, even with no change, recovers.
func TestStaleFailsClosedAndRecovers(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	u := f.user(f.st, "alice")
	id, row, rev := f.session(f.st, u.ID)
	v.Add(row, rev)
	hash := sha256.Sum256([]byte("lk_t"))
	if err := f.st.CreateToken(f.ctx, store.Token{ID: "t1", UserID: u.ID, Name: "t", Hash: hash[:], Hosts: []string{"h"},
		CreatedAt: f.now.Now(), ExpiresAt: f.now.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.mono.Advance(4 * time.Second)
	f.expect(v, id, Allowed, "within the bound")
	f.mono.Advance(2 * time.Second)
	if got, r := v.Check(f.ctx, id, f.now.Now()); r != Stale || !got.Stale || got.User != nil {
		t.Fatalf("past the bound: %d %+v", r, got)
	}
	if _, r := v.Token(hash, f.now.Now()); r != Stale {
		t.Fatalf("token past the bound: %d", r)
	}
	if v.Fresh() {
		t.Fatal("Fresh past the bound")
	}
	if err := v.CatchUp(f.ctx); err != nil { // nothing changed: the empty answer confirms
		t.Fatal(err)
	}
	f.expect(v, id, Allowed, "after the store answered again")

	// An unreachable store: the poll fails and the view goes stale on its own.
	f.st.Close()
	if err := v.CatchUp(f.ctx); err == nil {
		t.Fatal("a poll of a closed store succeeded")
	}
	f.expect(v, id, Allowed, "a failed poll within the bound still answers")
	f.mono.Advance(6 * time.Second)
	f.expect(v, id, Stale, "a failed poll past the bound")
}

// TestRevocationCostIsTheChange: a revocation made by another process reaches the view in one
// poll, and the poll re-reads one session however many the view holds.
func TestRevocationCostIsTheChange(t *testing.T) {
	f := newFixture(t)
	u := f.user(f.st, "alice")
	fillSessions(t, f.st, u.ID, 5000, f.now.Now())
	v := f.view()
	if n := v.Sessions(); n != 5000 {
		t.Fatalf("loaded %d sessions, want 5000", n)
	}
	id, row, rev := f.session(f.st, u.ID)
	v.Add(row, rev)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	var reads []string
	v.hookRead = func(k string) { reads = append(reads, k) }
	f.revoke(f.other, id)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.expect(v, id, Refused, "revoked by another process, after one poll")
	if len(reads) != 1 || reads[0] != "change" {
		t.Fatalf("the revocation cost reads %v, want one change re-read", reads)
	}
}

// TestConcurrentAskersShareOneRead: many checks of one unknown cookie at once cost one store read;
// the first read is held until the others have queued behind it or found its answer.
func TestConcurrentAskersShareOneRead(t *testing.T) {
	f := newFixture(t)
	v := f.view()
	var mu sync.Mutex
	reads := 0
	first := make(chan struct{})
	release := make(chan struct{})
	v.hookRead = func(k string) {
		if k != "fetch" {
			return
		}
		mu.Lock()
		reads++
		n := reads
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
	}
	id, _ := NewID()
	var wg sync.WaitGroup
	wg.Go(func() { v.Check(f.ctx, id, f.now.Now()) })
	<-first
	for range 20 {
		wg.Go(func() {
			if _, r := v.Check(f.ctx, id, f.now.Now()); r != Refused {
				t.Errorf("an unknown session: %d", r)
			}
		})
	}
	close(release)
	wg.Wait()
	if reads != 1 {
		t.Fatalf("21 concurrent checks of one unknown cookie cost %d reads, want 1", reads)
	}
}

// TestOwnSessionsCostNoReads: sessions this process made (Add with the store's revision) come
// back through the change log without a re-read each, so a burst of logins costs the view no
// store reads and cannot push it past its staleness bound; another process's sessions are read.
func TestOwnSessionsCostNoReads(t *testing.T) {
	f := newFixture(t)
	u := f.user(f.st, "burst")
	v := f.view()
	var reads []string
	v.hookRead = func(k string) { reads = append(reads, k) }
	var ids []ID
	for range 300 {
		id, row, rev := f.session(f.st, u.ID)
		v.Add(row, rev)
		ids = append(ids, id)
	}
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(reads) != 0 {
		t.Fatalf("300 own sessions cost %d re-reads (%v), want none", len(reads), reads[:min(3, len(reads))])
	}
	for _, id := range ids {
		f.expect(v, id, Allowed, "an own session after the poll")
	}
	other, _, _ := f.session(f.other, u.ID)
	if err := v.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(reads) != 1 {
		t.Fatalf("a session made by another process cost %d reads, want 1", len(reads))
	}
	f.expect(v, other, Allowed, "another process's session after the poll")
}
