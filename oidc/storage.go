package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkeyhq/latchkey/store"
)

// storage is op.Storage over Latchkey's store. op does the protocol; this decides what is valid:
// codes are single use, refresh tokens rotate, and every token dies with the Latchkey session that
// authorized it.
type storage struct {
	p *Provider
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// authRequest is a pending authorization: the parameters op validated, then who approved it.
type authRequest struct {
	ID                  string                   `json:"-"`
	ClientID            string                   `json:"client_id"`
	RedirectURI         string                   `json:"redirect_uri"`
	State               string                   `json:"state,omitempty"`
	Nonce               string                   `json:"nonce,omitempty"`
	Scopes              []string                 `json:"scopes"`
	ResponseType        oidc.ResponseType        `json:"response_type"`
	ResponseMode        oidc.ResponseMode        `json:"response_mode,omitempty"`
	CodeChallenge       string                   `json:"code_challenge,omitempty"`
	CodeChallengeMethod oidc.CodeChallengeMethod `json:"code_challenge_method,omitempty"`
	MaxAge              *uint                    `json:"max_age,omitempty"`
	Prompt              []string                 `json:"prompt,omitempty"`
	AMR                 []string                 `json:"amr,omitempty"`

	UserID    string    `json:"-"`
	SessionID string    `json:"-"`
	AuthTime  time.Time `json:"-"`
	CreatedAt time.Time `json:"-"`
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string                      { return a.ID }
func (a *authRequest) GetACR() string                     { return "" }
func (a *authRequest) GetAMR() []string                   { return a.AMR }
func (a *authRequest) GetAudience() []string              { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.AuthTime }
func (a *authRequest) GetClientID() string                { return a.ClientID }
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.UserID }
func (a *authRequest) Done() bool                         { return a.UserID != "" }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: a.CodeChallengeMethod}
}

// LogValue keeps state, nonce and the challenge out of op's log lines.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.ID), slog.String("client_id", a.ClientID))
}

func fromStored(sa store.OIDCAuthRequest) (*authRequest, error) {
	a := &authRequest{}
	if err := json.Unmarshal(sa.Request, a); err != nil {
		return nil, fmt.Errorf("oidc: stored auth request: %w", err)
	}
	a.ID, a.UserID, a.SessionID, a.AuthTime, a.CreatedAt = sa.ID, sa.UserID, sa.SessionID, sa.AuthTime, sa.CreatedAt
	return a, nil
}

// refreshRequest is a refresh token presented at the token endpoint, already checked.
type refreshRequest struct {
	tok    store.OIDCTokenState
	scopes []string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.tok.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.tok.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.tok.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.tok.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.tok.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// notFound is an op error that says "no such thing" without a server error.
type notFound struct{ error }

func (notFound) IsNotFound() {}

// --- clients

func (s *storage) client(ctx context.Context, id string) (*client, error) {
	c, err := s.p.st.OIDCClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// invalid_client, not a server error: a removed client's refresh is the client's problem.
		return nil, oidc.ErrInvalidClient().WithParent(notFound{err})
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return &client{c: c, loginURL: s.p.issuer + "/login", idLifetime: s.p.opts.IDTokenLifetime}, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	return s.client(ctx, id)
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.client(ctx, id)
	if err != nil {
		return err
	}
	if !c.checkSecret(secret) {
		s.p.audit(ctx, "", "oidc_client_auth_failed", "client "+c.c.Name)
		return errors.New("oidc: wrong client secret")
	}
	return nil
}

// --- authorization requests and codes

// CreateAuthRequest stores a validated authorization request. op has checked the client, the
// exact redirect URI, the scopes and the response type; Latchkey adds its own rules here, where a
// refusal is still sent to the (now verified) redirect URI.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, err
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if c.c.Public && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (S256) is required for public clients")
	}
	if req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	a := &authRequest{
		ID: randomString(24), ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce,
		Scopes: req.Scopes, ResponseType: req.ResponseType, ResponseMode: req.ResponseMode,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		MaxAge: req.MaxAge, Prompt: req.Prompt, CreatedAt: s.p.now(),
	}
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if err := s.p.st.PutOIDCAuthRequest(ctx, store.OIDCAuthRequest{ID: a.ID, ClientID: a.ClientID, Request: body,
		CreatedAt: a.CreatedAt, ExpiresAt: a.CreatedAt.Add(authRequestTTL)}); err != nil {
		return nil, err
	}
	return a, nil
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	sa, err := s.p.st.OIDCAuthRequestByID(ctx, id)
	if err != nil {
		return nil, notFound{err}
	}
	return fromStored(sa)
}

// SaveAuthCode stores the code's hash; the code itself only goes to the redirect URI.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.st.SetOIDCCode(ctx, id, hash(code), s.p.now().Add(codeTTL))
}

// AuthRequestByCode redeems a code: once. A second redemption revokes every token the first one
// produced (RFC 6749 section 4.1.2) and is audited.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	sa, err := s.p.st.RedeemOIDCCode(ctx, hash(code))
	if errors.Is(err, store.ErrReused) {
		s.p.audit(ctx, sa.UserID, "oidc_code_reused", "client "+sa.ClientID+": tokens issued from the code revoked")
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	a, err := fromStored(sa)
	if err != nil {
		return nil, err
	}
	if err := s.p.sessionAlive(ctx, a.UserID, a.SessionID); err != nil {
		return nil, err
	}
	return a, nil
}

// DeleteAuthRequest is called once the code was exchanged. The row stays (the code is marked
// used) so that a replay is recognised; the sweep removes it later.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// --- tokens

// tokenSource is what every token of a family is minted from.
type tokenSource struct {
	family, clientID, userID, sessionID string
	scopes, amr                         []string
	authTime, familyExpires             time.Time
}

func (s *storage) source(req op.TokenRequest) (tokenSource, error) {
	switch r := req.(type) {
	case *authRequest:
		return tokenSource{family: r.ID, clientID: r.ClientID, userID: r.UserID, sessionID: r.SessionID,
			scopes: r.Scopes, amr: r.AMR, authTime: r.AuthTime, familyExpires: s.p.now().Add(s.p.opts.RefreshTokenLifetime)}, nil
	case *refreshRequest:
		return tokenSource{family: r.tok.Family, clientID: r.tok.ClientID, userID: r.tok.UserID, sessionID: r.tok.SessionID,
			scopes: r.scopes, amr: r.tok.AMR, authTime: r.tok.AuthTime, familyExpires: r.tok.FamilyExpiresAt}, nil
	}
	return tokenSource{}, fmt.Errorf("oidc: unsupported token request %T", req)
}

func (s *storage) newAccess(ctx context.Context, src tokenSource) (string, time.Time, error) {
	id := randomString(32)
	now := s.p.now()
	exp := now.Add(s.p.opts.AccessTokenLifetime)
	err := s.p.st.CreateOIDCToken(ctx, store.OIDCToken{Hash: hash(id), Kind: store.OIDCAccess, Family: src.family,
		ClientID: src.clientID, UserID: src.userID, SessionID: src.sessionID, Scopes: src.scopes, AuthTime: src.authTime,
		AMR: src.amr, CreatedAt: now, ExpiresAt: exp, FamilyExpiresAt: src.familyExpires})
	return id, exp, err
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	src, err := s.source(req)
	if err != nil {
		return "", time.Time{}, err
	}
	id, exp, err := s.newAccess(ctx, src)
	if err == nil {
		s.p.audit(ctx, src.userID, "oidc_grant", "client "+src.clientID+" scopes "+strings.Join(src.scopes, " "))
	}
	return id, exp, err
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token. For a refresh grant
// the presented token is rotated: marked used and replaced, atomically.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	src, err := s.source(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	now := s.p.now()
	refresh := randomString(32)
	exp := now.Add(s.p.opts.RefreshTokenLifetime)
	if exp.After(src.familyExpires) {
		exp = src.familyExpires
	}
	next := store.OIDCToken{Hash: hash(refresh), Kind: store.OIDCRefresh, Family: src.family, ClientID: src.clientID,
		UserID: src.userID, SessionID: src.sessionID, Scopes: src.scopes, AuthTime: src.authTime, AMR: src.amr,
		CreatedAt: now, ExpiresAt: exp, FamilyExpiresAt: src.familyExpires}
	if current == "" {
		err = s.p.st.CreateOIDCToken(ctx, next)
	} else {
		err = s.p.st.RotateOIDCRefresh(ctx, hash(current), next)
		if errors.Is(err, store.ErrReused) {
			s.p.audit(ctx, src.userID, "oidc_refresh_reused", "client "+src.clientID+": token family revoked")
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
	}
	if err != nil {
		return "", "", time.Time{}, err
	}
	id, accessExp, err := s.newAccess(ctx, src)
	if err != nil {
		return "", "", time.Time{}, err
	}
	event := "oidc_grant"
	if current != "" {
		event = "oidc_refresh"
	}
	s.p.audit(ctx, src.userID, event, "client "+src.clientID+" scopes "+strings.Join(src.scopes, " "))
	return id, refresh, accessExp, nil
}

// TokenRequestByRefreshToken checks a presented refresh token. A token that was already rotated
// means a copy is in someone else's hands: the whole family is revoked (reuse detection).
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	t, err := s.p.st.OIDCToken(ctx, hash(token))
	if err != nil || t.Kind != store.OIDCRefresh {
		return nil, op.ErrInvalidRefreshToken
	}
	if !t.UsedAt.IsZero() && t.RevokedAt.IsZero() {
		if err := s.p.st.RevokeOIDCFamily(ctx, t.Family); err != nil {
			return nil, err
		}
		s.p.audit(ctx, t.UserID, "oidc_refresh_reused", "client "+t.ClientID+": token family revoked")
		return nil, errors.New("oidc: refresh token reused")
	}
	if err := s.p.valid(ctx, t); err != nil {
		return nil, err
	}
	if err := s.p.stillAllowed(ctx, t.ClientID, t.UserID); err != nil {
		return nil, err
	}
	return &refreshRequest{tok: t, scopes: t.Scopes}, nil
}

// valid reports why a stored token may no longer be used, or nil.
func (p *Provider) valid(ctx context.Context, t store.OIDCTokenState) error {
	now := p.now()
	switch {
	case !t.RevokedAt.IsZero():
		return errors.New("oidc: token revoked")
	case !now.Before(t.ExpiresAt) || !now.Before(t.FamilyExpiresAt):
		return errors.New("oidc: token expired")
	case t.UserDisabled:
		return errors.New("oidc: user disabled")
	case !t.SessionLive:
		// Sign out, sign out everywhere, removing the passkey behind the session and disabling
		// the user all revoke the session; the tokens it authorized end with it.
		return errors.New("oidc: the session that authorized the token has ended")
	}
	return nil
}

// stillAllowed re-checks --groups: a user taken out of the client's groups after signing in
// gets no new tokens.
func (p *Provider) stillAllowed(ctx context.Context, clientID, userID string) error {
	c, err := p.st.OIDCClient(ctx, clientID)
	if err != nil {
		return fmt.Errorf("oidc: client: %w", err)
	}
	u, err := p.st.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("oidc: user: %w", err)
	}
	if !(&client{c: c}).allows(u.Groups) {
		return errors.New("oidc: the user is no longer in the client's groups")
	}
	return nil
}

// sessionAlive is valid's check for a code, which has no token row yet.
func (p *Provider) sessionAlive(ctx context.Context, userID, sessionID string) error {
	se, err := p.st.Session(ctx, sessionID)
	if err != nil || se.UserID != userID || !se.RevokedAt.IsZero() {
		return errors.New("oidc: the session that approved the request has ended")
	}
	u, err := p.st.UserByID(ctx, userID)
	if err != nil || u.Disabled {
		return errors.New("oidc: user disabled")
	}
	return nil
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return nil // TerminateSessionFromRequest does the work
}

// TerminateSessionFromRequest serves RP-initiated logout. With an id_token_hint that names the
// browser's signed-in user, it ends that Latchkey session (and so every token it authorized).
// Without one it asks: the Latchkey logout page has a confirmation button, since a link alone
// must never sign anyone out.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	id, ok := identityFrom(ctx)
	if !ok {
		return req.RedirectURI, nil // not signed in: nothing to end
	}
	if req.IDTokenHintClaims == nil || req.UserID != id.User.ID {
		return s.p.public + "/.latchkey/logout", nil
	}
	if err := s.p.st.RevokeSession(ctx, id.User.ID, id.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	s.p.auth.Refresh(ctx)
	s.p.audit(ctx, id.User.ID, "oidc_logout", "client "+req.ClientID+": session ended")
	return req.RedirectURI, nil
}

// RevokeToken serves RFC 7009. Revoking either kind of token revokes its family: the access and
// refresh tokens of that authorization.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	t, err := s.p.st.OIDCToken(ctx, hash(tokenOrID))
	if err != nil {
		return nil // unknown tokens are "revoked" (RFC 7009 section 2.2)
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
	}
	if err := s.p.st.RevokeOIDCFamily(ctx, t.Family); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	s.p.audit(ctx, t.UserID, "oidc_revoke", "client "+t.ClientID+" "+t.Kind+" token: family revoked")
	return nil
}

// GetRefreshTokenInfo lets op's revocation endpoint recognise a refresh token. The "token ID" it
// hands back to RevokeToken is the token itself, which RevokeToken hashes.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	t, err := s.p.st.OIDCToken(ctx, hash(token))
	if err != nil || t.Kind != store.OIDCRefresh {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.UserID, token, nil
}

// --- keys

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, _, err := s.p.keys.current(ctx)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	_, keys, err := s.p.keys.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []jose.SignatureAlgorithm
	for _, k := range keys {
		if !slices.Contains(out, k.Algorithm()) {
			out = append(out, k.Algorithm())
		}
	}
	return out, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	_, keys, err := s.p.keys.current(ctx)
	return keys, err
}

// --- claims

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.p.fillClaims(ctx, info, req.GetSubject(), scopes); err != nil {
		return err
	}
	// sid (back-channel logout) names the Latchkey session behind the ID token.
	switch r := req.(type) {
	case *authRequest:
		info.AppendClaims("sid", s.p.sid(r.SessionID))
	case *refreshRequest:
		info.AppendClaims("sid", s.p.sid(r.tok.SessionID))
	}
	return nil
}

// SetUserinfoFromToken serves the userinfo endpoint: the access token must still be valid, its
// user enabled and its session alive.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.p.st.OIDCToken(ctx, hash(tokenID))
	if err != nil || t.Kind != store.OIDCAccess || t.UserID != subject {
		return errors.New("oidc: unknown access token")
	}
	if err := s.p.valid(ctx, t); err != nil {
		return err
	}
	return s.p.fillClaims(ctx, info, t.UserID, t.Scopes)
}

// SetIntrospectionFromToken serves RFC 7662 for access tokens. An invalid token leaves the answer
// {"active": false}.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.p.st.OIDCToken(ctx, hash(tokenID))
	// A client learns about its own tokens only.
	if err != nil || t.Kind != store.OIDCAccess || t.UserID != subject || t.ClientID != clientID || s.p.valid(ctx, t) != nil {
		return errors.New("oidc: token not active")
	}
	info := new(oidc.UserInfo)
	if err := s.p.fillClaims(ctx, info, t.UserID, t.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.Audience = []string{t.ClientID}
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.AuthTime = oidc.FromTime(t.AuthTime)
	resp.TokenType = oidc.BearerToken
	resp.Active = true
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("oidc: JWT profile is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("oidc: JWT profile is not supported")
}

func (s *storage) Health(ctx context.Context) error { return s.p.st.Ping(ctx) }

// fillClaims sets the claims the scopes ask for. Email addresses are entered by an administrator,
// so they count as verified.
func (p *Provider) fillClaims(ctx context.Context, info *oidc.UserInfo, userID string, scopes []string) error {
	u, err := p.st.UserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("oidc: claims: %w", err)
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Name
			info.Name = u.DisplayName
			if info.Name == "" {
				info.Name = u.Name
			}
		case oidc.ScopeEmail:
			if u.Email != "" {
				info.Email = u.Email
				info.EmailVerified = true
			}
		case ScopeGroups:
			groups := u.Groups
			if groups == nil {
				groups = []string{}
			}
			info.AppendClaims("groups", groups)
		}
	}
	return nil
}
