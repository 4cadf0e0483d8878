package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// fillSessions inserts n live sessions of one user directly by SQL in one transaction (a
// benchmark's setup, not the code under test), and returns their IDs.
func fillSessions(tb testing.TB, st *store.Store, userID string, n int, now time.Time) []ID {
	tb.Helper()
	tx, err := st.DB().Begin()
	if err != nil {
		tb.Fatal(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO sessions (id, user_id, method, created_at, verified_at, last_seen_at, expires_at)
		VALUES (?, ?, 'passkey', ?, ?, ?, ?)`)
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]ID, n)
	at, exp := now.UnixMilli(), now.Add(24*time.Hour).UnixMilli()
	for i := range ids {
		ids[i], _ = NewID()
		if _, err := stmt.Exec(EncodeID(ids[i]), userID, at, at, at, exp); err != nil {
			tb.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return ids
}

type benchEnv struct {
	f     *fixture
	v     *View
	codec *Codec
	ids   []ID
	vals  []string // cookie values of ids
}

func newBenchEnv(b *testing.B, n int) *benchEnv {
	b.Helper()
	f := newFixture(b)
	u := f.user(f.st, "alice")
	e := &benchEnv{f: f, ids: fillSessions(b, f.st, u.ID, n, f.now.Now())}
	e.v = f.view()
	e.codec = NewCodec("latchkey_session", make([]byte, 32), make([]byte, 32), 24*time.Hour)
	e.vals = make([]string, n)
	for i, id := range e.ids {
		e.vals[i], _ = e.codec.Encode(id, time.Now())
	}
	return e
}

// benchCheck is the hot path as Authenticate runs it: decode the cookie (cached) and check it,
// with random cookies among all sessions.
func benchCheck(b *testing.B, n int) {
	e := newBenchEnv(b, n)
	ctx := context.Background()
	now := e.f.now.Now()
	for _, v := range e.vals { // warm the verified-value cache, as real traffic does
		e.codec.DecodeCached(v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			id, err := e.codec.DecodeCached(e.vals[r.IntN(n)])
			if err != nil {
				b.Fatal(err)
			}
			if _, res := e.v.Check(ctx, id, now); res != Allowed {
				b.Fatal("refused")
			}
		}
	})
}

func BenchmarkCheck1kSessions(b *testing.B)   { benchCheck(b, 1000) }
func BenchmarkCheck100kSessions(b *testing.B) { benchCheck(b, 100000) }

// benchRevoke measures one revocation made by another process and applied by the view's
// catch-up (the store write, the change poll and the re-read of one session).
func benchRevoke(b *testing.B, n int) {
	e := newBenchEnv(b, n)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := e.ids[i%n]
		if i >= n {
			b.Fatal("more revocations than sessions; lower -benchtime")
		}
		if err := e.f.other.RevokeSession(ctx, "", EncodeID(id)); err != nil {
			b.Fatal(err)
		}
		if err := e.v.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if _, res := e.v.Check(ctx, e.ids[0], e.f.now.Now()); res != Refused {
		b.Fatal("a revoked session still passes")
	}
}

func BenchmarkRevokeWith1kSessions(b *testing.B)   { benchRevoke(b, 1000) }
func BenchmarkRevokeWith10kSessions(b *testing.B)  { benchRevoke(b, 10000) }
func BenchmarkRevokeWith100kSessions(b *testing.B) { benchRevoke(b, 100000) }

// BenchmarkApplyRevocation100k is the view's own CPU for one revocation at 100k sessions: the
// change applied to the map (no store I/O), the figure the issue bounds at 1 ms.
func BenchmarkApplyRevocation100k(b *testing.B) {
	e := newBenchEnv(b, 100000)
	rows := make([]store.Session, len(e.ids))
	now := e.f.now.Now()
	for i, id := range e.ids {
		rows[i] = store.Session{ID: EncodeID(id), UserID: "u", Method: MethodPasskey, CreatedAt: now,
			LastSeenAt: now, ExpiresAt: now.Add(time.Hour), RevokedAt: now}
	}
	rev := e.v.Revision() + 1
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.v.applySession(store.SessionRead{Rev: rev, Session: rows[i%len(rows)], Found: true,
			User: store.User{ID: "u", Name: "alice"}, UserFound: true}, rows[i%len(rows)].ID)
	}
}

// BenchmarkLoad100kSessions is start-to-loaded: a full load of 100k sessions from a real file,
// with the heap it takes.
func BenchmarkLoad100kSessions(b *testing.B) {
	f := newFixture(b)
	u := f.user(f.st, "alice")
	fillSessions(b, f.st, u.ID, 100000, f.now.Now())
	b.ResetTimer()
	var heap uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		v := New(f.st, Options{Now: f.now.Now})
		if err := v.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if v.Sessions() != 100000 {
			b.Fatal(v.Sessions())
		}
		runtime.KeepAlive(v)
	}
	b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
}

// TestBenchHelpers keeps the benchmark setup honest in the ordinary test run.
func TestBenchHelpers(t *testing.T) {
	f := newFixture(t)
	u := f.user(f.st, "alice")
	ids := fillSessions(t, f.st, u.ID, 10, f.now.Now())
	v := f.view()
	for _, id := range ids {
		f.expect(v, id, Allowed, fmt.Sprintf("filled session %x", id[:4]))
	}
	_ = uuid.NewString
	_ = filepath.Join
}
