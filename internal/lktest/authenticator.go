// Package lktest holds test helpers shared by Latchkey's packages: a software WebAuthn
// authenticator that can also build hostile responses, a real server on 127.0.0.1 over a real
// SQLite file, and a browser-like client that keeps cookies. It is imported by tests only.
package lktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator flag bits (WebAuthn §6.1).
const (
	FlagUP byte = 0x01
	FlagUV byte = 0x04
	FlagBE byte = 0x08
	FlagBS byte = 0x10
	FlagAT byte = 0x40
)

// Passkey is one software credential: a P-256 key pair, its ID, the user handle it was made
// for, and a signature counter.
type Passkey struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	UserHandle []byte
	Counter    uint32
	AAGUID     [16]byte
	// Flags are the authenticator-data flags used by default (UP|UV unless changed).
	Flags byte
}

// NewPasskey makes a credential with UP and UV set and a random AAGUID-free identity.
func NewPasskey() *Passkey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &Passkey{ID: id, Key: k, Flags: FlagUP | FlagUV}
}

// Ceremony overrides for a response; zero values mean "as an honest browser would".
type Ceremony struct {
	Origin       string // clientData.origin
	Type         string // clientData.type
	RPID         string // hashed into authenticator data
	Challenge    string // base64url; default: from the options
	CrossOrigin  bool
	TopOrigin    string
	Flags        *byte   // authenticator flags (AT is added for attestations)
	Counter      *uint32 // default: the passkey's counter (+1 for assertions is the caller's job)
	BadSignature bool
	UserHandle   []byte // default: the passkey's
	NoUserHandle bool
	CredentialID []byte // default: the passkey's
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *Passkey) clientData(typ string, c Ceremony) []byte {
	cd := map[string]any{"type": typ, "challenge": c.Challenge, "origin": c.Origin}
	if c.CrossOrigin {
		cd["crossOrigin"] = true
	}
	if c.TopOrigin != "" {
		cd["topOrigin"] = c.TopOrigin
	}
	b, _ := json.Marshal(cd)
	return b
}

func (p *Passkey) authData(rpID string, flags byte, counter uint32, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	ad := append([]byte{}, h[:]...)
	ad = append(ad, flags)
	ad = binary.BigEndian.AppendUint32(ad, counter)
	return append(ad, attested...)
}

// COSEKey is the credential's public key in COSE form.
func (p *Passkey) COSEKey() []byte {
	pub, _ := p.Key.PublicKey.ECDH()
	raw := pub.Bytes()
	b, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: raw[1:33], YCoord: raw[33:],
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Options is the part of begin responses the authenticator reads.
type Options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

// ParseOptions reads creation or request options JSON.
func ParseOptions(body []byte) (Options, error) {
	var o Options
	if err := json.Unmarshal(body, &o); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	if o.PublicKey.Challenge == "" {
		return o, fmt.Errorf("options without a challenge: %s", body)
	}
	return o, nil
}

// Attest builds a registration response ("none" attestation) for creation options.
func (p *Passkey) Attest(opts Options, origin string, c Ceremony) []byte {
	if c.Origin == "" {
		c.Origin = origin
	}
	if c.Type == "" {
		c.Type = "webauthn.create"
	}
	if c.RPID == "" {
		c.RPID = opts.PublicKey.RP.ID
	}
	if c.Challenge == "" {
		c.Challenge = opts.PublicKey.Challenge
	}
	if uh, err := base64.RawURLEncoding.DecodeString(opts.PublicKey.User.ID); err == nil && p.UserHandle == nil {
		p.UserHandle = uh
	}
	flags := p.Flags
	if c.Flags != nil {
		flags = *c.Flags
	}
	counter := p.Counter
	if c.Counter != nil {
		counter = *c.Counter
	}
	id := p.ID
	if c.CredentialID != nil {
		id = c.CredentialID
	}
	att := append([]byte{}, p.AAGUID[:]...)
	att = binary.BigEndian.AppendUint16(att, uint16(len(id)))
	att = append(att, id...)
	att = append(att, p.COSEKey()...)
	ad := p.authData(c.RPID, flags|FlagAT, counter, att)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		panic(err)
	}
	cd := p.clientData(c.Type, c)
	resp := map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key", "clientExtensionResults": map[string]any{},
		"authenticatorAttachment": "platform",
		"response":                map[string]any{"clientDataJSON": b64(cd), "attestationObject": b64(obj), "transports": []string{"internal"}},
	}
	b, _ := json.Marshal(resp)
	return b
}

// Assert builds a login response for request options. It increments the counter first, as a
// counting authenticator does, unless c.Counter is set.
func (p *Passkey) Assert(opts Options, origin string, c Ceremony) []byte {
	if c.Origin == "" {
		c.Origin = origin
	}
	if c.Type == "" {
		c.Type = "webauthn.get"
	}
	if c.RPID == "" {
		c.RPID = opts.PublicKey.RPID
	}
	if c.Challenge == "" {
		c.Challenge = opts.PublicKey.Challenge
	}
	flags := p.Flags
	if c.Flags != nil {
		flags = *c.Flags
	}
	var counter uint32
	if c.Counter != nil {
		counter = *c.Counter
	} else {
		p.Counter++
		counter = p.Counter
	}
	id := p.ID
	if c.CredentialID != nil {
		id = c.CredentialID
	}
	uh := p.UserHandle
	if c.UserHandle != nil {
		uh = c.UserHandle
	}
	ad := p.authData(c.RPID, flags, counter, nil)
	cd := p.clientData(c.Type, c)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, p.Key, digest[:])
	if err != nil {
		panic(err)
	}
	if c.BadSignature {
		sig[len(sig)-1] ^= 0xff
	}
	response := map[string]any{"clientDataJSON": b64(cd), "authenticatorData": b64(ad), "signature": b64(sig)}
	if !c.NoUserHandle {
		response["userHandle"] = b64(uh)
	}
	resp := map[string]any{"id": b64(id), "rawId": b64(id), "type": "public-key", "clientExtensionResults": map[string]any{},
		"authenticatorAttachment": "platform", "response": response}
	b, _ := json.Marshal(resp)
	return b
}
