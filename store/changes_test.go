package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/store"
)

// testChangeLog: every change the forward-auth view depends on logs one row naming what to
// re-read, in revision order with no holes, and the targeted re-reads return the revision they
// reflect.
func testChangeLog(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	since := e.rev()
	alice := e.user("alice")
	se := session(e, alice.ID, "s1")
	rev, err := st.CreateSessionRev(ctx, se)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, store.Token{ID: "t1", UserID: alice.ID, Name: "ci", Hash: hash("t1"), Hosts: []string{"h"},
		CreatedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeSession(ctx, "", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, alice.ID, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetUserDisabled(ctx, alice.ID, true); err != nil {
		t.Fatal(err)
	}
	changes, head, err := st.Changes(ctx, since, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, c := range changes {
		if c.Rev != since+int64(i)+1 {
			t.Fatalf("change %d has revision %d, want %d (no holes)", i, c.Rev, since+int64(i)+1)
		}
		got = append(got, c.Kind+":"+c.Ref)
	}
	want := []string{"user:" + alice.ID, "session:s1", "token:t1", "session:s1", "token:t1", "user:" + alice.ID}
	if strings.Join(got, " ") != strings.Join(want, " ") || head != since+6 {
		t.Fatalf("changes = %v (head %d), want %v (head %d)", got, head, want, since+6)
	}
	if rev != since+2 {
		t.Fatalf("CreateSessionRev = %d, want %d", rev, since+2)
	}
	// Paging and "nothing new".
	if page, _, err := st.Changes(ctx, since, 2); err != nil || len(page) != 2 {
		t.Fatalf("a page of 2: %v %v", page, err)
	}
	if none, h, err := st.Changes(ctx, head, 100); err != nil || len(none) != 0 || h != head {
		t.Fatalf("up to date: %v %d %v", none, h, err)
	}
	// Re-reads: with the revision they reflect, revoked rows included.
	sr, err := st.ReadSession(ctx, "s1")
	if err != nil || !sr.Found || sr.Session.RevokedAt.IsZero() || !sr.UserFound || !sr.User.Disabled || sr.Rev != head {
		t.Fatalf("ReadSession: %+v %v", sr, err)
	}
	ur, err := st.ReadUser(ctx, alice.ID)
	if err != nil || !ur.Found || len(ur.Sessions) != 1 || len(ur.Tokens) != 1 || ur.Tokens[0].RevokedAt.IsZero() || ur.Rev != head {
		t.Fatalf("ReadUser: %+v %v", ur, err)
	}
	tr, err := st.ReadToken(ctx, "t1")
	if err != nil || !tr.Found || tr.Token.RevokedAt.IsZero() || tr.User.ID != alice.ID {
		t.Fatalf("ReadToken: %+v %v", tr, err)
	}
	if r, err := st.ReadSession(ctx, "nope"); err != nil || r.Found {
		t.Fatalf("ReadSession of nothing: %+v %v", r, err)
	}
	// Disabling revoked the user's tokens and unused invites too.
	if n := e.count("api_tokens", "user_id = ? AND revoked_at = 0", alice.ID); n != 0 {
		t.Fatalf("%d live tokens of a disabled user", n)
	}
	if err := st.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
}

// testRetention: Sweep prunes ended sessions and tokens, used invites and old change rows, and a
// view that asks from before the pruned rows is told so (it must load everything).
func testRetention(e *env) {
	t, ctx, st := e.t, e.ctx, e.st
	alice := e.user("alice")
	for _, id := range []string{"live", "revoked"} {
		if err := st.CreateSession(ctx, session(e, alice.ID, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RevokeSession(ctx, "", "revoked"); err != nil {
		t.Fatal(err)
	}
	old := e.rev()
	e.clock.Advance(2 * time.Hour)
	if err := st.Audit(ctx, store.Event{Event: "x"}); err != nil { // a later change: the newest row stays
		t.Fatal(err)
	}
	if _, err := st.RevokeSessions(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
	res, err := st.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes == 0 {
		t.Fatalf("no change rows pruned: %+v", res)
	}
	if _, _, err := st.Changes(ctx, old-1, 100); !errors.Is(err, store.ErrChangesPruned) {
		t.Fatalf("changes from before the pruned rows: %v, want ErrChangesPruned", err)
	}
	if _, _, err := st.Changes(ctx, e.rev(), 100); err != nil {
		t.Fatalf("changes from the head after a prune: %v", err)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	if err := st.CreateSession(ctx, session(e, alice.ID, "fresh")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"live": 0, "revoked": 0, "fresh": 1} { // "live" expired long ago
		if n := e.count("sessions", "id = ?", id); n != want {
			t.Errorf("session %s: %d rows after the sweep, want %d", id, n, want)
		}
	}
	if n := e.count("audit", ""); n == 0 {
		t.Error("audit rows deleted without an audit retention")
	}
}

// TestAuditRetention: audit rows older than the retention are deleted; 0 keeps them; SQLite
// gives the space back (incremental vacuum) and truncates the WAL.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	st, err := store.Open(ctx, store.Options{Path: path, Now: clk.Now, AuditRetention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	big := strings.Repeat("x", 2000)
	for i := 0; i < 2000; i++ {
		if err := st.Audit(ctx, store.Event{Event: "old", Detail: big}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(25 * time.Hour)
	if err := st.Audit(ctx, store.Event{Event: "new"}); err != nil {
		t.Fatal(err)
	}
	st.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	before := fileSize(t, path)
	res, err := st.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	st.DB().QueryRow("SELECT COUNT(*) FROM audit").Scan(&n)
	if res.Audit != 2000 || n != 1 {
		t.Fatalf("swept %d audit rows, %d left; want 2000 and 1", res.Audit, n)
	}
	if after := fileSize(t, path); after >= before/2 {
		t.Fatalf("the file kept its size after the sweep: %d -> %d bytes", before, after)
	}
	if wal := fileSize(t, path+"-wal"); wal != 0 {
		t.Fatalf("the WAL was not truncated: %d bytes", wal)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestRefusesEmptyOrForeignDatabase: an existing file that is empty or holds no Latchkey schema
// is refused with what to do, and left as it was; only a missing file is created.
func TestRefusesEmptyOrForeignDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(ctx, store.Options{Path: empty})
	if !errors.Is(err, store.ErrEmptyDatabase) || !strings.Contains(err.Error(), "backup") || !strings.Contains(err.Error(), "delete the file") {
		t.Fatalf("empty file: %v", err)
	}
	if fileSize(t, empty) != 0 {
		t.Fatal("the empty file was written to")
	}
	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite", "file:"+foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE notes (body TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = store.Open(ctx, store.Options{Path: foreign})
	if !errors.Is(err, store.ErrForeignDatabase) || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("foreign file: %v", err)
	}
	db, _ = sql.Open("sqlite", "file:"+foreign)
	defer db.Close()
	var tables int
	db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").Scan(&tables)
	if tables != 1 {
		t.Fatalf("the foreign file was changed: %d tables", tables)
	}
	// A missing file is created, and opens again as itself.
	fresh := filepath.Join(dir, "sub", "latchkey.db")
	st, err := store.Open(ctx, store.Options{Path: fresh})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = store.Open(ctx, store.Options{Path: fresh}); err != nil {
		t.Fatalf("reopening a database made by Open: %v", err)
	}
	st.Close()
}

// TestTimeoutSQLite: with the write lock held by another process, a write returns within the
// store timeout instead of hanging, and reads (deferred) are not blocked at all.
func TestTimeoutSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	st, err := store.Open(ctx, store.Options{Path: path, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	start := time.Now()
	err = st.CreateUser(ctx, store.User{ID: "u1", Name: "u1"})
	took := time.Since(start)
	if err == nil {
		t.Fatal("a write succeeded while another process held the write lock")
	}
	if took > 2*time.Second { // ten times the timeout: generous for a loaded machine, far below a hang
		t.Fatalf("a blocked write took %s with a 200ms timeout", took)
	}
	t.Logf("blocked write returned after %s: %v", took.Round(time.Millisecond), err)
	// Reads never take the write lock.
	if _, err := st.Snapshot(ctx); err != nil {
		t.Fatalf("a snapshot with the write lock held elsewhere: %v", err)
	}
	if _, _, err := st.Changes(ctx, 0, 10); err != nil && !errors.Is(err, store.ErrChangesPruned) {
		t.Fatalf("changes with the write lock held elsewhere: %v", err)
	}
}

// TestTimeoutPostgres: a table locked by another session makes a store call return within the
// timeout (issue 17: a frozen database hung checks for unknown sessions).
func TestTimeoutPostgres(t *testing.T) {
	srv := lktest.StartPostgres(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, dsn, store.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	locker, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	tx, err := locker.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("LOCK TABLE sessions, users IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"read session": func() error { _, err := st.ReadSession(ctx, "x"); return err },
		"session":      func() error { _, err := st.Session(ctx, "x"); return err },
		"create user":  func() error { return st.CreateUser(ctx, store.User{ID: "u1", Name: "u1"}) },
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil || took > 3*time.Second {
			t.Fatalf("%s against a locked table: %v after %s (timeout 300ms)", name, err, took)
		}
		t.Logf("%s returned after %s", name, took.Round(time.Millisecond))
	}
}

// TestChangesVisibleInCommitOrder: on PostgreSQL a writer that took revision n holds the revision
// row until it commits, so a later writer cannot make n+1 visible first: a reader polling after
// its cursor never skips a late-committing lower revision.
func TestChangesVisibleInCommitOrder(t *testing.T) {
	srv := lktest.StartPostgres(t)
	dsn := srv.NewDatabase(t)
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, dsn, store.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	head, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	slow, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var mine int64
	if err := slow.QueryRow("UPDATE revision SET n = n + 1 WHERE id = 1 RETURNING n").Scan(&mine); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.CreateUser(ctx, store.User{ID: "u-fast", Name: "fast"}) }()
	// Wait until the fast writer is blocked on the revision row.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		raw.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second writer never waited for the first")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, h, err := st.Changes(ctx, head, 10); err != nil || len(got) != 0 || h != head {
		t.Fatalf("with the lower revision uncommitted, a reader sees %v (head %d, %v)", got, h, err)
	}
	if _, err := slow.Exec("INSERT INTO changes (rev, kind, ref, at) VALUES ($1, 'user', 'u-slow', 0)", mine); err != nil {
		t.Fatal(err)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _, err := st.Changes(ctx, head, 10)
	if err != nil || len(got) != 2 || got[0].Ref != "u-slow" || got[1].Ref != "u-fast" || got[1].Rev != got[0].Rev+1 {
		t.Fatalf("after both commits: %+v %v", got, err)
	}
}
