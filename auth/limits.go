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
var limitSpecs = map[string]limitSpec{
	"login-ip":      {every: time.Second, burst: 30},
	"register-ip":   {every: 2 * time.Second, burst: 20},
	"recover-ip":    {every: time.Minute, burst: 10},
	"recover-user":  {every: 5 * time.Minute, burst: 5},
	"recover-email": {every: 10 * time.Minute, burst: 3},
	"token-ip":      {every: time.Second, burst: 20},
	"enroll-ip":     {every: 2 * time.Second, burst: 20},
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
}

func newLimits(now func() time.Time) *limits {
	return &limits{now: now, entries: map[string]*limiterEntry{}, overflow: map[string]*rate.Limiter{}}
}

// allow takes one token for key in scope; when none is left it sets Retry-After and returns a 429.
func (l *limits) allow(w http.ResponseWriter, scope, key string) error {
	if d := l.reserve(scope, key, true); d > 0 {
		secs := int(d/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return fail(http.StatusTooManyRequests, "too many attempts; try again later", nil)
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
	l.evictIdle(l.now())
	l.mu.Unlock()
}

// size reports how many keys are tracked (for tests of the bound).
func (l *limits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
