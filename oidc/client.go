package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/store"
)

// Scopes Latchkey serves. groups is ours: it adds the groups claim.
const ScopeGroups = "groups"

var supportedScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ScopeGroups, oidc.ScopeOfflineAccess}

// hash is how secrets, codes and tokens are stored: they are 256-bit random values, so a plain
// SHA-256 is as good as a slow hash and keeps the token endpoint fast.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewClient is what `latchkey oidc client add` asks for.
type NewClient struct {
	Name           string
	RedirectURIs   []string
	PostLogoutURIs []string
	Public         bool
	Trusted        bool
	Groups         []string
	// BackchannelLogoutURI, when set, receives a logout token when a session that signed in
	// to the client ends.
	BackchannelLogoutURI string
}

// ClientError refuses a client's settings. Key is a catalogue key with at most one verb, which Arg
// fills, so that the Apps page can say it in the reader's language; Error is the English text (the
// CLI's).
type ClientError struct {
	Key string
	Arg string
}

func (e *ClientError) Error() string {
	if strings.Contains(e.Key, "%") {
		return fmt.Sprintf(e.Key, e.Arg)
	}
	return e.Key
}

// ValidateRedirectURI accepts an absolute URI without a fragment: https or http with a host (apps
// on a home network often serve plain http), or an app's custom scheme (app.immich:///oauth-callback).
func ValidateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Fragment != "" || strings.ContainsAny(raw, " \n\r\t") {
		return &ClientError{Key: auth.N("redirect URI %q: want an absolute URI without a fragment"), Arg: raw}
	}
	switch strings.ToLower(u.Scheme) {
	case "javascript", "data", "vbscript", "file", "blob":
		return &ClientError{Key: auth.N("redirect URI %q: this scheme cannot be a redirect target"), Arg: raw}
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		if u.Host == "" || u.User != nil {
			return &ClientError{Key: auth.N("redirect URI %q: want a host and no user info"), Arg: raw}
		}
	}
	return nil
}

// AddClient registers a client and returns its ID and, for a confidential client, its secret
// (shown once: only its hash is kept).
func AddClient(ctx context.Context, st *store.Store, nc NewClient, now time.Time) (id, secret string, err error) {
	if strings.TrimSpace(nc.Name) == "" {
		return "", "", &ClientError{Key: auth.N("a client needs a name")}
	}
	if len(nc.RedirectURIs) == 0 {
		return "", "", &ClientError{Key: auth.N("a client needs at least one --redirect-uri")}
	}
	for _, u := range append(slices.Clone(nc.RedirectURIs), nc.PostLogoutURIs...) {
		if err := ValidateRedirectURI(u); err != nil {
			return "", "", err
		}
	}
	if u := nc.BackchannelLogoutURI; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.Fragment != "" {
			return "", "", &ClientError{Key: auth.N("back-channel logout URI %q: want an http(s) URL without a fragment"), Arg: u}
		}
	}
	id = randomString(18)
	c := store.OIDCClient{ID: id, Name: nc.Name, RedirectURIs: nc.RedirectURIs, PostLogoutURIs: nc.PostLogoutURIs,
		Public: nc.Public, Trusted: nc.Trusted, Groups: nc.Groups, BackchannelLogoutURI: nc.BackchannelLogoutURI, CreatedAt: now}
	if !nc.Public {
		secret = randomString(32)
		c.SecretHash = hash(secret)
	}
	if err := st.CreateOIDCClient(ctx, c); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// RotateSecret gives a confidential client a new secret; the old one stops working at once.
func RotateSecret(ctx context.Context, st *store.Store, name string) (string, error) {
	secret := randomString(32)
	if err := st.SetOIDCClientSecret(ctx, name, hash(secret)); err != nil {
		return "", err
	}
	return secret, nil
}

// client adapts a stored client to op.Client.
type client struct {
	c          store.OIDCClient
	loginURL   string // {issuer}/login
	idLifetime time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string          { return c.c.ID }
func (c *client) RedirectURIs() []string { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string {
	return append(slices.Clone(c.c.PostLogoutURIs), c.c.RedirectURIs...)
}

// ApplicationType is native for public clients and for clients with an app's custom-scheme
// redirect URI (app.immich:///oauth-callback): op allows custom schemes only for native clients,
// and lets a native app's loopback redirect URI use any port (RFC 8252 section 7.3).
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Public || slices.ContainsFunc(c.c.RedirectURIs, customScheme) {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func customScheme(raw string) bool {
	return !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://")
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

// Authorization code flow only: no implicit, no hybrid, no password grant.
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(id string) string           { return c.loginURL + "?id=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.idLifetime }
func (c *client) ClockSkew() time.Duration            { return 0 }

// DevMode lifts op's scheme policy (no plain http for public clients, no custom schemes for web
// clients): Latchkey checks redirect URIs when a client is added, and at authorization a URI must
// match a registered one exactly, which op still enforces.
func (c *client) DevMode() bool { return true }

func (c *client) IsScopeAllowed(scope string) bool     { return scope == ScopeGroups }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true } // apps read claims from the ID token
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// allows reports whether a user may sign in to this client (--groups).
func (c *client) allows(groups []string) bool {
	if len(c.c.Groups) == 0 {
		return true
	}
	for _, g := range groups {
		if slices.Contains(c.c.Groups, g) {
			return true
		}
	}
	return false
}

func (c *client) checkSecret(secret string) bool {
	if c.c.Public || c.c.SecretHash == nil {
		return false
	}
	return subtle.ConstantTimeCompare(hash(secret), c.c.SecretHash) == 1
}
