package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/store"
)

func newClock() *lktest.Clock { return lktest.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)) }

// opener opens (again) one database; every call is a new *store.Store, as a restart would make.
type opener func(ctx context.Context, now func() time.Time) (*store.Store, error)

// database is one empty database: open runs the store (with migrations), raw is a plain handle
// that never migrates, for looking at what a refused open left behind.
type database struct {
	open opener
	raw  func() (*sql.DB, error)
}

// backend makes empty databases of one dialect.
type backend struct {
	name  string
	fresh func(t *testing.T) database
}

// backends are the implementations the one suite runs against: SQLite always, PostgreSQL on a
// real server (skipped with a reason when the server binaries are missing, fatal under CI=true).
func backends() []backend {
	return []backend{
		{name: "sqlite", fresh: func(t *testing.T) database {
			path := filepath.Join(t.TempDir(), "latchkey.db")
			return database{
				open: func(ctx context.Context, now func() time.Time) (*store.Store, error) {
					return store.Open(ctx, store.Options{Path: path, Now: now})
				},
				raw: func() (*sql.DB, error) { return sql.Open("sqlite", "file:"+path) },
			}
		}},
		{name: "postgres", fresh: nil}, // filled in per run: the server is started inside the subtest
	}
}

type env struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	clock *lktest.Clock
	open  opener
	db    database
	fresh func() database
}

func (e *env) user(name string) store.User {
	e.t.Helper()
	u := store.User{ID: uuid.NewString(), Name: name, DisplayName: strings.ToUpper(name), Email: name + "@example.com",
		Groups: []string{"staff", "ops"}}
	if err := e.st.CreateUser(e.ctx, u); err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func (e *env) rev() int64 {
	e.t.Helper()
	n, err := e.st.Revision(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) count(table, where string, args ...any) int {
	e.t.Helper()
	q := "SELECT COUNT(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	if e.st.Dialect() == store.Postgres {
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	var n int
	if err := e.st.DB().QueryRowContext(e.ctx, q, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// dump renders every table, for "nothing changed" checks.
func dump(t *testing.T, st *store.Store) string {
	t.Helper()
	return dumpDB(t, st.DB())
}

func dumpDB(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"schema_version", "revision", "users", "credentials", "invites", "recovery_codes",
		"ceremonies", "sessions", "api_tokens", "audit"} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "[%s] %v\n", table, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

// race runs fn in n goroutines released together and counts the nil results.
func race(n int, fn func(i int) error) (ok int64, errs []error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	start := make(chan struct{})
	var wins atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			wins.Add(1)
		}(i)
	}
	close(start)
	wg.Wait()
	return wins.Load(), errs
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// postgresFresh makes a fresh database on srv for each call.
func postgresFresh(srv *lktest.PGServer) func(t *testing.T) database {
	return func(t *testing.T) database {
		dsn := srv.NewDatabase(t)
		return database{
			open: func(ctx context.Context, now func() time.Time) (*store.Store, error) {
				return store.OpenPostgres(ctx, dsn, store.Options{Now: now})
			},
			raw: func() (*sql.DB, error) { return sql.Open("pgx", dsn) },
		}
	}
}

// eachBackend runs fn on a fresh store of every backend: SQLite, and a real PostgreSQL started
// for the run.
func eachBackend(t *testing.T, fn func(e *env)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				b.fresh = postgresFresh(lktest.StartPostgres(t))
			}
			ctx := context.Background()
			clk := newClock()
			db := b.fresh(t)
			st, err := db.open(ctx, clk.Now)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			fn(&env{t: t, ctx: ctx, st: st, clock: clk, open: db.open, db: db, fresh: func() database { return b.fresh(t) }})
		})
	}
}

// TestStore runs the one store suite against every backend.
func TestStore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				b.fresh = postgresFresh(lktest.StartPostgres(t))
			}
			for _, c := range suite {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					ctx := context.Background()
					clk := newClock()
					db := b.fresh(t)
					st, err := db.open(ctx, clk.Now)
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					t.Cleanup(func() { st.Close() })
					c.fn(&env{t: t, ctx: ctx, st: st, clock: clk, open: db.open, db: db, fresh: func() database { return b.fresh(t) }})
				})
			}
		})
	}
}

var suite = []struct {
	name string
	fn   func(e *env)
}{
	{"users", testUsers},
	{"credentials", testCredentials},
	{"invites", testInvites},
	{"recovery_codes", testRecoveryCodes},
	{"ceremonies", testCeremonies},
	{"sessions", testSessions},
	{"tokens", testTokens},
	{"audit", testAudit},
	{"snapshot", testSnapshot},
	{"migrations", testMigrations},
	{"concurrent_open", testConcurrentOpen},
	{"change_log", testChangeLog},
	{"retention", testRetention},
}

func testUsers(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	if err := st.CreateUser(ctx, store.User{ID: uuid.NewString(), Name: "alice"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate name: got %v, want ErrConflict", err)
	}
	got, err := st.UserByName(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != alice.ID || got.Email != alice.Email || strings.Join(got.Groups, ",") != "staff,ops" || got.Disabled ||
		!got.CreatedAt.Equal(e.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("round trip: got %+v, want %+v", got, alice)
	}
	// Names are matched without regard to case: "Alice" finds alice and cannot be created beside her.
	if err := st.CreateUser(ctx, store.User{ID: uuid.NewString(), Name: "ALICE"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("case variant of a taken name: got %v, want ErrConflict", err)
	}
	for _, typed := range []string{"Alice", "ALICE", "aLiCe"} {
		if got, err := st.UserByName(ctx, typed); err != nil || got.ID != alice.ID {
			t.Fatalf("UserByName(%q) = %v, %v; want alice", typed, got.Name, err)
		}
	}
	if _, err := st.UserByName(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := st.UserByID(ctx, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	alice.DisplayName, alice.Email, alice.Groups = "Alice A.", "a@example.org", nil
	rev := e.rev()
	if err := st.UpdateUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if e.rev() <= rev {
		t.Error("UpdateUser did not bump the revision")
	}
	got, _ = st.UserByID(ctx, alice.ID)
	if got.DisplayName != "Alice A." || got.Email != "a@example.org" || len(got.Groups) != 0 {
		t.Fatalf("after update: %+v", got)
	}
	e.user("bob")
	users, err := st.Users(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" {
		t.Fatalf("Users: %v %+v", err, users)
	}

	// Disabling ends every session of the user and moves the revision.
	if err := st.CreateSession(ctx, session(e, alice.ID, "s-alice")); err != nil {
		t.Fatal(err)
	}
	rev = e.rev()
	if err := st.SetUserDisabled(ctx, alice.ID, true); err != nil {
		t.Fatal(err)
	}
	if e.rev() <= rev {
		t.Error("disabling did not bump the revision")
	}
	got, _ = st.UserByID(ctx, alice.ID)
	se, _ := st.Session(ctx, "s-alice")
	if !got.Disabled || se.RevokedAt.IsZero() {
		t.Fatalf("disabled=%v session revoked at %v", got.Disabled, se.RevokedAt)
	}
	if err := st.SetUserDisabled(ctx, alice.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ = st.UserByID(ctx, alice.ID); got.Disabled {
		t.Fatal("still disabled")
	}
	if err := st.SetUserDisabled(ctx, uuid.NewString(), true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("disable unknown: %v", err)
	}

	// Deleting cascades to everything of the user.
	registerCredential(e, alice.ID, []byte("cred-alice"), 0)
	if err := st.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"credentials", "sessions", "invites"} {
		if n := e.count(table, "user_id = ?", alice.ID); n != 0 {
			t.Errorf("%s of the deleted user: %d rows", table, n)
		}
	}
	if err := st.DeleteUser(ctx, alice.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func session(e *env, userID, id string) store.Session {
	now := e.clock.Now()
	return store.Session{ID: id, UserID: userID, CredentialID: []byte("cred-" + id), Method: store.MethodPasskey,
		CreatedAt: now, VerifiedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), UserAgent: "test", IP: "192.0.2.1",
		BackupEligible: true, AAGUID: bytes.Repeat([]byte{0xab}, 16)}
}

func registerCredential(e *env, userID string, id []byte, invite int64) {
	e.t.Helper()
	err := e.st.RegisterCredential(e.ctx, store.Enrolment{InviteID: invite, Credential: store.Credential{
		ID: id, UserID: userID, Name: "key", PublicKey: []byte{0xa5, 0x01, 0x02}, SignCount: 0}})
	if err != nil {
		e.t.Fatalf("register credential: %v", err)
	}
}

func testCredentials(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	if has, err := st.HasAnyPasskey(ctx); err != nil || has {
		t.Fatalf("HasAnyPasskey on an empty store: %v %v", has, err)
	}
	id := []byte{0x00, 0xff, 0x10, 0x80, 0x00} // a NUL and high bytes: a blob, not text
	aaguid := bytes.Repeat([]byte{0x42}, 16)
	c := store.Credential{ID: id, UserID: alice.ID, Name: "phone", PublicKey: []byte{0xa5, 0x01, 0x02, 0x03, 0x26},
		SignCount: 4294967295, AAGUID: aaguid, Transports: []string{"internal", "hybrid"}, BackupEligible: true,
		BackupState: true, AttestationFormat: "none", AttestationType: "none"}
	codes := [][]byte{hash("a"), hash("b")}
	if err := st.RegisterCredential(ctx, store.Enrolment{Credential: c, RecoveryCodes: codes}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Credential(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.ID, id) || !bytes.Equal(got.PublicKey, c.PublicKey) || !bytes.Equal(got.AAGUID, aaguid) ||
		got.SignCount != c.SignCount || strings.Join(got.Transports, ",") != "internal,hybrid" || !got.BackupEligible ||
		!got.BackupState || got.AttestationFormat != "none" || got.CreatedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Fatalf("round trip: %+v", got)
	}
	if rc, _ := st.RecoveryCodes(ctx, alice.ID); len(rc) != 2 {
		t.Fatalf("recovery codes written with the credential: %d", len(rc))
	}
	if has, _ := st.HasAnyPasskey(ctx); !has {
		t.Fatal("HasAnyPasskey after a registration")
	}
	// The same credential ID again, even for another user, is a conflict and writes nothing.
	bob := e.user("bob")
	before := dump(t, st)
	if err := st.RegisterCredential(ctx, store.Enrolment{Credential: store.Credential{ID: id, UserID: bob.ID, PublicKey: []byte{1}},
		RecoveryCodes: [][]byte{hash("c")}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate credential ID: %v", err)
	}
	if after := dump(t, st); after != before {
		t.Fatalf("a refused registration wrote:\n%s\nwas:\n%s", after, before)
	}
	if _, err := st.Credential(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown credential: %v", err)
	}

	// Sign-count compare-and-set: of two logins with one old value, one wins.
	wins, _ := race(20, func(i int) error {
		return st.UseCredential(ctx, store.CredentialUse{ID: id, OldSignCount: c.SignCount, SignCount: uint32(i), At: e.clock.Now()})
	})
	if wins != 1 {
		t.Fatalf("UseCredential with one old sign count: %d winners, want 1", wins)
	}
	got, _ = st.Credential(ctx, id)
	if got.LastUsedAt.IsZero() || got.BackupEligible {
		t.Fatalf("after use: %+v", got)
	}
	if err := st.UseCredential(ctx, store.CredentialUse{ID: id, OldSignCount: c.SignCount, SignCount: 9}); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("stale sign count: %v", err)
	}

	registerCredential(e, alice.ID, []byte("second"), 0)
	list, err := st.Credentials(ctx, alice.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("Credentials: %v %d", err, len(list))
	}
	if err := st.RenameCredential(ctx, alice.ID, id, "laptop"); err != nil {
		t.Fatal(err)
	}
	if err := st.RenameCredential(ctx, bob.ID, id, "mine"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("rename of someone else's passkey: %v", err)
	}
	if got, _ = st.Credential(ctx, id); got.Name != "laptop" {
		t.Fatalf("name %q", got.Name)
	}

	// Removing a passkey ends the sessions it made.
	se := session(e, alice.ID, "made-by-key")
	se.CredentialID = id
	if err := st.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteCredential(ctx, bob.ID, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of someone else's passkey: %v", err)
	}
	rev := e.rev()
	if err := st.DeleteCredential(ctx, alice.ID, id); err != nil {
		t.Fatal(err)
	}
	if e.rev() <= rev {
		t.Error("DeleteCredential did not bump the revision")
	}
	if s, _ := st.Session(ctx, "made-by-key"); s.RevokedAt.IsZero() {
		t.Fatal("the session made with the removed passkey is live")
	}
	if err := st.DeleteCredential(ctx, "", []byte("second")); err != nil {
		t.Fatalf("admin delete: %v", err)
	}
}

func testInvites(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	now := e.clock.Now()
	id, err := st.CreateInvite(ctx, store.Invite{TokenHash: hash("t1"), UserID: alice.ID, Purpose: store.PurposeEnrol,
		Email: "a@example.com", ExpiresAt: now.Add(time.Hour)})
	if err != nil || id == 0 {
		t.Fatalf("create invite: %d %v", id, err)
	}
	in, err := st.Invite(ctx, hash("t1"))
	if err != nil || in.ID != id || in.Purpose != store.PurposeEnrol || in.Email != "a@example.com" || !in.UsedAt.IsZero() {
		t.Fatalf("Invite: %+v %v", in, err)
	}
	if _, err := st.CreateInvite(ctx, store.Invite{TokenHash: hash("t1"), UserID: alice.ID, Purpose: store.PurposeEnrol,
		ExpiresAt: now.Add(time.Hour)}); err == nil {
		t.Fatal("a second invite with the same token hash was accepted")
	}
	if _, err := st.Invite(ctx, hash("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown invite: %v", err)
	}

	// Single use, also when twenty enrolments race on it: one credential, one used invite.
	wins, errs := race(20, func(i int) error {
		return st.RegisterCredential(ctx, store.Enrolment{InviteID: id, Credential: store.Credential{
			ID: []byte(fmt.Sprintf("cred-%d", i)), UserID: alice.ID, PublicKey: []byte{1}}})
	})
	if wins != 1 {
		t.Fatalf("racing enrolments on one invite: %d winners, want 1 (errors %v)", wins, errs)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrUsed) {
			t.Fatalf("a losing enrolment: %v, want ErrUsed", err)
		}
	}
	if n := e.count("credentials", "user_id = ?", alice.ID); n != 1 {
		t.Fatalf("%d credentials after a single-use invite", n)
	}
	if in, _ := st.Invite(ctx, hash("t1")); in.UsedAt.IsZero() {
		t.Fatal("invite not marked used")
	}
	if err := st.UseInvite(ctx, id); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("second use: %v", err)
	}

	// Expiry.
	id2, _ := st.CreateInvite(ctx, store.Invite{TokenHash: hash("t2"), UserID: alice.ID, Purpose: store.PurposeRecover, ExpiresAt: now.Add(time.Minute)})
	e.clock.Advance(time.Minute)
	if err := st.UseInvite(ctx, id2); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("expired invite: %v", err)
	}

	// A new invite replaces the old ones of that purpose.
	id3, _ := st.CreateInvite(ctx, store.Invite{TokenHash: hash("t3"), UserID: alice.ID, Purpose: store.PurposeEnrol, ExpiresAt: e.clock.Now().Add(time.Hour)})
	id4, _ := st.CreateInvite(ctx, store.Invite{TokenHash: hash("t4"), UserID: alice.ID, Purpose: store.PurposeRecover, ExpiresAt: e.clock.Now().Add(time.Hour)})
	if err := st.RevokeInvites(ctx, alice.ID, store.PurposeEnrol); err != nil {
		t.Fatal(err)
	}
	if err := st.UseInvite(ctx, id3); !errors.Is(err, store.ErrUsed) {
		t.Fatalf("revoked invite: %v", err)
	}
	if err := st.UseInvite(ctx, id4); err != nil {
		t.Fatalf("invite of another purpose: %v", err)
	}
}

func testRecoveryCodes(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	if err := st.ReplaceRecoveryCodes(ctx, alice.ID, [][]byte{hash("old")}); err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for i := 0; i < 10; i++ {
		hashes = append(hashes, hash(fmt.Sprint("code", i)))
	}
	if err := st.ReplaceRecoveryCodes(ctx, alice.ID, hashes); err != nil {
		t.Fatal(err)
	}
	codes, err := st.RecoveryCodes(ctx, alice.ID)
	if err != nil || len(codes) != 10 {
		t.Fatalf("RecoveryCodes: %d %v", len(codes), err)
	}
	for i, c := range codes {
		if !bytes.Equal(c.Hash, hashes[i]) || !c.UsedAt.IsZero() || c.UserID != alice.ID {
			t.Fatalf("code %d: %+v", i, c)
		}
	}
	wins, errs := race(20, func(int) error { return st.UseRecoveryCode(ctx, codes[3].ID) })
	if wins != 1 {
		t.Fatalf("20 uses of one recovery code: %d winners, want 1", wins)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrUsed) {
			t.Fatalf("a losing use: %v", err)
		}
	}
	codes, _ = st.RecoveryCodes(ctx, alice.ID)
	for i, c := range codes {
		if used := !c.UsedAt.IsZero(); used != (i == 3) {
			t.Fatalf("code %d used=%v", i, used)
		}
	}
	if err := st.UseRecoveryCode(ctx, codes[4].ID); err != nil {
		t.Fatalf("another code: %v", err)
	}
}

func testCeremonies(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	data := []byte{0, 1, 2, 0xff, '{', '}'}
	put := func(id, kind string, ttl time.Duration) {
		t.Helper()
		if err := st.PutCeremony(ctx, store.Ceremony{ID: id, Kind: kind, Data: data, ExpiresAt: e.clock.Now().Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	put("c1", "login", 5*time.Minute)
	if n, err := st.CountCeremonies(ctx); err != nil || n != 1 {
		t.Fatalf("CountCeremonies: %d %v", n, err)
	}
	var got atomic.Pointer[store.Ceremony]
	wins, errs := race(20, func(int) error {
		c, err := st.TakeCeremony(ctx, "c1", "login")
		if err == nil {
			got.Store(&c)
		}
		return err
	})
	if wins != 1 {
		t.Fatalf("20 takes of one ceremony: %d winners, want 1", wins)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a losing take: %v", err)
		}
	}
	if c := got.Load(); !bytes.Equal(c.Data, data) || c.Kind != "login" {
		t.Fatalf("taken: %+v", c)
	}

	// Expired: refused and gone.
	put("c2", "login", time.Minute)
	e.clock.Advance(time.Minute)
	if _, err := st.TakeCeremony(ctx, "c2", "login"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired ceremony: %v", err)
	}
	if n := e.count("ceremonies", "id = ?", "c2"); n != 0 {
		t.Fatal("an expired ceremony stayed after a take")
	}
	// The wrong kind: refused, and spent (a challenge is never offered twice).
	put("c3", "register", time.Minute)
	if _, err := st.TakeCeremony(ctx, "c3", "login"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("wrong kind: %v", err)
	}
	if _, err := st.TakeCeremony(ctx, "c3", "register"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("taken after a wrong-kind take: %v", err)
	}
	// Sweep removes what has expired and keeps the rest.
	put("old", "login", time.Second)
	put("new", "login", time.Hour)
	e.clock.Advance(2 * time.Second)
	if _, err := st.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.CountCeremonies(ctx); n != 1 {
		t.Fatalf("after sweep: %d ceremonies, want 1", n)
	}
}

func testSessions(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice, bob := e.user("alice"), e.user("bob")
	s1 := session(e, alice.ID, "s1")
	for _, se := range []store.Session{s1, session(e, alice.ID, "s2"), session(e, bob.ID, "s3")} {
		if err := st.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Session(ctx, "s1")
	if err != nil || got.UserID != alice.ID || !bytes.Equal(got.CredentialID, s1.CredentialID) || !got.BackupEligible ||
		!bytes.Equal(got.AAGUID, s1.AAGUID) || !got.ExpiresAt.Equal(s1.ExpiresAt) || got.Method != store.MethodPasskey || got.IP != s1.IP {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := st.Session(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
	if n, _ := st.CountActiveSessions(ctx); n != 3 {
		t.Fatalf("CountActiveSessions: %d", n)
	}

	// Revoking moves the revision (that is how other replicas learn of it) and happens once.
	rev := e.rev()
	if err := st.RevokeSession(ctx, bob.ID, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke of someone else's session: %v", err)
	}
	if err := st.RevokeSession(ctx, alice.ID, "s1"); err != nil {
		t.Fatal(err)
	}
	if e.rev() <= rev {
		t.Fatal("RevokeSession did not bump the revision")
	}
	if err := st.RevokeSession(ctx, "", "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	live, _ := st.Sessions(ctx, alice.ID)
	if len(live) != 1 || live[0].ID != "s2" {
		t.Fatalf("live sessions: %+v", live)
	}

	// Step-up and last-seen.
	later := e.clock.Now().Add(time.Minute)
	if err := st.VerifySession(ctx, "s2", later, []byte("other-cred"), false, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.VerifySession(ctx, "s1", later, []byte("x"), false, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("verify a revoked session: %v", err)
	}
	if err := st.TouchSessions(ctx, map[string]time.Time{"s2": later, "s3": later.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, _ = st.Session(ctx, "s2")
	if !got.VerifiedAt.Equal(later) || !got.LastSeenAt.Equal(later) || string(got.CredentialID) != "other-cred" ||
		got.BackupEligible || len(got.AAGUID) != 0 {
		t.Fatalf("after verify and touch: %+v", got)
	}
	if got, _ = st.Session(ctx, "s3"); !got.LastSeenAt.Equal(s1.LastSeenAt) {
		t.Fatal("TouchSessions moved last-seen backwards")
	}
	// More sessions than one statement carries: every one is written.
	many := map[string]time.Time{}
	bulk := e.user("bulk")
	for i := range 950 {
		id := fmt.Sprintf("bulk-%d", i)
		if err := st.CreateSession(ctx, session(e, bulk.ID, id)); err != nil {
			t.Fatal(err)
		}
		many[id] = later.Add(time.Duration(i) * time.Millisecond)
	}
	if err := st.TouchSessions(ctx, many); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bulk-0", "bulk-399", "bulk-400", "bulk-949"} {
		if got, _ := st.Session(ctx, id); !got.LastSeenAt.Equal(many[id]) {
			t.Fatalf("%s: last seen %v, want %v", id, got.LastSeenAt, many[id])
		}
	}

	rev = e.rev()
	n, err := st.RevokeSessions(ctx, alice.ID)
	if err != nil || n != 1 {
		t.Fatalf("RevokeSessions: %d %v", n, err)
	}
	if e.rev() <= rev {
		t.Fatal("RevokeSessions did not bump the revision")
	}
	// Expired sessions are not live, and are swept long after.
	e.clock.Advance(2 * time.Hour)
	if n, _ := st.CountActiveSessions(ctx); n != 0 {
		t.Fatalf("active after expiry: %d", n)
	}
	e.clock.Advance(31 * 24 * time.Hour)
	if _, err := st.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count("sessions", ""); n != 0 {
		t.Fatalf("%d sessions after sweep", n)
	}
}

func testTokens(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice, bob := e.user("alice"), e.user("bob")
	now := e.clock.Now()
	tok := store.Token{ID: "t1", UserID: alice.ID, Name: "ci", Hash: hash("secret"), Hosts: []string{"a.example.com", "b.example.com"},
		ExpiresAt: now.Add(time.Hour)}
	rev := e.rev()
	if err := st.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if e.rev() <= rev {
		t.Fatal("CreateToken did not bump the revision")
	}
	if err := st.CreateToken(ctx, store.Token{ID: "t2", UserID: alice.ID, Name: "dup", Hash: hash("secret"), ExpiresAt: now.Add(time.Hour)}); err == nil {
		t.Fatal("a second token with the same hash was accepted")
	}
	list, err := st.Tokens(ctx, alice.ID)
	if err != nil || len(list) != 1 || !bytes.Equal(list[0].Hash, tok.Hash) || strings.Join(list[0].Hosts, " ") != "a.example.com b.example.com" {
		t.Fatalf("Tokens: %+v %v", list, err)
	}
	later := now.Add(time.Minute)
	if err := st.TouchTokens(ctx, map[string]time.Time{"t1": later}); err != nil {
		t.Fatal(err)
	}
	if list, _ = st.Tokens(ctx, alice.ID); !list[0].LastUsedAt.Equal(later) {
		t.Fatalf("last used: %v", list[0].LastUsedAt)
	}
	if err := st.RevokeToken(ctx, bob.ID, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke of someone else's token: %v", err)
	}
	if err := st.RevokeToken(ctx, alice.ID, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, alice.ID, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if list, _ = st.Tokens(ctx, alice.ID); list[0].RevokedAt.IsZero() {
		t.Fatal("not revoked")
	}
}

func testAudit(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	base := e.clock.Now()
	for i, ev := range []store.Event{
		{UserID: "u1", Event: "login", Detail: "ok", IP: "192.0.2.1"},
		{UserID: "u2", Event: "login"},
		{UserID: "u1", Event: "passkey_added"},
		{UserID: "u1", Event: "login"},
	} {
		ev.At = base.Add(time.Duration(i) * time.Minute)
		if err := st.Audit(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.AuditEvents(ctx, store.AuditFilter{})
	if err != nil || len(all) != 4 || all[0].Event != "login" || all[0].UserID != "u1" || !all[3].At.Equal(base) || all[3].IP != "192.0.2.1" {
		t.Fatalf("all, newest first: %+v %v", all, err)
	}
	for _, c := range []struct {
		name string
		f    store.AuditFilter
		want int
	}{
		{"user", store.AuditFilter{UserID: "u1"}, 3},
		{"event", store.AuditFilter{Event: "login"}, 3},
		{"user and event", store.AuditFilter{UserID: "u1", Event: "login"}, 2},
		{"since", store.AuditFilter{Since: base.Add(2 * time.Minute)}, 2},
		{"limit", store.AuditFilter{Limit: 1}, 1},
		{"offset", store.AuditFilter{Limit: 10, Offset: 3}, 1},
	} {
		got, err := st.AuditEvents(ctx, c.f)
		if err != nil || len(got) != c.want {
			t.Errorf("%s: %d events (%v), want %d", c.name, len(got), err, c.want)
		}
	}
}

func testSnapshot(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	e.user("bob")
	now := e.clock.Now()
	live, revoked, expired := session(e, alice.ID, "live"), session(e, alice.ID, "revoked"), session(e, alice.ID, "expired")
	revoked.RevokedAt = now
	expired.ExpiresAt = now.Add(-time.Second)
	for _, se := range []store.Session{live, revoked, expired} {
		if err := st.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range []store.Token{
		{ID: "live", UserID: alice.ID, Name: "a", Hash: hash("1"), ExpiresAt: now.Add(time.Hour)},
		{ID: "revoked", UserID: alice.ID, Name: "b", Hash: hash("2"), ExpiresAt: now.Add(time.Hour), RevokedAt: now},
		{ID: "expired", UserID: alice.ID, Name: "c", Hash: hash("3"), ExpiresAt: now},
	} {
		if err := st.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != e.rev() || len(snap.Users) != 2 || len(snap.Sessions) != 1 || snap.Sessions[0].ID != "live" ||
		len(snap.Tokens) != 1 || snap.Tokens[0].ID != "live" {
		t.Fatalf("snapshot: rev %d (store %d), %d users, sessions %+v, tokens %+v", snap.Revision, e.rev(), len(snap.Users), snap.Sessions, snap.Tokens)
	}
}

func testMigrations(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	v, err := st.SchemaVersion(ctx)
	if err != nil || v != st.LatestVersion() || v < 1 {
		t.Fatalf("fresh database at version %d (%v), binary knows %d", v, err, st.LatestVersion())
	}
	if got := e.count("revision", ""); got != 1 {
		t.Fatalf("revision rows: %d", got)
	}
	alice := e.user("alice")
	st.Close()

	// A restart on an existing database applies nothing and keeps the data.
	st2, err := e.open(ctx, e.clock.Now)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v2, _ := st2.SchemaVersion(ctx); v2 != v {
		t.Fatalf("version after restart: %d, want %d", v2, v)
	}
	if n := e.countOn(st2, "schema_version"); n != v {
		t.Fatalf("schema_version rows after restart: %d", n)
	}
	if _, err := st2.UserByID(ctx, alice.ID); err != nil {
		t.Fatalf("data after restart: %v", err)
	}

	// A database written by a newer binary is refused, and left exactly as it was.
	q := "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)"
	if st2.Dialect() == store.Postgres {
		q = "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)"
	}
	if _, err := st2.DB().ExecContext(ctx, q, v+1, fmt.Sprintf("%04d_future.sql", v+1), 1); err != nil {
		t.Fatal(err)
	}
	before := dump(t, st2)
	st2.Close()
	st3, err := e.open(ctx, e.clock.Now)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		if st3 != nil {
			st3.Close()
		}
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	// Look through a plain handle: the refused open must have changed nothing.
	raw, err := e.db.raw()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if after := dumpDB(t, raw); after != before {
		t.Fatalf("a refused open changed the database:\n%s\nwas:\n%s", after, before)
	}
}

func (e *env) countOn(st *store.Store, table string) int {
	e.t.Helper()
	var n int
	if err := st.DB().QueryRowContext(e.ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func testConcurrentOpen(e *env) {
	// Replicas (and the CLI) may start together on one database: every open must succeed and the
	// migrations run once.
	t, ctx := e.t, e.ctx
	db := e.fresh()
	wins, errs := race(4, func(int) error {
		st, err := db.open(ctx, e.clock.Now)
		if err != nil {
			return err
		}
		return st.Close()
	})
	if wins != 4 {
		t.Fatalf("concurrent opens: %d of 4 succeeded: %v", wins, errs)
	}
	st, err := db.open(ctx, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := e.countOn(st, "schema_version"); n != st.LatestVersion() {
		t.Fatalf("schema_version rows: %d, want %d", n, st.LatestVersion())
	}
	if n := e.countOn(st, "revision"); n != 1 {
		t.Fatalf("revision rows: %d, want 1", n)
	}
}
