package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Recovery codes are 16 characters of Crockford base32 (80 bits) in groups of four: easy to
// read aloud and type, and far beyond offline brute force, so a plain SHA-256 hash in the
// database reveals nothing usable.
const (
	recoveryCodeCount = 10
	codeAlphabet      = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

func newRecoveryCodes() (codes []string, hashes [][]byte, err error) {
	for range recoveryCodeCount {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, nil, fmt.Errorf("auth: recovery code: %w", err)
		}
		var b strings.Builder
		for i, c := range raw {
			if i > 0 && i%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(codeAlphabet[c&31]) // 32 symbols: the low 5 bits are uniform
		}
		code := b.String()
		codes = append(codes, code)
		hashes = append(hashes, hashCode(code))
	}
	return codes, hashes, nil
}

// normalizeCode accepts what people type: lower case, spaces or dashes anywhere, and the letters
// Crockford base32 folds (O→0, I and L→1).
func normalizeCode(code string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r == 'O':
			b.WriteByte('0')
		case r == 'I' || r == 'L':
			b.WriteByte('1')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hashCode(code string) []byte {
	sum := sha256.Sum256([]byte("latchkey recovery code\x00" + normalizeCode(code)))
	return sum[:]
}

// newToken returns a random 256-bit URL-safe token and its hash, which is all the store keeps.
func newToken() (token string, hash []byte, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("auth: token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	return token, hashToken(token), nil
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
