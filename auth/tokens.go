package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
)

// Scoped API tokens for non-browser clients (issue 11). A token is "lk_" and 43 base64url
// characters (256 random bits); only its SHA-256 is stored, and the forward-auth check finds it in
// the in-memory view by that hash. A token is valid only for the hosts it was made for (the proxy
// compares them with the canonical target host) and cannot satisfy rules that need a passkey
// check of their own (max_age, device_bound, authenticators).

const (
	tokenPrefix     = "lk_"
	maxTokenLen     = 128 // anything longer is not one of ours; refuse before hashing
	maxTokenHosts   = 32
	maxTokenName    = 100
	defaultTokenTTL = 30 * 24 * time.Hour
	maxTokenTTL     = 366 * 24 * time.Hour
)

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	v := r.Header["Authorization"]
	if len(v) != 1 {
		return "", false
	}
	const scheme = "Bearer "
	if len(v[0]) <= len(scheme) || !strings.EqualFold(v[0][:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(v[0][len(scheme):]), true
}

// authenticateToken is the hot path for API tokens: no header, no work. A wrong token costs the
// client address one token of the "token-ip" bucket; while the bucket is empty every token from
// that address is refused, the right one included, so guessing is bounded. The token itself is
// never logged.
func (s *Service) authenticateToken(r *http.Request, now time.Time) (Identity, bool) {
	tok, ok := bearer(r)
	if !ok {
		return Identity{}, false
	}
	addr := s.clientAddr(r)
	if s.limits.blocked("token-ip", addr) > 0 {
		s.metrics.RateLimited("token")
		return Identity{}, false
	}
	if len(tok) > maxTokenLen || !strings.HasPrefix(tok, tokenPrefix) {
		s.limits.reserve("token-ip", addr, true)
		return Identity{}, false
	}
	id, res := s.view.Token(sha256.Sum256([]byte(tok)), now)
	if res == session.Stale {
		return id, false // not the client's fault: no token bucket spent
	}
	if res == session.Allowed && len(id.TokenHosts) == 0 {
		// The proxy treats nil TokenHosts as "a session": a token without hosts must never pass.
		res = session.Refused
	}
	if res != session.Allowed {
		s.limits.reserve("token-ip", addr, true)
		return Identity{}, false
	}
	return id, true
}

// tokenOwner is the signed-in user allowed to manage tokens: a full session (not a token, not a
// recovery session).
func (s *Service) tokenOwner(r *http.Request) (Identity, error) {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		return id, fail(http.StatusUnauthorized, N("sign in first"), nil)
	}
	if id.Restricted() {
		return id, fail(http.StatusForbidden, N("create a passkey first"), nil)
	}
	return id, nil
}

// tokenView is a token as the API and the tokens page show it (never the secret or its hash).
type tokenView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Hosts     []string  `json:"hosts"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	LastUsed  time.Time `json:"last_used_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Status    string    `json:"status"` // active | expired | revoked
}

func (s *Service) tokenViews(r *http.Request, userID string) ([]tokenView, error) {
	toks, err := s.store.Tokens(r.Context(), userID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]tokenView, 0, len(toks))
	for _, t := range toks {
		tv := tokenView{ID: t.ID, Name: t.Name, Hosts: t.Hosts, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
			LastUsed: t.LastUsedAt, RevokedAt: t.RevokedAt, Status: "active"}
		if lu := s.view.TokenLastUsed(t.Hash); lu.After(tv.LastUsed) {
			tv.LastUsed = lu.UTC()
		}
		switch {
		case !t.RevokedAt.IsZero():
			tv.Status = "revoked"
		case !now.Before(t.ExpiresAt):
			tv.Status = "expired"
		}
		out = append(out, tv)
	}
	return out, nil
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) error {
	id, err := s.tokenOwner(r)
	if err != nil {
		return err
	}
	toks, err := s.tokenViews(r, id.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
	return nil
}

// createToken needs a fresh passkey verification: a token is a new, long-lived way in that a
// stolen cookie must not be able to mint (issue 16).
func (s *Service) createToken(w http.ResponseWriter, r *http.Request) error {
	id, err := s.tokenOwner(r)
	if err != nil {
		return err
	}
	if err := s.fresh(id); err != nil {
		return err
	}
	var body struct {
		Name      string   `json:"name"`
		Hosts     []string `json:"hosts"`
		ExpiresIn string   `json:"expires_in"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	name := strings.TrimSpace(body.Name)
	if name == "" || len(name) > maxTokenName {
		return failf(http.StatusBadRequest, N("give the token a name (1 to %d characters)"), []any{maxTokenName}, nil)
	}
	if account.HasControl(name) {
		return fail(http.StatusBadRequest, N("a token name cannot hold control characters"), nil)
	}
	if len(body.Hosts) == 0 || len(body.Hosts) > maxTokenHosts {
		return failf(http.StatusBadRequest, N("list the hosts the token is for (1 to %d)"), []any{maxTokenHosts}, nil)
	}
	hosts := make([]string, 0, len(body.Hosts))
	for _, h := range body.Hosts {
		ch, ok := tokenHost(h)
		if !ok {
			return failf(http.StatusBadRequest, N("%q is not a host name such as app.example.com"), []any{h}, nil)
		}
		if !contains(hosts, ch) {
			hosts = append(hosts, ch)
		}
	}
	ttl := defaultTokenTTL
	if body.ExpiresIn != "" {
		if ttl, err = time.ParseDuration(body.ExpiresIn); err != nil || ttl <= 0 || ttl > maxTokenTTL {
			return fail(http.StatusBadRequest, N("expires_in must be a duration such as 720h, at most 8784h"), err)
		}
	}
	raw, _, err := newToken()
	if err != nil {
		return err
	}
	// The prefix makes a leaked token recognisable to secret scanners; the hash covers it.
	tok := tokenPrefix + raw
	hash := hashToken(tok)
	now := s.now()
	t := store.Token{ID: uuid.NewString(), UserID: id.User.ID, Name: name, Hash: hash, Hosts: hosts,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	s.Refresh(r.Context())
	s.audit(r.Context(), r, id.User.ID, "token_created", fmt.Sprintf("token %s %q for %s, expires %s", t.ID, name,
		strings.Join(hosts, ","), t.ExpiresAt.UTC().Format(time.RFC3339)))
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "token": tok, "hosts": hosts, "expires_at": t.ExpiresAt.UTC()})
	return nil
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id, err := s.tokenOwner(r)
	if err != nil {
		return err
	}
	tid := r.PathValue("id")
	if err := s.store.RevokeToken(r.Context(), id.User.ID, tid); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(http.StatusNotFound, N("no such token"), err)
		}
		return err
	}
	s.Refresh(r.Context())
	s.audit(r.Context(), r, id.User.ID, "token_revoked", "token "+tid)
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
	return nil
}

func (s *Service) tokensPage(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		http.Redirect(w, r, s.domainOf(r).base()+"/.latchkey/login", http.StatusFound)
		return nil
	}
	if id.Restricted() {
		http.Redirect(w, r, s.domainOf(r).base()+"/.latchkey/enroll", http.StatusFound)
		return nil
	}
	toks, err := s.tokenViews(r, id.User.ID)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "tokens", pageData{Title: N("API tokens"), User: id.User, Data: struct{ Tokens []tokenView }{toks}})
	return nil
}

// tokenHost canonicalises a host a token is made for the way the proxy canonicalises a target:
// lower case, no trailing dot, no default port. Wildcards, userinfo, paths and IP literals with
// zones are refused, so a token names exact hosts only.
func tokenHost(h string) (string, bool) {
	h = strings.ToLower(strings.TrimSpace(h))
	if h == "" || len(h) > 253+6 {
		return "", false
	}
	host, port := h, ""
	if hp, p, err := net.SplitHostPort(h); err == nil {
		host, port = hp, p
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return "", false
		}
		if port == "443" || port == "80" {
			port = ""
		}
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == ':') {
			return "", false
		}
	}
	if strings.Contains(host, ":") { // an IPv6 literal
		ip := net.ParseIP(host)
		if ip == nil {
			return "", false
		}
		host = ip.String()
		if port != "" {
			return "[" + host + "]:" + port, true
		}
		return host, true
	}
	if port != "" {
		return host + ":" + port, true
	}
	return host, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
