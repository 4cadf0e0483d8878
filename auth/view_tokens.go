package auth

import (
	"crypto/sha256"
	"time"
)

// token is the hot-path lookup of an API token by the SHA-256 of its plaintext: one map read
// under the read lock. It returns the token's owner when the token is live (not expired, its
// user present and enabled) and records the use in memory; flush writes it to the store later.
func (v *view) token(hash [sha256.Size]byte, now time.Time) (*viewToken, *User, bool) {
	nowMS := now.UnixMilli()
	v.mu.RLock()
	vt := v.tokens[hash]
	var u *User
	if vt != nil {
		u = v.users[vt.userID]
	}
	v.mu.RUnlock()
	if vt == nil || u == nil || u.Disabled || nowMS >= vt.expiresAt {
		return nil, nil, false
	}
	vt.lastUsed.Store(nowMS)
	return vt, u, true
}

// tokenLastUsed reports the freshest last use the view knows for a token (the store's copy lags
// behind by up to one flush interval).
func (v *view) tokenLastUsed(hash []byte) time.Time {
	var h [sha256.Size]byte
	if copy(h[:], hash) != sha256.Size {
		return time.Time{}
	}
	v.mu.RLock()
	vt := v.tokens[h]
	v.mu.RUnlock()
	if vt == nil || vt.lastUsed.Load() <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(vt.lastUsed.Load())
}
