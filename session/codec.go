// Package session is Latchkey's hot path: the session cookie codec, the in-memory view of users,
// sessions and API tokens that every forward-auth check reads instead of the database, and the
// Identity a check finds. The view is loaded once at start, then follows the store's change log
// (issue 17): each change re-reads only the rows it names, every entry carries the revision it
// reflects so that an older read never overwrites a newer one, and a view that cannot confirm
// itself with the store within MaxStaleness fails closed.
package session

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
)

// IDLen is the size of a session ID: 128 random bits.
const IDLen = 16

// ID is a session ID.
type ID [IDLen]byte

// NewID returns a random session ID.
func NewID() (ID, error) {
	var id ID
	_, err := rand.Read(id[:])
	return id, err
}

// EncodeID is the text form of an ID, as the store keeps it (base64url, no padding).
func EncodeID(id ID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// DecodeID parses EncodeID's form.
func DecodeID(s string) (id ID, ok bool) {
	if base64.RawURLEncoding.DecodedLen(len(s)) != IDLen {
		return id, false
	}
	n, err := base64.RawURLEncoding.Decode(id[:], []byte(s))
	return id, err == nil && n == IDLen
}

// cookieVersion leads the cookie payload so that the format can change without misreading old cookies.
const cookieVersion = 1

// ErrBadCookie is any cookie value that does not verify.
var ErrBadCookie = errors.New("session: invalid cookie")

// Codec turns a session ID into a signed and encrypted cookie value and back. The payload is a
// fixed 25-byte record (version, ID, issue time) rather than gob, which keeps decoding cheap on
// the forward-auth hot path. securecookie binds the cookie name into the HMAC, so a value minted
// for one cookie (the ceremony cookie, say) never decodes as another.
type Codec struct {
	sc   *securecookie.SecureCookie
	name string

	// The verified-value cache remembers cookie values that passed verification, so that the hot
	// path pays for HMAC and AES once per cookie rather than once per request. Only values that
	// verified can enter it, so an attacker cannot fill it. It has two generations: when the
	// current one is full it becomes the previous one, and a hit there moves back, so a working
	// set up to the generation size never falls off a cliff (issue 17: 100k sessions).
	mu        sync.RWMutex
	cur, prev map[string]ID
}

// verifiedGen bounds one generation of the verified cache (about 250 bytes an entry).
const verifiedGen = 128 << 10

// NewCodec returns a codec for the cookie name with the given keys; values older than maxAge fail.
func NewCodec(name string, hashKey, blockKey []byte, maxAge time.Duration) *Codec {
	sc := securecookie.New(hashKey, blockKey)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxAge(int(maxAge / time.Second))
	sc.MaxLength(4096)
	return &Codec{sc: sc, name: name, cur: map[string]ID{}}
}

// DecodeCached is Decode with the verified-value cache in front of it.
func (c *Codec) DecodeCached(value string) (ID, error) {
	c.mu.RLock()
	id, ok := c.cur[value]
	var old bool
	if !ok {
		id, old = c.prev[value]
	}
	c.mu.RUnlock()
	if ok {
		return id, nil
	}
	if !old {
		var err error
		if id, err = c.Decode(value); err != nil {
			return id, err
		}
	}
	c.mu.Lock()
	if len(c.cur) >= verifiedGen {
		c.prev, c.cur = c.cur, make(map[string]ID, len(c.cur)/2)
	}
	c.cur[strings.Clone(value)] = id
	c.mu.Unlock()
	return id, nil
}

// Encode makes the cookie value for id, issued at now.
func (c *Codec) Encode(id ID, now time.Time) (string, error) {
	var buf [1 + IDLen + 8]byte
	buf[0] = cookieVersion
	copy(buf[1:], id[:])
	binary.BigEndian.PutUint64(buf[1+IDLen:], uint64(now.Unix()))
	v, err := c.sc.Encode(c.name, buf[:])
	if err != nil {
		return "", fmt.Errorf("session: encode cookie: %w", err)
	}
	return v, nil
}

// Decode verifies a cookie value and returns its session ID.
func (c *Codec) Decode(value string) (id ID, err error) {
	var payload []byte
	if len(value) == 0 || len(value) > 4096 {
		return id, ErrBadCookie
	}
	if err := c.sc.Decode(c.name, value, &payload); err != nil {
		return id, ErrBadCookie
	}
	if len(payload) != 1+IDLen+8 || payload[0] != cookieVersion {
		return id, ErrBadCookie
	}
	copy(id[:], payload[1:])
	return id, nil
}
