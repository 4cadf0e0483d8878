package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
)

// Moving between domains (issue 23). A login on one domain does not sign the browser in on
// another by itself: a session cookie belongs to one domain. The "continue to example.org" step
// hands the session over with a token that is one-time (consumed atomically), short-lived
// (ContinueTTL), stored only as a hash, and bound to the session that asked for it: the new
// session on the other domain is made for that session's user, with its passkey and its
// verification time, and only while that session is still live.

// ContinueTTL is how long a continue link can be used.
const ContinueTTL = 60 * time.Second

const kindContinue = "domain_continue"

// continueState is what the ceremony row keeps for a continue token.
type continueState struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	From      string `json:"from"` // domain keys
	To        string `json:"to"`
	RD        string `json:"rd,omitempty"`
}

func continueID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "continue:" + hex.EncodeToString(sum[:])
}

// OtherDomains lists the configured domains other than the one of r, for "continue to" links.
func (s *Service) otherDomains(r *http.Request) []*domain {
	cur := s.domainOf(r)
	var out []*domain
	for _, d := range s.domains {
		if d != cur {
			out = append(out, d)
		}
	}
	return out
}

// continueBegin is POST /.latchkey/api/domains/continue {"domain": "example.org", "rd": URL}:
// signed in on this domain, it returns {"redirect": URL} to the other domain's continue page
// with a fresh token. The user and session come from the cookie, never from the body.
func (s *Service) continueBegin(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		return fail(http.StatusUnauthorized, N("sign in first"), nil)
	}
	if id.Restricted() {
		return fail(http.StatusForbidden, N("a recovery session can only create a passkey"), nil)
	}
	var body struct {
		Domain string `json:"domain"`
		RD     string `json:"rd"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	from := s.domainOf(r)
	to, ok := s.domainByName(body.Domain)
	if !ok || to == from {
		return fail(http.StatusBadRequest, N("that domain is not configured here"), fmt.Errorf("domain %q", body.Domain))
	}
	st := continueState{SessionID: id.SessionID, UserID: id.User.ID, From: from.key, To: to.key}
	if body.RD != "" {
		// Validated now and again on the other side; a target outside the policy becomes the
		// other portal's account page there.
		st.RD = s.safeRedirect(r, body.RD)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("auth: continue token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.ceremonyRoom(r.Context()); err != nil {
		return err
	}
	if err := s.store.PutCeremony(r.Context(), store.Ceremony{ID: continueID(token), Kind: kindContinue, Data: data,
		ExpiresAt: s.now().Add(ContinueTTL)}); err != nil {
		return err
	}
	link := to.base() + "/.latchkey/continue?" + url.Values{"token": {token}}.Encode()
	writeJSON(w, http.StatusOK, map[string]string{"redirect": link})
	return nil
}

// continuePage is GET /.latchkey/continue?token=T: one button that redeems the token. A link
// alone never signs anyone in (a prefetch, or someone else's link opened by mistake); the page
// names the domain and the token stays out of Referer headers.
func (s *Service) continuePage(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Referrer-Policy", "no-referrer")
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 128 {
		return fail(http.StatusNotFound, N("There is no such page."), nil)
	}
	d := struct{ Token, Domain string }{Token: token, Domain: s.domainOf(r).label()}
	s.render(w, r, http.StatusOK, "continue", pageData{Title: N("Continue to %s"), TitleArgs: []any{d.Domain}, Data: d})
	return nil
}

// continueFinish is POST /.latchkey/api/domains/redeem {"token": T} on the other domain's portal:
// it consumes the token and makes this domain's session for the token's user. Refused: an
// unknown, used or expired token; a token for another domain; a token whose session has ended
// (signed out, revoked, its passkey removed, its user disabled); and a browser already signed in
// here as someone else.
func (s *Service) continueFinish(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	gone := N("this link has expired or was already used; continue again from the other domain")
	if body.Token == "" || len(body.Token) > 128 {
		return fail(http.StatusForbidden, gone, errors.New("no token"))
	}
	c, err := s.store.TakeCeremony(ctx, continueID(body.Token), kindContinue)
	if errors.Is(err, store.ErrNotFound) {
		s.audit(ctx, r, "", "domain_continue_refused", "unknown, used or expired token")
		return fail(http.StatusForbidden, gone, err)
	}
	if err != nil {
		return err
	}
	var st continueState
	if err := json.Unmarshal(c.Data, &st); err != nil {
		return fmt.Errorf("auth: continue state: %w", err)
	}
	here := s.domainOf(r)
	if st.To != here.key {
		s.audit(ctx, r, st.UserID, "domain_continue_refused", "token for another domain")
		return fail(http.StatusForbidden, gone, fmt.Errorf("token for %q used on %q", st.To, here.key))
	}
	sid, ok := session.DecodeID(st.SessionID)
	if !ok {
		return fail(http.StatusForbidden, gone, errors.New("bad session id"))
	}
	src, res := s.view.Check(ctx, sid, s.now())
	if res != session.Allowed || src.User.ID != st.UserID || src.Domain != st.From || src.Restricted() {
		s.audit(ctx, r, st.UserID, "domain_continue_refused", "the session that asked has ended")
		return fail(http.StatusForbidden, N("the session this link came from has ended; sign in again"), nil)
	}
	if cur, signedIn := s.Authenticate(r); signedIn && cur.SessionID != "" {
		if cur.User.ID != st.UserID {
			s.audit(ctx, r, st.UserID, "domain_continue_refused", "browser signed in here as another user")
			return fail(http.StatusConflict, N("this browser is signed in here as someone else; sign out first"), nil)
		}
		if !cur.Restricted() {
			writeJSON(w, http.StatusOK, map[string]string{"redirect": s.continueTarget(r, st.RD)})
			return nil
		}
		// This user's recovery session here is replaced by the full one: end it.
		if err := s.store.RevokeSession(ctx, "", cur.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("auth: end the replaced session: %w", err)
		}
		s.Refresh(ctx)
	}
	row, err := s.store.Session(ctx, st.SessionID)
	if err != nil {
		return fail(http.StatusForbidden, N("the session this link came from has ended; sign in again"), err)
	}
	if err := s.handOver(w, r, row); err != nil {
		return err
	}
	s.audit(ctx, r, st.UserID, "domain_continue", "from "+s.domainByKey(st.From).label()+" to "+here.label())
	writeJSON(w, http.StatusOK, map[string]string{"redirect": s.continueTarget(r, st.RD)})
	return nil
}

// handOver makes this domain's session from src: same user, passkey and verification time (a
// continue is no fresh passkey check), and no longer-lived than src.
func (s *Service) handOver(w http.ResponseWriter, r *http.Request, src store.Session) error {
	id, err := newSessionID()
	if err != nil {
		return fmt.Errorf("auth: session id: %w", err)
	}
	now := s.now()
	d := s.domainOf(r)
	row := sessionRow(id, newSessionParams{userID: src.UserID, method: src.Method, credentialID: src.CredentialID,
		backupEligible: src.BackupEligible, aaguid: src.AAGUID}, now, s.opts.Lifetime, r.UserAgent(), s.clientAddr(r))
	row.VerifiedAt, row.Domain = src.VerifiedAt, d.key
	if src.ExpiresAt.Before(row.ExpiresAt) {
		row.ExpiresAt = src.ExpiresAt
	}
	rev, err := s.store.CreateSessionRev(r.Context(), row)
	if err != nil {
		return err
	}
	value, err := d.codec.encode(id, now)
	if err != nil {
		return err
	}
	s.view.Add(row, rev)
	http.SetCookie(w, s.sessionCookie(d, value, int(row.ExpiresAt.Sub(now)/time.Second)))
	return nil
}

func (s *Service) continueTarget(r *http.Request, rd string) string {
	if rd == "" {
		return s.accountURL(r)
	}
	return s.safeRedirect(r, rd)
}

func (s *Service) domainByKey(key string) *domain {
	for _, d := range s.domains {
		if d.key == key {
			return d
		}
	}
	return s.domains[0]
}
