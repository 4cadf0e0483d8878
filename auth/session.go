package auth

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// Session methods, re-exported for callers that only import auth.
const (
	MethodPasskey      = session.MethodPasskey
	MethodRecoveryCode = session.MethodRecoveryCode
	MethodMagicLink    = session.MethodMagicLink
	MethodToken        = session.MethodToken
)

// Authenticate finds the identity behind a request's API token or session cookie. It reads no
// database in the common case: the cookie is decoded and checked against the in-memory view. It
// never writes. A restricted (recovery) session is returned as such; callers that guard resources
// must refuse it. When the view is stale (issue 17), a request that presents a token or a validly
// signed cookie is refused with Identity.Stale set, so that adapters answer 503, not a login.
func (s *Service) Authenticate(r *http.Request) (Identity, bool) {
	return s.authenticate(r, s.domainOf(r), s.now())
}

// AuthenticateAt is Authenticate for a request about another host, at a time the caller read
// once for the whole request: forward auth judges the cookie the browser sent to the protected
// host with that host's domain (issue 23), and passes the same instant to the rules and to Touch.
func (s *Service) AuthenticateAt(r *http.Request, host string, now time.Time) (Identity, bool) {
	return s.authenticate(r, s.domainForHost(host), now)
}

// AuthenticateHost is AuthenticateAt now.
func (s *Service) AuthenticateHost(r *http.Request, host string) (Identity, bool) {
	return s.AuthenticateAt(r, host, s.now())
}

func (s *Service) authenticate(r *http.Request, d *domain, now time.Time) (Identity, bool) {
	if id, ok := s.authenticateToken(r, now); ok || id.Stale {
		return id, ok
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
		sid, err := d.codec.decodeCached(value)
		if err != nil {
			continue
		}
		id, res := s.view.Check(r.Context(), sid, now)
		if res == session.Allowed && id.Domain != d.key {
			// A cookie minted for another domain, carried here by hand (issue 23). The codecs of
			// the other domains bind their name into the HMAC, so this is defence in depth.
			return Identity{}, false
		}
		return id, res == session.Allowed
	}
	return Identity{}, false
}

// maxCookieTries bounds how many same-named session cookies one request may make us verify.
const maxCookieTries = 4

// Touch records an allowed use of a session: the inactivity clock slides only on allowed
// checks, never on refused ones (a 403 must not keep an idle session alive).
func (s *Service) Touch(id Identity) { s.view.Touch(id, s.now()) }

// TouchAt is Touch at the instant the caller read for the request.
func (s *Service) TouchAt(id Identity, now time.Time) { s.view.Touch(id, now) }

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

// sessionCookie builds the session cookie of a domain; an empty value with maxAge < 0 clears it.
func (s *Service) sessionCookie(d *domain, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.opts.CookieName,
		Value:    value,
		Path:     "/",
		Domain:   d.Name,
		MaxAge:   maxAge,
		Secure:   d.PublicURL.Scheme == "https",
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
	d := s.domainOf(r)
	row := sessionRow(id, sess, now, s.opts.Lifetime, r.UserAgent(), s.clientAddr(r))
	row.Domain = d.key
	rev, err := s.store.CreateSessionRev(ctx, row)
	if err != nil {
		return "", err
	}
	value, err := d.codec.encode(id, now)
	if err != nil {
		return "", err
	}
	s.view.Add(row, rev)
	http.SetCookie(w, s.sessionCookie(d, value, int(s.opts.Lifetime/time.Second)))
	return row.ID, nil
}

func (s *Service) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.sessionCookie(s.domainOf(r), "", -1))
}
