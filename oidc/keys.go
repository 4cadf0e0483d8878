package oidc

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkeyhq/latchkey/store"
)

// Signing algorithms Latchkey can sign ID tokens with. RS256 is what every client understands and
// the default; ES256 is offered for clients that prefer short keys and signatures.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// keyReload bounds how long a process signs with a key after another process (the CLI, a replica)
// rotated it (CLI changes reach a server within 5 seconds); the old key stays in the JWKS far
// longer than that, so nothing breaks meanwhile.
const keyReload = 5 * time.Second

// subKey derives an independent key for one purpose from the session block key, so that the
// database alone never holds what it takes to sign or to decrypt.
func subKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("latchkey oidc " + purpose))
	return m.Sum(nil)
}

// keyring holds the signing keys. They live in the store, sealed with AES-256-GCM under a key
// derived from the session block key, so that replicas share them through the database while a
// copy of the database alone cannot sign a token (issue 22: nothing in the database lets anyone
// sign in).
type keyring struct {
	st   *store.Store
	aead cipher.AEAD
	alg  string
	keep time.Duration // how long a retired key stays in the JWKS
	now  func() time.Time

	mu      sync.Mutex
	loaded  time.Time
	signing *signingKey
	public  []op.Key
}

func newKeyring(st *store.Store, blockKey []byte, alg string, keep time.Duration, now func() time.Time) (*keyring, error) {
	if alg == "" {
		alg = RS256
	}
	if alg != RS256 && alg != ES256 {
		return nil, fmt.Errorf("oidc: signing algorithm %q: want RS256 or ES256", alg)
	}
	block, err := aes.NewCipher(subKey(blockKey, "signing-key-seal"))
	if err != nil {
		return nil, fmt.Errorf("oidc: key seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("oidc: key seal: %w", err)
	}
	return &keyring{st: st, aead: aead, alg: alg, keep: keep, now: now}, nil
}

// signingKey is a private key as op wants it.
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is a JWKS entry as op wants it.
type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

func generate(alg string) (crypto.Signer, error) {
	if alg == ES256 {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

// newKey makes a sealed key for the store.
func (kr *keyring) newKey() (store.OIDCKey, error) {
	priv, err := generate(kr.alg)
	if err != nil {
		return store.OIDCKey{}, fmt.Errorf("oidc: generate %s key: %w", kr.alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.OIDCKey{}, fmt.Errorf("oidc: encode key: %w", err)
	}
	idb := make([]byte, 12)
	rand.Read(idb)
	id := base64.RawURLEncoding.EncodeToString(idb)
	nonce := make([]byte, kr.aead.NonceSize())
	rand.Read(nonce)
	sealed := kr.aead.Seal(nonce, nonce, der, []byte(id+" "+kr.alg))
	return store.OIDCKey{ID: id, Alg: kr.alg, Sealed: sealed, CreatedAt: kr.now()}, nil
}

func (kr *keyring) open(k store.OIDCKey) (crypto.Signer, error) {
	ns := kr.aead.NonceSize()
	if len(k.Sealed) < ns {
		return nil, errors.New("oidc: sealed key too short")
	}
	der, err := kr.aead.Open(nil, k.Sealed[:ns], k.Sealed[ns:], []byte(k.ID+" "+k.Alg))
	if err != nil {
		return nil, fmt.Errorf("oidc: key %s does not open with this session block key: %w", k.ID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("oidc: key %s: %w", k.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("oidc: key %s is not a signing key", k.ID)
	}
	return signer, nil
}

// Rotate adds a new signing key and retires the current one, which stays in the JWKS until the
// tokens it signed have expired.
func (kr *keyring) Rotate(ctx context.Context) (string, error) {
	k, err := kr.newKey()
	if err != nil {
		return "", err
	}
	if err := kr.st.AddOIDCKey(ctx, k, true); err != nil {
		return "", err
	}
	if err := kr.st.DropOIDCKeys(ctx, kr.now().Add(-kr.keep)); err != nil {
		return "", err
	}
	kr.mu.Lock()
	kr.loaded = time.Time{}
	kr.mu.Unlock()
	return k.ID, nil
}

// current returns the signing key and the JWKS, loading them from the store at most every
// keyReload, and creating the first key on first use.
func (kr *keyring) current(ctx context.Context) (*signingKey, []op.Key, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	now := kr.now()
	if kr.signing != nil && now.Sub(kr.loaded) < keyReload && !now.Before(kr.loaded) {
		return kr.signing, kr.public, nil
	}
	keys, err := kr.st.OIDCKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !hasActive(keys) {
		k, err := kr.newKey()
		if err != nil {
			return nil, nil, err
		}
		if err := kr.st.AddOIDCKey(ctx, k, false); err != nil {
			return nil, nil, err
		}
		if keys, err = kr.st.OIDCKeys(ctx); err != nil {
			return nil, nil, err
		}
	}
	var signing *signingKey
	var public []op.Key
	for _, k := range keys { // newest first
		if !k.RetiredAt.IsZero() && now.Sub(k.RetiredAt) > kr.keep {
			continue
		}
		priv, err := kr.open(k)
		if err != nil {
			return nil, nil, err
		}
		alg := jose.SignatureAlgorithm(k.Alg)
		if signing == nil && k.RetiredAt.IsZero() {
			signing = &signingKey{id: k.ID, alg: alg, key: priv}
		}
		public = append(public, &publicKey{id: k.ID, alg: alg, key: priv.Public()})
	}
	if signing == nil {
		return nil, nil, errors.New("oidc: no active signing key")
	}
	kr.signing, kr.public, kr.loaded = signing, public, now
	return signing, public, nil
}

func hasActive(keys []store.OIDCKey) bool {
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			return true
		}
	}
	return false
}
