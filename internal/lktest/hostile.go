package lktest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
)

// Raw CBOR and cookie builders for hostile inputs that an honest authenticator or codec never
// produces: absurd declared lengths, indefinite-length items, deep nesting, duplicate keys, and
// cookies minted with chosen keys and timestamps.

// CBORHead encodes a CBOR item head: major type (0-7) and argument n in the shortest form.
func CBORHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

// CBORText encodes a text string.
func CBORText(s string) []byte { return append(CBORHead(3, uint64(len(s))), s...) }

// CBORBytes encodes a byte string.
func CBORBytes(b []byte) []byte { return append(CBORHead(2, uint64(len(b))), b...) }

// CBORNested returns depth nested one-element arrays around an integer 0.
func CBORNested(depth int) []byte {
	b := make([]byte, 0, depth+1)
	for range depth {
		b = append(b, 0x81)
	}
	return append(b, 0x00)
}

// HostileAttestationObjects are attestationObject values that no authenticator sends, each
// aimed at a CBOR decoder weakness. authData is an honest authenticator data (so that a decoder
// that survives the outer structure still has something to chew on).
func HostileAttestationObjects(authData []byte) map[string][]byte {
	none := append(CBORText("fmt"), CBORText("none")...)
	attStmt := append(CBORText("attStmt"), 0xa0)
	ad := append(CBORText("authData"), CBORBytes(authData)...)
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	random := make([]byte, 512)
	rand.Read(random)
	return map[string][]byte{
		"random bytes": random,
		// A byte string that claims 2^64-1 bytes: a decoder that allocates up front dies.
		"2^64-1 byte string length": cat([]byte{0xa3}, none, attStmt, CBORText("authData"), []byte{0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, authData),
		"2^64-1 map length":         cat([]byte{0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, none, attStmt, ad),
		"2^64-1 array length":       cat([]byte{0xa3}, none, CBORText("attStmt"), []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ad),
		"indefinite-length map":     cat([]byte{0xbf}, none, attStmt, ad, []byte{0xff}),
		"indefinite map unclosed":   cat([]byte{0xbf}, none, attStmt, ad),
		"indefinite byte string":    cat([]byte{0xa3}, none, attStmt, CBORText("authData"), []byte{0x5f}, CBORBytes(authData[:10]), CBORBytes(authData[10:]), []byte{0xff}),
		"10000 nesting levels":      cat([]byte{0xa3}, none, CBORText("attStmt"), CBORNested(10000), ad),
		"duplicate map keys":        cat([]byte{0xa4}, none, attStmt, ad, CBORText("fmt"), CBORText("packed")),
		"duplicate authData":        cat([]byte{0xa4}, none, attStmt, ad, ad),
		"truncated":                 cat([]byte{0xa3}, none, attStmt, CBORText("authData"), CBORHead(2, uint64(len(authData)+100)), authData),
		"tag bomb":                  cat([]byte{0xa3}, none, attStmt, CBORText("authData"), []byte(strings.Repeat("\xd8\x18", 5000)), CBORBytes(authData)),
		"empty":                     {},
	}
}

// HostileCOSEKeys are credential public keys (the CBOR inside authenticator data) with the same
// weaknesses as HostileAttestationObjects.
func HostileCOSEKeys(honest []byte) map[string][]byte {
	return map[string][]byte{
		"duplicate kty":         append([]byte{honest[0] + 1}, append(honest[1:], 0x01, 0x02)...),
		"10000 nesting levels":  append([]byte{0xa1, 0x01}, CBORNested(10000)...),
		"indefinite map":        append(append([]byte{0xbf}, honest[1:]...), 0xff),
		"2^64-1 x coordinate":   append([]byte{0xa1, 0x21}, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"2^64-1 map length":     append([]byte{0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, honest[1:]...),
		"truncated honest key":  honest[:len(honest)/2],
		"random bytes (75 B)":   RandomKey(75),
		"empty map":             {0xa0},
		"text instead of a map": CBORText("public key"),
	}
}

// AttestRaw builds a registration response for opts whose attestationObject is exactly obj,
// with an honest clientDataJSON (so that a server gets past the challenge to the CBOR).
func (p *Passkey) AttestRaw(opts Options, origin string, obj []byte) []byte {
	c := Ceremony{Origin: origin, Type: "webauthn.create", Challenge: opts.PublicKey.Challenge}
	cd := p.clientData(c.Type, c)
	resp := map[string]any{
		"id": b64(p.ID), "rawId": b64(p.ID), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64(cd), "attestationObject": b64(obj), "transports": []string{"internal"}},
	}
	b, _ := json.Marshal(resp)
	return b
}

// AuthData builds authenticator data for rpID with flags and counter, followed by attested
// credential data (AAGUID, credential ID, the given COSE key) when coseKey is not nil.
func (p *Passkey) AuthData(rpID string, flags byte, counter uint32, coseKey []byte) []byte {
	var att []byte
	if coseKey != nil {
		att = append(att, p.AAGUID[:]...)
		att = binary.BigEndian.AppendUint16(att, uint16(len(p.ID)))
		att = append(att, p.ID...)
		att = append(att, coseKey...)
		flags |= FlagAT
	}
	return p.authData(rpID, flags, counter, att)
}

// NoneAttestation wraps authenticator data into an honest "none" attestation object.
func NoneAttestation(authData []byte) []byte {
	b := []byte{0xa3}
	b = append(b, CBORText("fmt")...)
	b = append(b, CBORText("none")...)
	b = append(b, CBORText("attStmt")...)
	b = append(b, 0xa0)
	b = append(b, CBORText("authData")...)
	return append(b, CBORBytes(authData)...)
}

// MintCookie builds a gorilla/securecookie value by hand: the encrypted payload, the given
// Unix timestamp, and the MAC over "name|timestamp|value". It lets tests make cookies that
// are validly signed but too old, or signed for another name, without the library's clock.
func MintCookie(name string, hashKey, blockKey, payload []byte, timestamp int64) (string, error) {
	block, err := aes.NewCipher(blockKey)
	if err != nil {
		return "", fmt.Errorf("lktest: mint cookie: %w", err)
	}
	iv := make([]byte, block.BlockSize())
	rand.Read(iv)
	ct := make([]byte, len(payload))
	cipher.NewCTR(block, iv).XORKeyStream(ct, payload)
	value := base64.URLEncoding.EncodeToString(append(iv, ct...))
	signed := fmt.Sprintf("%s|%d|%s", name, timestamp, value)
	mac := hmac.New(sha256.New, hashKey)
	mac.Write([]byte(signed))
	out := append([]byte(signed[len(name)+1:]+"|"), mac.Sum(nil)...)
	return base64.URLEncoding.EncodeToString(out), nil
}

// OpenCookie reverses MintCookie without checking the MAC or the age: it returns the decrypted
// payload and the timestamp, for tests that need the session ID inside a real cookie.
func OpenCookie(value string, blockKey []byte) (payload []byte, timestamp int64, err error) {
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		return nil, 0, fmt.Errorf("lktest: open cookie: %w", err)
	}
	parts := strings.SplitN(string(raw), "|", 3)
	if len(parts) != 3 {
		return nil, 0, fmt.Errorf("lktest: open cookie: %d parts", len(parts))
	}
	if _, err := fmt.Sscan(parts[0], &timestamp); err != nil {
		return nil, 0, fmt.Errorf("lktest: open cookie: timestamp: %w", err)
	}
	enc, err := base64.URLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, 0, fmt.Errorf("lktest: open cookie: value: %w", err)
	}
	block, err := aes.NewCipher(blockKey)
	if err != nil || len(enc) < block.BlockSize() {
		return nil, 0, fmt.Errorf("lktest: open cookie: cipher: %w", err)
	}
	payload = make([]byte, len(enc)-block.BlockSize())
	cipher.NewCTR(block, enc[:block.BlockSize()]).XORKeyStream(payload, enc[block.BlockSize():])
	return payload, timestamp, nil
}
