package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// OpenID Connect Back-Channel Logout 1.0: when a Latchkey session that signed in to a client
// ends, however it ends (sign out, sign out everywhere, passkey removed, user disabled or
// removed, RP-initiated logout, the CLI), every client that registered a back-channel logout URI
// gets a signed logout token naming the user (sub) and the session (sid). A poller finds ended
// sessions in the store, so a revocation made by another process is noticed too; one replica
// claims each notification before sending it.

// DefaultLogoutPoll is how often ended sessions are looked for.
const DefaultLogoutPoll = 2 * time.Second

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// sid is the session ID clients see: derived from the Latchkey session ID, which stays private.
func (p *Provider) sid(sessionID string) string {
	m := hmac.New(sha256.New, p.sidKey)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func (p *Provider) logoutLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.LogoutPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.sendLogouts(ctx)
		}
	}
}

func (p *Provider) sendLogouts(ctx context.Context) {
	ended, err := p.st.EndedOIDCSessions(ctx, 100)
	if err != nil {
		p.opts.Logger.Warn("looking for ended sessions failed", "err", err)
		return
	}
	for _, e := range ended {
		won, err := p.st.ClaimOIDCSessionEnd(ctx, e.ID)
		if err != nil || !won {
			continue
		}
		if err := p.backchannelLogout(ctx, e.ClientID, e.UserID, e.SessionID, e.LogoutURI); err != nil {
			p.opts.Logger.Warn("back-channel logout failed", "client_id", e.ClientID, "err", err)
			p.audit(ctx, e.UserID, "oidc_backchannel_logout_failed", "client "+e.ClientID)
			continue
		}
		p.audit(ctx, e.UserID, "oidc_backchannel_logout", "client "+e.ClientID)
	}
}

// backchannelLogout signs a logout token and posts it to the client.
func (p *Provider) backchannelLogout(ctx context.Context, clientID, userID, sessionID, uri string) error {
	k, _, err := p.keys.current(ctx)
	if err != nil {
		return err
	}
	now := p.now()
	claims := map[string]any{
		"iss": p.issuer, "aud": clientID, "sub": userID, "sid": p.sid(sessionID),
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": randomString(16),
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: &jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("logout+jwt"))
	if err != nil {
		return fmt.Errorf("oidc: logout token signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return fmt.Errorf("oidc: sign logout token: %w", err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.logoutClient.Do(req)
	if err != nil {
		return fmt.Errorf("oidc: post logout token: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("oidc: logout URI answered %d", resp.StatusCode)
	}
	return nil
}
