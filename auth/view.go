package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/latchkeyhq/latchkey/store"
)

// User is the view's immutable copy of a user, shared by every check; GroupsHeader is the
// precomputed Remote-Groups value.
type User struct {
	ID           string
	Name         string
	DisplayName  string
	Email        string
	Groups       []string
	GroupsHeader string
	Disabled     bool
}

func viewUser(u store.User) *User {
	return &User{ID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Email: u.Email,
		Groups: u.Groups, GroupsHeader: strings.Join(u.Groups, ","), Disabled: u.Disabled}
}

type viewSession struct {
	id             string
	userID         string
	method         string
	createdAt      int64 // unix ms
	expiresAt      int64
	verifiedAt     time.Time
	backupEligible bool
	aaguid         string
	lastSeen       atomic.Int64 // unix ms; slides on allowed checks
	flushed        atomic.Int64 // lastSeen value last written to the store
}

type viewToken struct {
	id        string
	userID    string
	hosts     []string
	expiresAt int64
	lastUsed  atomic.Int64
	flushed   atomic.Int64
}

// view is the in-memory picture of users, live sessions and tokens that the forward-auth check
// reads instead of the database. It is replaced whole from a store snapshot whenever the store's
// revision moves (polled, so that the CLI and other replicas reach it), and updated in place by
// changes this process makes.
type view struct {
	store      *store.Store
	log        *slog.Logger
	inactivity int64 // ms
	now        func() time.Time

	mu       sync.RWMutex
	rev      int64
	users    map[string]*User
	sessions map[[sessionIDLen]byte]*viewSession
	tokens   map[[sha256.Size]byte]*viewToken
	// dead remembers validly signed cookies whose session is gone, so that replaying one does not
	// reach the database again. It is bounded: when full it is dropped and refilled.
	dead map[[sessionIDLen]byte]struct{}
}

const maxDead = 10000

func newView(st *store.Store, log *slog.Logger, inactivity time.Duration, now func() time.Time) *view {
	return &view{store: st, log: log, inactivity: inactivity.Milliseconds(), now: now,
		users: map[string]*User{}, sessions: map[[sessionIDLen]byte]*viewSession{},
		tokens: map[[sha256.Size]byte]*viewToken{}, dead: map[[sessionIDLen]byte]struct{}{}}
}

func newViewSession(se store.Session) *viewSession {
	vs := &viewSession{id: se.ID, userID: se.UserID, method: se.Method, createdAt: se.CreatedAt.UnixMilli(),
		expiresAt: se.ExpiresAt.UnixMilli(), verifiedAt: se.VerifiedAt, backupEligible: se.BackupEligible}
	if len(se.AAGUID) == 16 {
		vs.aaguid = uuid.UUID(se.AAGUID).String()
	}
	vs.lastSeen.Store(se.LastSeenAt.UnixMilli())
	vs.flushed.Store(se.LastSeenAt.UnixMilli())
	return vs
}

// reload replaces the view with a fresh snapshot, keeping last-seen times gathered in memory.
func (v *view) reload(ctx context.Context) error {
	snap, err := v.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	users := make(map[string]*User, len(snap.Users))
	for _, u := range snap.Users {
		users[u.ID] = viewUser(u)
	}
	sessions := make(map[[sessionIDLen]byte]*viewSession, len(snap.Sessions))
	for _, se := range snap.Sessions {
		id, ok := decodeID(se.ID)
		if !ok {
			continue
		}
		sessions[id] = newViewSession(se)
	}
	tokens := make(map[[sha256.Size]byte]*viewToken, len(snap.Tokens))
	for _, t := range snap.Tokens {
		var h [sha256.Size]byte
		if copy(h[:], t.Hash) != sha256.Size {
			continue
		}
		vt := &viewToken{id: t.ID, userID: t.UserID, hosts: t.Hosts, expiresAt: t.ExpiresAt.UnixMilli()}
		vt.lastUsed.Store(t.LastUsedAt.UnixMilli())
		vt.flushed.Store(t.LastUsedAt.UnixMilli())
		tokens[h] = vt
	}
	v.mu.Lock()
	for id, old := range v.sessions {
		if nw, ok := sessions[id]; ok && old.lastSeen.Load() > nw.lastSeen.Load() {
			nw.lastSeen.Store(old.lastSeen.Load())
		}
	}
	for h, old := range v.tokens {
		if nw, ok := tokens[h]; ok && old.lastUsed.Load() > nw.lastUsed.Load() {
			nw.lastUsed.Store(old.lastUsed.Load())
		}
	}
	v.rev, v.users, v.sessions, v.tokens = snap.Revision, users, sessions, tokens
	v.dead = map[[sessionIDLen]byte]struct{}{}
	v.mu.Unlock()
	return nil
}

// add inserts a session this process just created.
func (v *view) add(se store.Session) {
	id, ok := decodeID(se.ID)
	if !ok {
		return
	}
	v.mu.Lock()
	v.sessions[id] = newViewSession(se)
	delete(v.dead, id)
	v.mu.Unlock()
}

// check is the hot path: a map lookup and a few comparisons under a read lock.
func (v *view) check(ctx context.Context, sid [sessionIDLen]byte, now time.Time) (Identity, bool) {
	nowMS := now.UnixMilli()
	v.mu.RLock()
	vs := v.sessions[sid]
	_, dead := v.dead[sid]
	var u *User
	if vs != nil {
		u = v.users[vs.userID]
	}
	v.mu.RUnlock()
	if vs == nil || u == nil {
		if dead {
			return Identity{}, false
		}
		// A validly signed cookie that the view does not know (a session or user made by another
		// process since the last reload). Only cookies minted with our keys get here, so this read
		// cannot be driven by an attacker at will, and the answer is remembered either way.
		vs, u = v.fetch(ctx, sid)
		if vs == nil {
			return Identity{}, false
		}
	}
	if u == nil || u.Disabled || nowMS >= vs.expiresAt {
		return Identity{}, false
	}
	if v.inactivity > 0 && nowMS-vs.lastSeen.Load() > v.inactivity && !v.seenElsewhere(ctx, vs, nowMS) {
		return Identity{}, false
	}
	return Identity{User: u, SessionID: vs.id, Method: vs.method, VerifiedAt: vs.verifiedAt,
		BackupEligible: vs.backupEligible, AAGUID: vs.aaguid, session: vs}, true
}

// seenElsewhere asks the store whether another replica saw the session more recently than this one.
func (v *view) seenElsewhere(ctx context.Context, vs *viewSession, nowMS int64) bool {
	se, err := v.store.Session(ctx, vs.id)
	if err != nil || !se.RevokedAt.IsZero() {
		return false
	}
	seen := se.LastSeenAt.UnixMilli()
	if nowMS-seen > v.inactivity {
		return false
	}
	if seen > vs.lastSeen.Load() {
		vs.lastSeen.Store(seen)
	}
	return true
}

func (v *view) fetch(ctx context.Context, sid [sessionIDLen]byte) (*viewSession, *User) {
	se, err := v.store.Session(ctx, encodeID(sid))
	live := err == nil && se.RevokedAt.IsZero() && v.now().Before(se.ExpiresAt)
	var u *User
	if live {
		var su store.User
		su, err = v.store.UserByID(ctx, se.UserID)
		live = err == nil && !su.Disabled
		u = viewUser(su)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		v.log.Warn("session lookup failed", "err", err)
		return nil, nil // not remembered as dead: the store may answer next time
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !live {
		if len(v.dead) >= maxDead {
			v.dead = map[[sessionIDLen]byte]struct{}{}
		}
		v.dead[sid] = struct{}{}
		return nil, nil
	}
	vs := newViewSession(se)
	v.sessions[sid] = vs
	// The store's copy is the freshest: replace whatever the view held for this user.
	v.users[u.ID] = u
	return vs, u
}

// revision reports the store revision the view reflects.
func (v *view) revision() int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.rev
}

// run polls the store's revision and reloads on change; it also flushes last-seen times.
func (v *view) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	flushEvery := 30 * time.Second / every
	if flushEvery < 1 {
		flushEvery = 1
	}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			v.flush(context.Background())
			return
		case <-tick.C:
		}
		rev, err := v.store.Revision(ctx)
		if err != nil {
			v.log.Warn("store revision check failed", "err", err)
			continue
		}
		if rev != v.revision() {
			if err := v.reload(ctx); err != nil {
				v.log.Warn("view reload failed", "err", err)
			}
		}
		if n%int(flushEvery) == 0 {
			v.flush(ctx)
		}
	}
}

// flush writes last-seen times that moved since the last flush.
func (v *view) flush(ctx context.Context) {
	seen := map[string]time.Time{}
	used := map[string]time.Time{}
	v.mu.RLock()
	for _, vs := range v.sessions {
		if ls := vs.lastSeen.Load(); ls > vs.flushed.Load() {
			seen[vs.id] = time.UnixMilli(ls)
			vs.flushed.Store(ls)
		}
	}
	for _, vt := range v.tokens {
		if lu := vt.lastUsed.Load(); lu > vt.flushed.Load() {
			used[vt.id] = time.UnixMilli(lu)
			vt.flushed.Store(lu)
		}
	}
	v.mu.RUnlock()
	if err := v.store.TouchSessions(ctx, seen); err != nil {
		v.log.Warn("writing session last-seen times failed", "err", err)
	}
	if err := v.store.TouchTokens(ctx, used); err != nil {
		v.log.Warn("writing token last-use times failed", "err", err)
	}
}

// activeSessions counts the sessions the view holds (for the sessions gauge).
func (v *view) activeSessions() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.sessions)
}
