package auth

import (
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// The hot path (cookie codec, view, identity, token lookup) lives in package session; these
// names keep auth's call sites short.

// User is the view's immutable copy of a user, shared by every check.
type User = session.User

// Identity is who a request belongs to, as the forward-auth check found it. Identity.Stale is
// set on a refused check that the view could not answer (503 with Retry-After).
type Identity = session.Identity

// sessionIDLen is the size of a session ID: 128 random bits.
const sessionIDLen = session.IDLen

func newSessionID() (session.ID, error) { return session.NewID() }

func encodeID(id session.ID) string { return session.EncodeID(id) }

func decodeID(s string) (session.ID, bool) { return session.DecodeID(s) }

// codec is session.Codec with auth's lower-case call sites.
type codec struct{ c *session.Codec }

func newCodec(name string, hashKey, blockKey []byte, maxAge time.Duration) *codec {
	return &codec{c: session.NewCodec(name, hashKey, blockKey, maxAge)}
}

func (c *codec) encode(id session.ID, now time.Time) (string, error) { return c.c.Encode(id, now) }
func (c *codec) decode(value string) (session.ID, error)             { return c.c.Decode(value) }
func (c *codec) decodeCached(value string) (session.ID, error)       { return c.c.DecodeCached(value) }
