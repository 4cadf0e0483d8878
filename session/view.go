package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// Options configure a View.
type Options struct {
	Logger *slog.Logger
	// Now is the business clock (expiry, inactivity, last seen); nil means time.Now.
	Now func() time.Time
	// Clock measures staleness and the ask-once intervals. It is the real clock (time.Now) unless
	// a test drives it; the business clock of tests stands still, staleness must not.
	Clock func() time.Time
	// Inactivity is the idle limit of a session (0: none).
	Inactivity time.Duration
	// PollInterval is how often Run asks the store for changes (default 1 s). Unknown and idle
	// cookies are asked about at most once per interval.
	PollInterval time.Duration
	// MaxStaleness is how long the view answers without confirming itself with the store
	// (storage.max_staleness, default 5 s); past it, session and token checks fail closed.
	MaxStaleness time.Duration
	// FlushInterval is how often last-seen times are written (default 30 s).
	FlushInterval time.Duration
	// Metrics receives view events; nil records nothing.
	Metrics Recorder
}

// Recorder is what the view reports to metrics.
type Recorder interface {
	ViewDeltas(n int)                  // changes applied from the log
	ViewLoad(d time.Duration, ok bool) // a full load and its duration
	StoreError(op string)              // a failed store call, by operation
}

type nopRecorder struct{}

func (nopRecorder) ViewDeltas(int)               {}
func (nopRecorder) ViewLoad(time.Duration, bool) {}
func (nopRecorder) StoreError(string)            {}

// entry is a session as the view knows it, as of revision rev. A dead entry is a tombstone: a
// revoked or removed session, kept until its expiry so that an older read cannot bring it back.
type entry struct {
	rev            int64
	dead           bool
	id             string
	userID         string
	method         string
	expiresAt      int64 // unix ms
	verifiedAt     time.Time
	backupEligible bool
	aaguid         string
	domain         string       // the cookie domain the session was minted for (issue 23)
	lastSeen       atomic.Int64 // unix ms; slides on allowed checks
	flushed        atomic.Int64 // lastSeen value last written to the store
	asked          atomic.Int64 // Clock unix ns of the last idle question to the store
}

type userEntry struct {
	rev int64
	u   *User // nil: the user is gone (a tombstone)
}

type tokenEntry struct {
	rev       int64
	dead      bool
	id        string
	userID    string
	hosts     []string
	expiresAt int64
	lastUsed  atomic.Int64
	flushed   atomic.Int64
}

const shards = 64

type shard struct {
	mu sync.RWMutex
	m  map[ID]*entry
}

// View is the in-memory picture of users, sessions and tokens. Checks take a shard's read lock
// for a map lookup and never wait for the store; changes replace single entries.
type View struct {
	st  *store.Store
	o   Options
	log *slog.Logger
	m   Recorder

	sessions [shards]shard
	umu      sync.RWMutex
	users    map[string]*userEntry
	tmu      sync.RWMutex
	tokens   map[[sha256.Size]byte]*tokenEntry
	tokenIDs map[string][sha256.Size]byte

	cursor    atomic.Int64 // every change up to here is applied
	confirmed atomic.Int64 // Clock unix ns when the view last confirmed itself with the store
	stale     atomic.Bool  // for logging the transitions once
	catchUp   sync.Mutex   // one catch-up at a time; never taken by checks

	missMu sync.Mutex
	miss   map[ID]int64 // unknown or dead session IDs → Clock unix ns when asked
	fl     flight

	// hookRead, when set (tests only), runs between a store read and the insert of its result,
	// with the kind of read: "fetch", "load", "change".
	hookRead func(kind string)
}

// maxMiss bounds the negative cache; when full it is emptied (each ID then costs one more read).
const maxMiss = 10000

// New returns an empty view; Load fills it.
func New(st *store.Store, o Options) *View {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.MaxStaleness <= 0 {
		o.MaxStaleness = 5 * time.Second
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 30 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = nopRecorder{}
	}
	v := &View{st: st, o: o, log: o.Logger, m: o.Metrics, users: map[string]*userEntry{},
		tokens: map[[sha256.Size]byte]*tokenEntry{}, tokenIDs: map[string][sha256.Size]byte{}, miss: map[ID]int64{}}
	for i := range v.sessions {
		v.sessions[i].m = map[ID]*entry{}
	}
	return v
}

func (v *View) shard(id ID) *shard {
	return &v.sessions[binary.LittleEndian.Uint64(id[:8])%shards]
}

func newEntry(se store.Session, rev int64) *entry {
	e := &entry{rev: rev, dead: !se.RevokedAt.IsZero(), id: se.ID, userID: se.UserID, method: se.Method,
		expiresAt: se.ExpiresAt.UnixMilli(), verifiedAt: se.VerifiedAt, backupEligible: se.BackupEligible,
		domain: se.Domain}
	if len(se.AAGUID) == 16 {
		e.aaguid = uuid.UUID(se.AAGUID).String()
	}
	e.lastSeen.Store(se.LastSeenAt.UnixMilli())
	e.flushed.Store(se.LastSeenAt.UnixMilli())
	return e
}

// putSession stores an entry unless the view holds a newer one. It is the one place that decides
// which read wins, so that a revocation can never be undone by an older load, fetch or insert.
func (v *View) putSession(se store.Session, rev int64) {
	id, ok := DecodeID(se.ID)
	if !ok {
		return
	}
	e := newEntry(se, rev)
	sh := v.shard(id)
	sh.mu.Lock()
	if old := sh.m[id]; old != nil {
		if old.rev > rev {
			sh.mu.Unlock()
			return
		}
		if ls := old.lastSeen.Load(); ls > e.lastSeen.Load() {
			e.lastSeen.Store(ls)
		}
		if f := old.flushed.Load(); f > e.flushed.Load() {
			e.flushed.Store(f)
		}
		e.asked.Store(old.asked.Load())
	}
	sh.m[id] = e
	sh.mu.Unlock()
}

// killSession turns a session the store no longer has into a tombstone of revision rev.
func (v *View) killSession(sid string, rev int64) {
	id, ok := DecodeID(sid)
	if !ok {
		return
	}
	sh := v.shard(id)
	sh.mu.Lock()
	if old := sh.m[id]; old != nil && old.rev <= rev {
		sh.m[id] = &entry{rev: rev, dead: true, id: old.id, userID: old.userID, expiresAt: old.expiresAt}
	}
	sh.mu.Unlock()
}

func (v *View) putUser(u store.User, found bool, id string, rev int64) {
	ue := &userEntry{rev: rev}
	if found {
		ue.u = newUser(u)
	}
	v.umu.Lock()
	if old := v.users[id]; old == nil || old.rev <= rev {
		v.users[id] = ue
	}
	v.umu.Unlock()
}

func (v *View) putToken(t store.Token, rev int64) {
	var h [sha256.Size]byte
	if copy(h[:], t.Hash) != sha256.Size {
		return
	}
	te := &tokenEntry{rev: rev, dead: !t.RevokedAt.IsZero(), id: t.ID, userID: t.UserID, hosts: t.Hosts,
		expiresAt: t.ExpiresAt.UnixMilli()}
	te.lastUsed.Store(t.LastUsedAt.UnixMilli())
	te.flushed.Store(t.LastUsedAt.UnixMilli())
	v.tmu.Lock()
	defer v.tmu.Unlock()
	if old := v.tokens[h]; old != nil {
		if old.rev > rev {
			return
		}
		if lu := old.lastUsed.Load(); lu > te.lastUsed.Load() {
			te.lastUsed.Store(lu)
		}
	}
	v.tokens[h] = te
	v.tokenIDs[t.ID] = h
}

func (v *View) killToken(id string, rev int64) {
	v.tmu.Lock()
	defer v.tmu.Unlock()
	h, ok := v.tokenIDs[id]
	if !ok {
		return
	}
	if old := v.tokens[h]; old != nil && old.rev <= rev {
		v.tokens[h] = &tokenEntry{rev: rev, dead: true, id: id, userID: old.userID, expiresAt: old.expiresAt}
	}
}

func (v *View) hook(kind string) {
	if v.hookRead != nil {
		v.hookRead(kind)
	}
}

// Load reads everything from the store in one read transaction and applies it: at start, and
// when the change log cannot bring the view up to date (it was pruned past the view's cursor).
// Entries the view holds that are older than the snapshot and absent from it become tombstones.
func (v *View) Load(ctx context.Context) error {
	start := v.o.Clock()
	snap, err := v.st.Snapshot(ctx)
	if err != nil {
		v.m.StoreError("load")
		v.m.ViewLoad(v.o.Clock().Sub(start), false)
		return err
	}
	v.hook("load")
	rev := snap.Revision
	for _, u := range snap.Users {
		v.putUser(u, true, u.ID, rev)
	}
	for _, se := range snap.Sessions {
		v.putSession(se, rev)
	}
	for _, t := range snap.Tokens {
		v.putToken(t, rev)
	}
	// Whatever is older than the snapshot and was not in it is gone from the store.
	for i := range v.sessions {
		sh := &v.sessions[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if e.rev < rev && !e.dead {
				sh.m[id] = &entry{rev: rev, dead: true, id: e.id, userID: e.userID, expiresAt: e.expiresAt}
			}
		}
		sh.mu.Unlock()
	}
	v.umu.Lock()
	for id, ue := range v.users {
		if ue.rev < rev {
			v.users[id] = &userEntry{rev: rev}
		}
	}
	v.umu.Unlock()
	v.tmu.Lock()
	for h, te := range v.tokens {
		if te.rev < rev && !te.dead {
			v.tokens[h] = &tokenEntry{rev: rev, dead: true, id: te.id, userID: te.userID, expiresAt: te.expiresAt}
		}
	}
	v.tmu.Unlock()
	v.advance(rev)
	v.confirm(start)
	v.m.ViewLoad(v.o.Clock().Sub(start), true)
	return nil
}

// advance moves the cursor forward, never back.
func (v *View) advance(rev int64) {
	for {
		cur := v.cursor.Load()
		if rev <= cur || v.cursor.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// confirm records that the store answered a read begun at start.
func (v *View) confirm(start time.Time) {
	ns := start.UnixNano()
	for {
		cur := v.confirmed.Load()
		if ns <= cur || v.confirmed.CompareAndSwap(cur, ns) {
			break
		}
	}
	if v.stale.CompareAndSwap(true, false) {
		v.log.Info("session view confirmed with the store again; checks answer again")
	}
}

// Revision is the revision the view reflects.
func (v *View) Revision() int64 { return v.cursor.Load() }

// Age is how long ago the view last confirmed itself with the store.
func (v *View) Age() time.Duration {
	c := v.confirmed.Load()
	if c == 0 {
		return time.Duration(1<<63 - 1)
	}
	return v.o.Clock().Sub(time.Unix(0, c))
}

// Fresh reports whether the view confirmed itself within MaxStaleness.
func (v *View) Fresh() bool { return v.Age() <= v.o.MaxStaleness }

// CatchUp applies the changes logged since the view's revision, re-reading only the rows they
// name; it is what Run does every interval, and what a handler calls after a change it wrote
// (it then costs the change, not the number of sessions). An empty answer confirms the view.
func (v *View) CatchUp(ctx context.Context) error {
	v.catchUp.Lock()
	defer v.catchUp.Unlock()
	// pendingStart/pendingHead: the first read of this catch-up and the head it saw. Once the
	// cursor reaches that head, everything committed before that read is applied, so the view is
	// confirmed as of then, even while more changes keep arriving: under a sustained stream of
	// writes (a burst of logins) the view must not call itself stale just for being busy.
	var pendingStart time.Time
	pendingHead := int64(-1)
	for {
		start := v.o.Clock()
		since := v.cursor.Load()
		changes, head, err := v.st.Changes(ctx, since, 500)
		if err == nil && pendingHead < 0 {
			pendingStart, pendingHead = start, head
		}
		if errors.Is(err, store.ErrChangesPruned) {
			v.log.Warn("change log pruned past the view; loading everything", "since", since, "head", head)
			return v.Load(ctx)
		}
		if err != nil {
			v.m.StoreError("changes")
			return err
		}
		for _, c := range changes {
			if err := v.apply(ctx, c); err != nil {
				v.m.StoreError("change_" + c.Kind)
				return err
			}
			v.advance(c.Rev)
		}
		v.m.ViewDeltas(len(changes))
		if len(changes) == 0 || v.cursor.Load() >= head {
			v.confirm(start)
			return nil
		}
		if v.cursor.Load() >= pendingHead {
			v.confirm(pendingStart)
			pendingStart, pendingHead = start, head
		}
	}
}

// apply re-reads what one change names.
func (v *View) apply(ctx context.Context, c store.Change) error {
	switch c.Kind {
	case store.ChangeSession:
		if v.holds(c.Ref, c.Rev) {
			// This process applied the change when it made it (Add with the revision the store
			// returned): nothing to re-read. A login burst costs no read per login.
			return nil
		}
		r, err := v.st.ReadSession(ctx, c.Ref)
		if err != nil {
			return err
		}
		v.hook("change")
		v.applySession(r, c.Ref)
	case store.ChangeUser:
		r, err := v.st.ReadUser(ctx, c.Ref)
		if err != nil {
			return err
		}
		v.hook("change")
		v.putUser(r.User, r.Found, c.Ref, r.Rev)
		for _, se := range r.Sessions {
			v.putSession(se, r.Rev)
		}
		for _, t := range r.Tokens {
			v.putToken(t, r.Rev)
		}
	case store.ChangeToken:
		r, err := v.st.ReadToken(ctx, c.Ref)
		if err != nil {
			return err
		}
		v.hook("change")
		if !r.Found {
			v.killToken(c.Ref, r.Rev)
			return nil
		}
		v.putToken(r.Token, r.Rev)
		v.putUser(r.User, r.UserFound, r.Token.UserID, r.Rev)
	case store.ChangeAll:
		return v.Load(ctx)
	default:
		v.log.Warn("unknown change kind in the log; loading everything", "kind", c.Kind, "rev", c.Rev)
		return v.Load(ctx)
	}
	return nil
}

func (v *View) applySession(r store.SessionRead, sid string) {
	if !r.Found {
		v.killSession(sid, r.Rev)
		return
	}
	v.putSession(r.Session, r.Rev)
	v.putUser(r.User, r.UserFound, r.Session.UserID, r.Rev)
}

// holds reports whether the view already has session sid at revision rev or later.
func (v *View) holds(sid string, rev int64) bool {
	id, ok := DecodeID(sid)
	if !ok {
		return false
	}
	sh := v.shard(id)
	sh.mu.RLock()
	e := sh.m[id]
	sh.mu.RUnlock()
	return e != nil && e.rev >= rev
}

// Add inserts a session this process just created at revision rev (as the store returned it),
// so that its own cookie works at once. A newer entry (a revocation already applied) wins.
func (v *View) Add(se store.Session, rev int64) {
	v.putSession(se, rev)
	if id, ok := DecodeID(se.ID); ok {
		v.missMu.Lock()
		delete(v.miss, id)
		v.missMu.Unlock()
	}
}

// lookup finds a session and its user; known is false when the view has no word on the user at
// all (neither the user nor a tombstone: a user made elsewhere since the last poll).
func (v *View) lookup(id ID) (e *entry, u *User, known bool) {
	sh := v.shard(id)
	sh.mu.RLock()
	e = sh.m[id]
	sh.mu.RUnlock()
	if e == nil {
		return nil, nil, false
	}
	if e.dead {
		return e, nil, true
	}
	v.umu.RLock()
	ue := v.users[e.userID]
	v.umu.RUnlock()
	if ue == nil {
		return e, nil, false
	}
	return e, ue.u, true
}

// Check is the hot path: is sid a live session? It reads no database for a known session. An
// unknown session (made by another process since the last poll) or an idle one (another replica
// may have seen it) is asked about at most once per poll interval, one question per ID at a time.
func (v *View) Check(ctx context.Context, sid ID, now time.Time) (Identity, Result) {
	if !v.Fresh() {
		v.noteStale()
		return Identity{Stale: true}, Stale
	}
	nowMS := now.UnixMilli()
	e, u, known := v.lookup(sid)
	if !known {
		if !v.fetch(ctx, sid) {
			return Identity{}, Refused
		}
		if e, u, _ = v.lookup(sid); e == nil {
			return Identity{}, Refused
		}
	}
	if e.dead || u == nil || u.Disabled || nowMS >= e.expiresAt {
		return Identity{}, Refused
	}
	if idle := v.o.Inactivity.Milliseconds(); idle > 0 && nowMS-e.lastSeen.Load() > idle {
		if !v.seenElsewhere(ctx, sid, e, nowMS, idle) {
			return Identity{}, Refused
		}
		if e, u, _ = v.lookup(sid); e == nil || e.dead || u == nil || u.Disabled {
			return Identity{}, Refused
		}
	}
	return Identity{User: u, SessionID: e.id, Method: e.method, VerifiedAt: e.verifiedAt,
		BackupEligible: e.backupEligible, AAGUID: e.aaguid, Domain: e.domain, entry: e}, Allowed
}

func (v *View) noteStale() {
	if v.stale.CompareAndSwap(false, true) {
		v.log.Error("session view is stale: the store has not confirmed it within storage.max_staleness; "+
			"session and token checks fail closed (503) until it does", "age", v.Age().Round(time.Millisecond).String(),
			"max_staleness", v.o.MaxStaleness.String())
	}
}

// fetch asks the store about a session the view does not know, at most once per interval: the
// question is shared by concurrent askers, and its "no" is remembered (inside the shared question,
// so that an asker arriving just after it finds the answer instead of asking again).
func (v *View) fetch(ctx context.Context, sid ID) bool {
	now := v.o.Clock().UnixNano()
	if v.missedSince(sid, now) {
		return false
	}
	err := v.fl.do(sid, func() error {
		if v.missedSince(sid, now) {
			return nil
		}
		r, err := v.st.ReadSession(ctx, EncodeID(sid))
		if err != nil {
			v.noteMiss(sid, now)
			return err
		}
		v.hook("fetch")
		if r.Found {
			v.applySession(r, r.Session.ID)
		}
		if e, u, _ := v.lookup(sid); e == nil || e.dead || u == nil {
			v.noteMiss(sid, now)
		}
		return nil
	})
	if err != nil {
		v.m.StoreError("fetch")
		v.log.Warn("session lookup failed", "err", err)
	}
	e, u, _ := v.lookup(sid)
	return e != nil && !e.dead && u != nil
}

// missedSince reports whether sid was asked about within the interval before now.
func (v *View) missedSince(sid ID, now int64) bool {
	v.missMu.Lock()
	at, seen := v.miss[sid]
	v.missMu.Unlock()
	return seen && now-at < int64(v.o.PollInterval)
}

func (v *View) noteMiss(sid ID, now int64) {
	v.missMu.Lock()
	if len(v.miss) >= maxMiss {
		clear(v.miss)
	}
	v.miss[sid] = now
	v.missMu.Unlock()
}

// seenElsewhere asks the store whether another replica saw an idle session more recently, at most
// once per interval per session.
func (v *View) seenElsewhere(ctx context.Context, sid ID, e *entry, nowMS, idle int64) bool {
	now := v.o.Clock().UnixNano()
	if at := e.asked.Load(); now-at < int64(v.o.PollInterval) || !e.asked.CompareAndSwap(at, now) {
		return false
	}
	var seen int64
	err := v.fl.do(sid, func() error {
		r, err := v.st.ReadSession(ctx, e.id)
		if err != nil {
			return err
		}
		v.hook("fetch")
		v.applySession(r, e.id)
		seen = r.Session.LastSeenAt.UnixMilli()
		return nil
	})
	if err != nil {
		v.m.StoreError("fetch")
		v.log.Warn("session lookup failed", "err", err)
		return false
	}
	if nowMS-seen > idle {
		return false
	}
	if ne, _, _ := v.lookup(sid); ne != nil {
		if ne.lastSeen.Load() < seen {
			ne.lastSeen.Store(seen)
		}
	}
	return true
}

// Touch records an allowed use of a session: the inactivity clock slides only on allowed checks.
func (v *View) Touch(id Identity, now time.Time) {
	if id.entry != nil {
		id.entry.lastSeen.Store(now.UnixMilli())
	}
}

// Token is the hot-path lookup of an API token by the SHA-256 of its plaintext. The use is
// recorded in memory; the flush writes it later. A token made elsewhere arrives with the next poll.
func (v *View) Token(hash [sha256.Size]byte, now time.Time) (Identity, Result) {
	if !v.Fresh() {
		v.noteStale()
		return Identity{Stale: true}, Stale
	}
	nowMS := now.UnixMilli()
	v.tmu.RLock()
	te := v.tokens[hash]
	v.tmu.RUnlock()
	if te == nil || te.dead || nowMS >= te.expiresAt {
		return Identity{}, Refused
	}
	v.umu.RLock()
	ue := v.users[te.userID]
	v.umu.RUnlock()
	if ue == nil || ue.u == nil || ue.u.Disabled {
		return Identity{}, Refused
	}
	te.lastUsed.Store(nowMS)
	return Identity{User: ue.u, Method: MethodToken, TokenHosts: te.hosts}, Allowed
}

// TokenLastUsed reports the freshest last use the view knows for a token (the store's copy lags
// by up to one flush interval).
func (v *View) TokenLastUsed(hash []byte) time.Time {
	var h [sha256.Size]byte
	if copy(h[:], hash) != sha256.Size {
		return time.Time{}
	}
	v.tmu.RLock()
	te := v.tokens[h]
	v.tmu.RUnlock()
	if te == nil || te.lastUsed.Load() <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(te.lastUsed.Load())
}

// Sessions counts the live sessions the view holds (for the sessions gauge).
func (v *View) Sessions() int {
	n := 0
	for i := range v.sessions {
		sh := &v.sessions[i]
		sh.mu.RLock()
		for _, e := range sh.m {
			if !e.dead {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n
}

// Flush writes last-seen times that moved since the last flush, and drops entries (tombstones
// included) past their expiry: an expired session is refused by its expiry alone.
func (v *View) Flush(ctx context.Context) error {
	nowMS := v.o.Now().UnixMilli()
	seen := map[string]time.Time{}
	used := map[string]time.Time{}
	type mark struct {
		at *atomic.Int64
		to int64
	}
	var sessionMarks, tokenMarks []mark
	for i := range v.sessions {
		sh := &v.sessions[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if nowMS >= e.expiresAt {
				delete(sh.m, id)
				continue
			}
			if ls := e.lastSeen.Load(); !e.dead && ls > e.flushed.Load() {
				seen[e.id] = time.UnixMilli(ls)
				sessionMarks = append(sessionMarks, mark{&e.flushed, ls})
			}
		}
		sh.mu.Unlock()
	}
	v.tmu.Lock()
	for h, te := range v.tokens {
		if nowMS >= te.expiresAt {
			delete(v.tokens, h)
			delete(v.tokenIDs, te.id)
			continue
		}
		if lu := te.lastUsed.Load(); !te.dead && lu > te.flushed.Load() {
			used[te.id] = time.UnixMilli(lu)
			tokenMarks = append(tokenMarks, mark{&te.flushed, lu})
		}
	}
	v.tmu.Unlock()
	// A time counts as written only once the store took it, so that a failed write (a timeout,
	// an outage) is tried again at the next flush instead of being lost.
	var errs []error
	if err := v.st.TouchSessions(ctx, seen); err != nil {
		v.m.StoreError("touch_sessions")
		errs = append(errs, err)
	} else {
		for _, m := range sessionMarks {
			m.at.Store(m.to)
		}
	}
	if err := v.st.TouchTokens(ctx, used); err != nil {
		v.m.StoreError("touch_tokens")
		errs = append(errs, err)
	} else {
		for _, m := range tokenMarks {
			m.at.Store(m.to)
		}
	}
	return errors.Join(errs...)
}

// Run keeps the view in step with the store until ctx ends: it catches up every poll interval
// and flushes last-seen times every flush interval. It returns after a final flush, which it
// makes with a fresh bounded context, so the caller must close the store only after Run returned.
func (v *View) Run(ctx context.Context) {
	// The last-seen flush is a write of every session seen since the last one; it runs beside
	// the change poll, not in its loop, so that a slow write (the store's write lock held by a
	// burst of logins) never delays the poll that keeps the view confirmed.
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		tick := time.NewTicker(v.o.FlushInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := v.Flush(ctx); err != nil && ctx.Err() == nil {
				v.log.Warn("writing session last-seen times failed", "err", err)
			}
		}
	}()
	tick := time.NewTicker(v.o.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-flushed
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := v.Flush(fctx); err != nil {
				v.log.Warn("final write of session last-seen times failed", "err", err)
			}
			cancel()
			return
		case <-tick.C:
		}
		if err := v.CatchUp(ctx); err != nil && ctx.Err() == nil {
			if v.Fresh() {
				v.log.Warn("session view: store change poll failed", "err", err)
			} else {
				v.noteStale()
			}
		}
	}
}

// flight lets one caller ask the store about an ID while others wait for its answer.
type flight struct {
	mu    sync.Mutex
	calls map[ID]*call
}

type call struct {
	done chan struct{}
	err  error
}

func (f *flight) do(id ID, fn func() error) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[ID]*call{}
	}
	if c := f.calls[id]; c != nil {
		f.mu.Unlock()
		<-c.done
		return c.err
	}
	c := &call{done: make(chan struct{})}
	f.calls[id] = c
	f.mu.Unlock()
	c.err = fn()
	f.mu.Lock()
	delete(f.calls, id)
	f.mu.Unlock()
	close(c.done)
	return c.err
}
