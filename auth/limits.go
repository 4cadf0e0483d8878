package auth

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limitSpec is a token bucket: burst requests at once, then one per every.
type limitSpec struct {
	every time.Duration
	burst int
}

// Limits per scope. Keys are a client address or a user name. Ceremony begins are cheap for a
// person and expensive for a flood; recovery attempts are few for a person and the target of
// brute force.
//
// Recovery codes (issue 6, HOSTILE PUB-28): every attempt, right or wrong, takes a token from the
// client address's bucket and from the named account's bucket, before the code is looked at, so
// that concurrent guesses cannot overtake the count. Five tries per account, then one every ten
// minutes (144 a day, whatever the number of addresses); ten per address, then one a minute. With
// 80-bit codes that leaves nothing to brute force, and a person who mistypes twice is not bothered.
// A success forgets the account's bucket.
var limitSpecs = map[string]limitSpec{
	"login-ip":     {every: time.Second, burst: 30},
	"register-ip":  {every: 2 * time.Second, burst: 20},
	"recover-ip":   {every: time.Minute, burst: 10},
	"recover-user": {every: 10 * time.Minute, burst: 5},
	// recover-email bounds the links mailed to one account (a mail bomb); when it is empty the
	// request still answers 202 and nothing is sent, so the answer says nothing about the account.
	"recover-email": {every: 10 * time.Minute, burst: 3},
	// recover-email-ip bounds link requests from one address, whatever the account named.
	"recover-email-ip": {every: time.Minute, burst: 5},
	"token-ip":         {every: time.Second, burst: 20},
	"enroll-ip":        {every: 2 * time.Second, burst: 20},
}

// maxLimiterKeys bounds the limiter map: a flood of distinct addresses cannot grow memory without
// limit. When full, idle entries are dropped first; if none are idle, the new key shares one
// overflow bucket, which throttles the flood and nobody else.
const maxLimiterKeys = 20000

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

type limits struct {
	now      func() time.Time
	mu       sync.Mutex
	entries  map[string]*limiterEntry
	overflow map[string]*rate.Limiter
	// lastEvict throttles the idle-entry scan: with the map full, scanning on every new key
	// would make each request of a flood cost a pass over the whole map.
	lastEvict time.Time
	// mail bounds the recovery e-mails being sent at once: they are sent in the background so
	// that the answer does not depend on the account, and a flood must not pile up goroutines.
	mail chan struct{}
}

// maxMailInFlight is how many recovery e-mails may be in flight at once; more are dropped (the
// request still gets its 202, and the person can ask again).
const maxMailInFlight = 16

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, entries: map[string]*limiterEntry{}, overflow: map[string]*rate.Limiter{},
		mail: make(chan struct{}, maxMailInFlight)}
}

// mailSlot takes one of the in-flight mail slots; ok is false when all are taken.
func (l *limits) mailSlot() (release func(), ok bool) {
	select {
	case l.mail <- struct{}{}:
		return func() { <-l.mail }, true
	default:
		return nil, false
	}
}

// limiterKey bounds what a client-chosen key (a user name from a request body) costs the limiter
// map: keys longer than any user name are cut, which only merges buckets of names that cannot exist.
func limiterKey(s string) string {
	const maxLen = 128
	if len(s) > maxLen {
		return s[:maxLen]
	}
	return s
}

// allow takes one token for key in scope; when none is left it sets Retry-After and returns a 429.
func (l *limits) allow(w http.ResponseWriter, scope, key string) error {
	if d := l.reserve(scope, key, true); d > 0 {
		secs := int(d/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return fail(http.StatusTooManyRequests, N("too many attempts; try again later"), nil)
	}
	return nil
}

// blocked reports whether the key is out of tokens, without taking one.
func (l *limits) blocked(scope, key string) time.Duration { return l.reserve(scope, key, false) }

// reserve returns 0 when allowed (consuming a token if take), else how long to wait.
func (l *limits) reserve(scope, key string, take bool) time.Duration {
	spec := limitSpecs[scope]
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := scope + "\x00" + key
	e, ok := l.entries[k]
	var lim *rate.Limiter
	switch {
	case ok:
		lim = e.lim
		e.seen = now
	case len(l.entries) < maxLimiterKeys || l.evictIdle(now):
		lim = rate.NewLimiter(rate.Every(spec.every), spec.burst)
		l.entries[k] = &limiterEntry{lim: lim, seen: now}
	default:
		lim = l.overflow[scope]
		if lim == nil {
			lim = rate.NewLimiter(rate.Every(spec.every), spec.burst)
			l.overflow[scope] = lim
		}
	}
	if !take {
		if lim.TokensAt(now) >= 1 {
			return 0
		}
		r := lim.ReserveN(now, 1)
		d := r.DelayFrom(now)
		r.CancelAt(now)
		return d
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// evictIdle drops entries whose bucket is full again (nothing to remember). Caller holds mu.
func (l *limits) evictIdle(now time.Time) bool {
	if now.Sub(l.lastEvict) < time.Second {
		return false
	}
	l.lastEvict = now
	before := len(l.entries)
	for k, e := range l.entries {
		if float64(e.lim.Burst()) <= e.lim.TokensAt(now) {
			delete(l.entries, k)
		}
	}
	return len(l.entries) < before
}

// reset forgets a key (a successful recovery clears the user's failures).
func (l *limits) reset(scope, key string) {
	l.mu.Lock()
	delete(l.entries, scope+"\x00"+key)
	l.mu.Unlock()
}

func (l *limits) sweep() {
	l.mu.Lock()
	l.lastEvict = time.Time{} // the periodic sweep always scans
	l.evictIdle(l.now())
	l.mu.Unlock()
}

// size reports how many keys are tracked (for tests of the bound).
func (l *limits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
