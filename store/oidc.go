package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The OpenID Provider's storage (issue 22). The protocol lives in package oidc; these are plain
// rows. Secrets, codes and tokens arrive here already hashed.

// ErrReused reports a second use of a single-use code or refresh token. The store has already
// revoked what the first use issued when it returns it.
var ErrReused = errors.New("store: code or token used twice")

// OIDCClient is an application registered with `latchkey oidc client add`.
type OIDCClient struct {
	ID             string
	Name           string
	SecretHash     []byte // SHA-256 of the secret; nil for public clients
	RedirectURIs   []string
	PostLogoutURIs []string
	Public         bool
	Trusted        bool
	Groups         []string // users must be in one of them; empty: everyone
	// BackchannelLogoutURI receives a logout token when a session that signed in to the client
	// ends (OpenID Connect Back-Channel Logout); empty for none.
	BackchannelLogoutURI string
	CreatedAt            time.Time
}

const oidcClientCols = "id, name, secret_hash, redirect_uris, post_logout_uris, public, trusted, allowed_groups, backchannel_logout_uri, created_at"

func scanOIDCClient(sc interface{ Scan(...any) error }) (OIDCClient, error) {
	var c OIDCClient
	var redirects, logouts, groups string
	var public, trusted int
	var created int64
	if err := sc.Scan(&c.ID, &c.Name, &c.SecretHash, &redirects, &logouts, &public, &trusted, &groups, &c.BackchannelLogoutURI, &created); err != nil {
		return c, err
	}
	c.RedirectURIs, c.PostLogoutURIs, c.Groups = splitLines(redirects), splitLines(logouts), splitList(groups)
	c.Public, c.Trusted, c.CreatedAt = public == 1, trusted == 1, fromMS(created)
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	return c, nil
}

// splitLines splits a newline-separated list (URIs may contain commas).
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// CreateOIDCClient registers a client; a taken name or ID is ErrConflict.
func (s *Store) CreateOIDCClient(ctx context.Context, c OIDCClient) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO oidc_clients ("+oidcClientCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		c.ID, c.Name, nonNil(c.SecretHash), strings.Join(c.RedirectURIs, "\n"), strings.Join(c.PostLogoutURIs, "\n"),
		b2i(c.Public), b2i(c.Trusted), joinList(c.Groups), c.BackchannelLogoutURI, ms(c.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("store: client %q: %w", c.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create client %q: %w", c.Name, err)
	}
	return nil
}

// OIDCClient loads a client by its client_id.
func (s *Store) OIDCClient(ctx context.Context, id string) (OIDCClient, error) {
	return s.oidcClient(ctx, "id", id)
}

// OIDCClientByName loads a client by its name.
func (s *Store) OIDCClientByName(ctx context.Context, name string) (OIDCClient, error) {
	return s.oidcClient(ctx, "name", name)
}

func (s *Store) oidcClient(ctx context.Context, col, v string) (OIDCClient, error) {
	c, err := scanOIDCClient(s.db.QueryRowContext(ctx, s.q("SELECT "+oidcClientCols+" FROM oidc_clients WHERE "+col+" = ?"), v))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("store: client %q: %w", v, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("store: client %q: %w", v, err)
	}
	return c, nil
}

// OIDCClients lists every client by name.
func (s *Store) OIDCClients(ctx context.Context) ([]OIDCClient, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+oidcClientCols+" FROM oidc_clients ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("store: clients: %w", err)
	}
	defer rows.Close()
	var out []OIDCClient
	for rows.Next() {
		c, err := scanOIDCClient(rows)
		if err != nil {
			return nil, fmt.Errorf("store: clients: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteOIDCClient removes a client by name. Its tokens, consents and pending authorizations go
// with it (foreign keys), so every refresh token it held stops working at once.
func (s *Store) DeleteOIDCClient(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM oidc_clients WHERE name = ?"), name)
	if err != nil {
		return fmt.Errorf("store: delete client %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: client %q: %w", name, ErrNotFound)
	}
	return nil
}

// SetOIDCClientSecret replaces a confidential client's secret hash.
func (s *Store) SetOIDCClientSecret(ctx context.Context, name string, hash []byte) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE oidc_clients SET secret_hash = ? WHERE name = ? AND public = 0"), hash, name)
	if err != nil {
		return fmt.Errorf("store: client secret %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: confidential client %q: %w", name, ErrNotFound)
	}
	return nil
}

// OIDCKey is a signing key, sealed by package oidc before it reaches the store.
type OIDCKey struct {
	ID        string
	Alg       string
	Sealed    []byte
	CreatedAt time.Time
	RetiredAt time.Time // zero while it signs
}

// OIDCKeys lists every signing key, newest first.
func (s *Store) OIDCKeys(ctx context.Context) ([]OIDCKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, alg, sealed, created_at, retired_at FROM oidc_keys ORDER BY created_at DESC, id")
	if err != nil {
		return nil, fmt.Errorf("store: signing keys: %w", err)
	}
	defer rows.Close()
	var out []OIDCKey
	for rows.Next() {
		var k OIDCKey
		var created, retired int64
		if err := rows.Scan(&k.ID, &k.Alg, &k.Sealed, &created, &retired); err != nil {
			return nil, fmt.Errorf("store: signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt = fromMS(created), fromMS(retired)
		out = append(out, k)
	}
	return out, rows.Err()
}

// AddOIDCKey stores a new signing key. With rotate, every key that signed until now is retired
// in the same transaction; without it the key is added only while no active key exists (first
// use: replicas racing to create one keep the first).
func (s *Store) AddOIDCKey(ctx context.Context, k OIDCKey, rotate bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if rotate {
			if _, err := tx.ExecContext(ctx, s.q("UPDATE oidc_keys SET retired_at = ? WHERE retired_at = 0"), ms(k.CreatedAt)); err != nil {
				return fmt.Errorf("store: retire signing keys: %w", err)
			}
		} else {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM oidc_keys WHERE retired_at = 0").Scan(&n); err != nil {
				return fmt.Errorf("store: signing keys: %w", err)
			}
			if n > 0 {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO oidc_keys (id, alg, sealed, created_at) VALUES (?, ?, ?, ?)"),
			k.ID, k.Alg, k.Sealed, ms(k.CreatedAt)); err != nil {
			return fmt.Errorf("store: add signing key: %w", err)
		}
		return nil
	})
}

// DropOIDCKeys deletes keys retired before t (their tokens have expired).
func (s *Store) DropOIDCKeys(ctx context.Context, retiredBefore time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.q("DELETE FROM oidc_keys WHERE retired_at > 0 AND retired_at < ?"), ms(retiredBefore)); err != nil {
		return fmt.Errorf("store: drop signing keys: %w", err)
	}
	return nil
}

// OIDCAuthRequest is an authorization in progress.
type OIDCAuthRequest struct {
	ID        string
	ClientID  string
	Request   []byte // the validated parameters, as package oidc encodes them
	UserID    string // set once the user approved
	SessionID string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

const oidcAuthCols = "id, client_id, request, user_id, session_id, auth_time, created_at, expires_at"

func scanOIDCAuth(sc interface{ Scan(...any) error }) (OIDCAuthRequest, error) {
	var a OIDCAuthRequest
	var authTime, created, expires int64
	err := sc.Scan(&a.ID, &a.ClientID, &a.Request, &a.UserID, &a.SessionID, &authTime, &created, &expires)
	a.AuthTime, a.CreatedAt, a.ExpiresAt = fromMS(authTime), fromMS(created), fromMS(expires)
	return a, err
}

// PutOIDCAuthRequest stores a new authorization request.
func (s *Store) PutOIDCAuthRequest(ctx context.Context, a OIDCAuthRequest) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO oidc_auth_requests (id, client_id, request, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"),
		a.ID, a.ClientID, a.Request, ms(a.CreatedAt), ms(a.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: put auth request: %w", err)
	}
	return nil
}

// OIDCAuthRequestByID loads an authorization request that has not expired and whose code was not
// issued yet (a request yields one code).
func (s *Store) OIDCAuthRequestByID(ctx context.Context, id string) (OIDCAuthRequest, error) {
	a, err := scanOIDCAuth(s.db.QueryRowContext(ctx, s.q("SELECT "+oidcAuthCols+
		" FROM oidc_auth_requests WHERE id = ? AND expires_at > ? AND code_hash IS NULL"), id, ms(s.now())))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("store: auth request: %w", ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("store: auth request: %w", err)
	}
	return a, nil
}

// ApproveOIDCAuthRequest records who approved a pending request, from which session, and when
// they last verified a passkey.
// request replaces the stored parameters (the provider adds what it decided, such as amr).
func (s *Store) ApproveOIDCAuthRequest(ctx context.Context, id, userID, sessionID string, authTime time.Time, request []byte) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE oidc_auth_requests SET user_id = ?, session_id = ?, auth_time = ?, request = ?
		WHERE id = ? AND code_hash IS NULL AND expires_at > ?`), userID, sessionID, ms(authTime), request, id, ms(s.now()))
	if err != nil {
		return fmt.Errorf("store: approve auth request: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: approve auth request: %w", ErrNotFound)
	}
	return nil
}

// SetOIDCCode attaches the (hashed) code to an approved request. It succeeds once per request.
func (s *Store) SetOIDCCode(ctx context.Context, id string, codeHash []byte, expires time.Time) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE oidc_auth_requests SET code_hash = ?, code_expires_at = ?
		WHERE id = ? AND code_hash IS NULL AND user_id <> '' AND expires_at > ?`), codeHash, ms(expires), id, ms(s.now()))
	if err != nil {
		return fmt.Errorf("store: save code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("store: save code: %w", ErrNotFound)
	}
	return nil
}

// RedeemOIDCCode marks a code used and returns its request. The mark is atomic: of two
// redemptions racing on one code, one gets the request. A code seen a second time is ErrReused,
// and every token issued from it (its family, which is the request ID) is revoked first.
func (s *Store) RedeemOIDCCode(ctx context.Context, codeHash []byte) (OIDCAuthRequest, error) {
	var a OIDCAuthRequest
	now := ms(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var used, expires int64
		var err error
		row := tx.QueryRowContext(ctx, s.q("SELECT "+oidcAuthCols+", code_used_at, code_expires_at FROM oidc_auth_requests WHERE code_hash = ?"), codeHash)
		var authTime, created, reqExpires int64
		err = row.Scan(&a.ID, &a.ClientID, &a.Request, &a.UserID, &a.SessionID, &authTime, &created, &reqExpires, &used, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: code: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: code: %w", err)
		}
		a.AuthTime, a.CreatedAt, a.ExpiresAt = fromMS(authTime), fromMS(created), fromMS(reqExpires)
		if used != 0 {
			return ErrReused
		}
		if expires <= now {
			return fmt.Errorf("store: code: %w", ErrUsed)
		}
		res, err := tx.ExecContext(ctx, s.q("UPDATE oidc_auth_requests SET code_used_at = ? WHERE id = ? AND code_used_at = 0"), now, a.ID)
		if err != nil {
			return fmt.Errorf("store: redeem code: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrReused
		}
		return nil
	})
	if errors.Is(err, ErrReused) {
		// Outside the transaction, which rolled back: the revocation must survive the refusal.
		if rerr := s.RevokeOIDCFamily(ctx, a.ID); rerr != nil {
			return a, errors.Join(err, rerr)
		}
	}
	return a, err
}

// OIDCToken is an access or refresh token (hashed) with what it grants.
type OIDCToken struct {
	Hash            []byte
	Kind            string // access | refresh
	Family          string
	ClientID        string
	UserID          string
	SessionID       string
	Scopes          []string
	AuthTime        time.Time
	AMR             []string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	FamilyExpiresAt time.Time
	UsedAt          time.Time
	RevokedAt       time.Time
}

// Token kinds.
const (
	OIDCAccess  = "access"
	OIDCRefresh = "refresh"
)

// OIDCTokenState is a token with what its validity depends on besides itself.
type OIDCTokenState struct {
	OIDCToken
	UserDisabled bool
	// SessionLive reports whether the Latchkey session that authorized the family still exists and
	// was not revoked (sign out, sign out everywhere, passkey removal, a disabled user).
	SessionLive bool
}

const oidcTokenCols = "t.hash, t.kind, t.family, t.client_id, t.user_id, t.session_id, t.scopes, t.auth_time, t.amr, t.created_at, t.expires_at, t.family_expires_at, t.used_at, t.revoked_at"

// CreateOIDCToken stores a token.
func (s *Store) CreateOIDCToken(ctx context.Context, t OIDCToken) error {
	return s.createOIDCToken(ctx, s.db, t)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) createOIDCToken(ctx context.Context, db execer, t OIDCToken) error {
	_, err := db.ExecContext(ctx, s.q(`INSERT INTO oidc_tokens (hash, kind, family, client_id, user_id, session_id, scopes,
		auth_time, amr, created_at, expires_at, family_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		t.Hash, t.Kind, t.Family, t.ClientID, t.UserID, t.SessionID, strings.Join(t.Scopes, " "), ms(t.AuthTime),
		strings.Join(t.AMR, " "), ms(t.CreatedAt), ms(t.ExpiresAt), ms(t.FamilyExpiresAt))
	if err != nil {
		return fmt.Errorf("store: create %s token: %w", t.Kind, err)
	}
	return nil
}

// OIDCToken loads a token with the state of its user and session.
func (s *Store) OIDCToken(ctx context.Context, hash []byte) (OIDCTokenState, error) {
	var t OIDCTokenState
	var scopes, amr string
	var authTime, created, expires, famExpires, used, revoked int64
	var disabled int
	var sessRevoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q("SELECT "+oidcTokenCols+`, u.disabled, se.revoked_at
		FROM oidc_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN sessions se ON se.id = t.session_id
		WHERE t.hash = ?`), hash).Scan(&t.Hash, &t.Kind, &t.Family, &t.ClientID, &t.UserID, &t.SessionID, &scopes,
		&authTime, &amr, &created, &expires, &famExpires, &used, &revoked, &disabled, &sessRevoked)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("store: token: %w", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("store: token: %w", err)
	}
	t.Scopes, t.AMR = strings.Fields(scopes), strings.Fields(amr)
	t.AuthTime, t.CreatedAt, t.ExpiresAt, t.FamilyExpiresAt = fromMS(authTime), fromMS(created), fromMS(expires), fromMS(famExpires)
	t.UsedAt, t.RevokedAt = fromMS(used), fromMS(revoked)
	t.UserDisabled = disabled != 0
	t.SessionLive = sessRevoked.Valid && sessRevoked.Int64 == 0
	return t, nil
}

// RotateOIDCRefresh marks a refresh token used and stores its successor, atomically: of two
// rotations racing on one token, one succeeds. A token that was already used (or revoked) is
// ErrReused, and its whole family is revoked: someone holds a copy of it.
func (s *Store) RotateOIDCRefresh(ctx context.Context, oldHash []byte, next OIDCToken) error {
	now := ms(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE oidc_tokens SET used_at = ? WHERE hash = ? AND kind = 'refresh' AND used_at = 0 AND revoked_at = 0"), now, oldHash)
		if err != nil {
			return fmt.Errorf("store: rotate refresh token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrReused
		}
		return s.createOIDCToken(ctx, tx, next)
	})
	if errors.Is(err, ErrReused) {
		if rerr := s.RevokeOIDCFamily(ctx, next.Family); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// RevokeOIDCFamily revokes every token of an authorization.
func (s *Store) RevokeOIDCFamily(ctx context.Context, family string) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.revokeFamily(ctx, tx, family, ms(s.now())) })
}

func (s *Store) revokeFamily(ctx context.Context, tx *sql.Tx, family string, now int64) error {
	if _, err := tx.ExecContext(ctx, s.q("UPDATE oidc_tokens SET revoked_at = ? WHERE family = ? AND revoked_at = 0"), now, family); err != nil {
		return fmt.Errorf("store: revoke token family: %w", err)
	}
	return nil
}

// OIDCConsent returns the scopes a user agreed to for a client, or ErrNotFound.
func (s *Store) OIDCConsent(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes string
	err := s.db.QueryRowContext(ctx, s.q("SELECT scopes FROM oidc_consents WHERE id = ?"), userID+" "+clientID).Scan(&scopes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: consent: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: consent: %w", err)
	}
	return strings.Fields(scopes), nil
}

// PutOIDCConsent records (or widens) a user's consent for a client.
func (s *Store) PutOIDCConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO oidc_consents (id, user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`),
		userID+" "+clientID, userID, clientID, strings.Join(scopes, " "), ms(s.now()))
	if err != nil {
		return fmt.Errorf("store: consent: %w", err)
	}
	return nil
}

// SweepOIDC deletes authorization requests and tokens well past their expiry. Redeemed requests
// stay until then, so that a code replayed late is still recognised.
func (s *Store) SweepOIDC(ctx context.Context) error {
	old := ms(s.now().Add(-24 * time.Hour))
	// A sign-in older than the longest refresh token has nothing left to log out of.
	ancient := ms(s.now().Add(-31 * 24 * time.Hour))
	for _, q := range []struct {
		query string
		arg   int64
	}{
		{"DELETE FROM oidc_auth_requests WHERE expires_at <= ?", old},
		{"DELETE FROM oidc_tokens WHERE expires_at <= ?", old},
		{"DELETE FROM oidc_sessions WHERE created_at <= ? OR (notified_at > 0 AND notified_at <= ?)", ancient},
	} {
		args := []any{q.arg}
		if strings.Count(q.query, "?") == 2 {
			args = append(args, old)
		}
		if _, err := s.db.ExecContext(ctx, s.q(q.query), args...); err != nil {
			return fmt.Errorf("store: sweep oidc: %w", err)
		}
	}
	return nil
}

// RecordOIDCSession notes that a Latchkey session signed in to a client (once per pair).
func (s *Store) RecordOIDCSession(ctx context.Context, sessionID, clientID, userID string) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO oidc_sessions (id, session_id, client_id, user_id, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`), sessionID+" "+clientID, sessionID, clientID, userID, ms(s.now()))
	if err != nil {
		return fmt.Errorf("store: record oidc session: %w", err)
	}
	return nil
}

// OIDCSessionEnd is a client to tell that a session ended.
type OIDCSessionEnd struct {
	ID, SessionID, ClientID, UserID, LogoutURI string
}

// EndedOIDCSessions lists sessions that ended (revoked, or removed with their user) and signed in
// to a client with a back-channel logout URI, not yet notified; at most limit.
func (s *Store) EndedOIDCSessions(ctx context.Context, limit int) ([]OIDCSessionEnd, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT o.id, o.session_id, o.client_id, o.user_id, c.backchannel_logout_uri
		FROM oidc_sessions o JOIN oidc_clients c ON c.id = o.client_id LEFT JOIN sessions se ON se.id = o.session_id
		WHERE o.notified_at = 0 AND c.backchannel_logout_uri <> '' AND (se.id IS NULL OR se.revoked_at <> 0)
		ORDER BY o.created_at LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("store: ended oidc sessions: %w", err)
	}
	defer rows.Close()
	var out []OIDCSessionEnd
	for rows.Next() {
		var e OIDCSessionEnd
		if err := rows.Scan(&e.ID, &e.SessionID, &e.ClientID, &e.UserID, &e.LogoutURI); err != nil {
			return nil, fmt.Errorf("store: ended oidc sessions: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ClaimOIDCSessionEnd marks an ended session notified and reports whether this caller did it: of
// several replicas polling, one sends the logout token.
func (s *Store) ClaimOIDCSessionEnd(ctx context.Context, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE oidc_sessions SET notified_at = ? WHERE id = ? AND notified_at = 0"), ms(s.now()), id)
	if err != nil {
		return false, fmt.Errorf("store: claim oidc session end: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
