package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
)

// sessionIDLen is the size of a session ID: 128 random bits.
const sessionIDLen = 16

// cookieVersion leads the cookie payload so that the format can change without misreading old cookies.
const cookieVersion = 1

// codec turns a session ID into a signed and encrypted cookie value and back. The payload is a
// fixed 25-byte record (version, ID, issue time) rather than gob, which keeps decoding cheap on
// the forward-auth hot path. securecookie binds the cookie name into the HMAC, so a value minted
// for one cookie (the ceremony cookie, say) never decodes as another.
type codec struct {
	sc   *securecookie.SecureCookie
	name string

	// verified remembers cookie values that passed verification, so that the forward-auth hot
	// path pays for HMAC and AES once per cookie rather than once per request. Only values that
	// verified can enter it, so an attacker cannot fill it; it is bounded and emptied when full.
	// Expiry and revocation are still checked against the session on every request.
	mu       sync.RWMutex
	verified map[string][sessionIDLen]byte
}

// maxVerified bounds the verified-cookie cache (about 200 bytes an entry).
const maxVerified = 50000

func newCodec(name string, hashKey, blockKey []byte, maxAge time.Duration) *codec {
	sc := securecookie.New(hashKey, blockKey)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxAge(int(maxAge / time.Second))
	sc.MaxLength(4096)
	return &codec{sc: sc, name: name, verified: map[string][sessionIDLen]byte{}}
}

// decodeCached is decode with the verified-cookie cache in front of it.
func (c *codec) decodeCached(value string) ([sessionIDLen]byte, error) {
	c.mu.RLock()
	id, ok := c.verified[value]
	c.mu.RUnlock()
	if ok {
		return id, nil
	}
	id, err := c.decode(value)
	if err != nil {
		return id, err
	}
	c.mu.Lock()
	if len(c.verified) >= maxVerified {
		c.verified = map[string][sessionIDLen]byte{}
	}
	c.verified[strings.Clone(value)] = id
	c.mu.Unlock()
	return id, nil
}

func (c *codec) encode(id [sessionIDLen]byte, now time.Time) (string, error) {
	var buf [1 + sessionIDLen + 8]byte
	buf[0] = cookieVersion
	copy(buf[1:], id[:])
	binary.BigEndian.PutUint64(buf[1+sessionIDLen:], uint64(now.Unix()))
	v, err := c.sc.Encode(c.name, buf[:])
	if err != nil {
		return "", fmt.Errorf("auth: encode cookie: %w", err)
	}
	return v, nil
}

var errBadCookie = errors.New("auth: invalid cookie")

func (c *codec) decode(value string) (id [sessionIDLen]byte, err error) {
	var payload []byte
	if len(value) == 0 || len(value) > 4096 {
		return id, errBadCookie
	}
	if err := c.sc.Decode(c.name, value, &payload); err != nil {
		return id, errBadCookie
	}
	if len(payload) != 1+sessionIDLen+8 || payload[0] != cookieVersion {
		return id, errBadCookie
	}
	copy(id[:], payload[1:])
	return id, nil
}

func newSessionID() ([sessionIDLen]byte, error) {
	var id [sessionIDLen]byte
	_, err := rand.Read(id[:])
	return id, err
}

func encodeID(id [sessionIDLen]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func decodeID(s string) (id [sessionIDLen]byte, ok bool) {
	if base64.RawURLEncoding.DecodedLen(len(s)) != sessionIDLen {
		return id, false
	}
	n, err := base64.RawURLEncoding.Decode(id[:], []byte(s))
	return id, err == nil && n == sessionIDLen
}

// Identity is who a request belongs to, as the forward-auth check found it.
type Identity struct {
	User      *User
	SessionID string // empty for API tokens
	Method    string // passkey | recovery_code | magic_link | token
	// VerifiedAt is the last passkey verification of the session (step-up).
	VerifiedAt time.Time
	// BackupEligible and AAGUID describe the passkey that last verified the session.
	BackupEligible bool
	AAGUID         string
	// TokenHosts limits an API token to these hosts (canonical; empty for sessions).
	TokenHosts []string

	session *viewSession // for Touch
}

// Restricted reports whether the session was made by a recovery method and may only enrol a passkey.
func (id Identity) Restricted() bool {
	return id.Method == MethodRecoveryCode || id.Method == MethodMagicLink
}

// Session methods, re-exported for callers that only import auth.
const (
	MethodPasskey      = "passkey"
	MethodRecoveryCode = "recovery_code"
	MethodMagicLink    = "magic_link"
	MethodToken        = "token"
)

// Authenticate finds the identity behind a request's session cookie. It reads no database in
// the common case: the cookie is decoded and checked against the in-memory view. It never writes.
// A restricted (recovery) session is returned as such; callers that guard resources must refuse it.
func (s *Service) Authenticate(r *http.Request) (Identity, bool) {
	if id, ok := s.authenticateToken(r); ok {
		return id, true
	}
	// A browser can hold more than one cookie of this name (a stale host-only one next to the
	// domain one): the first that verifies wins. The number tried is bounded, so a header that
	// repeats the cookie many times costs little.
	cur := cookieCursor{lines: r.Header["Cookie"]}
	for try := 0; try < maxCookieTries; try++ {
		value, ok := cur.next(s.opts.CookieName)
		if !ok {
			break
		}
		sid, err := s.sessions.decodeCached(value)
		if err != nil {
			continue
		}
		return s.view.check(r.Context(), sid, s.now())
	}
	return Identity{}, false
}

// maxCookieTries bounds how many same-named session cookies one request may make us verify.
const maxCookieTries = 4

// Touch records an allowed use of a session: the inactivity clock slides only on allowed
// checks, never on refused ones (a 403 must not keep an idle session alive).
func (s *Service) Touch(id Identity) {
	if id.session != nil {
		id.session.lastSeen.Store(s.now().UnixMilli())
	}
}

// cookieValue returns the first cookie of that name. Unlike r.Cookie it does not build a Cookie
// for every cookie in the header, and it stops at the first match.
func cookieValue(r *http.Request, name string) (string, bool) {
	c := cookieCursor{lines: r.Header["Cookie"]}
	return c.next(name)
}

// cookieCursor walks the Cookie header lines without allocating, so that callers can look for
// further cookies of the same name.
type cookieCursor struct {
	lines []string
	line  string // the unread rest of the current line
}

func (c *cookieCursor) next(name string) (string, bool) {
	for {
		for len(c.line) > 0 {
			var part string
			if j := indexByte(c.line, ';'); j >= 0 {
				part, c.line = c.line[:j], c.line[j+1:]
			} else {
				part, c.line = c.line, ""
			}
			part = trimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
		if len(c.lines) == 0 {
			return "", false
		}
		c.line, c.lines = c.lines[0], c.lines[1:]
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// sessionCookie builds the session cookie; an empty value with maxAge < 0 clears it.
func (s *Service) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.opts.CookieName,
		Value:    value,
		Path:     "/",
		Domain:   s.opts.CookieDomain,
		MaxAge:   maxAge,
		Secure:   s.secure(),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

func (s *Service) secure() bool { return s.opts.PublicURL.Scheme == "https" }

// newSession creates a session row, adds it to the view and sets the cookie.
func (s *Service) newSession(ctx context.Context, w http.ResponseWriter, r *http.Request, sess newSessionParams) (string, error) {
	id, err := newSessionID()
	if err != nil {
		return "", fmt.Errorf("auth: session id: %w", err)
	}
	now := s.now()
	row := sessionRow(id, sess, now, s.opts.Lifetime, r.UserAgent(), s.clientAddr(r))
	if err := s.store.CreateSession(ctx, row); err != nil {
		return "", err
	}
	value, err := s.sessions.encode(id, now)
	if err != nil {
		return "", err
	}
	s.view.add(row)
	http.SetCookie(w, s.sessionCookie(value, int(s.opts.Lifetime/time.Second)))
	return row.ID, nil
}

func (s *Service) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.sessionCookie("", -1))
}
