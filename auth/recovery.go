package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/store"
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

// hashToken is how link and API tokens are stored; account makes enrolment links with the same.
func hashToken(token string) []byte { return account.HashToken(token) }

// Recovery (issue 6): a recovery code or an e-mailed magic link grants a restricted session
// that can do one thing, enrol a new passkey for its own user (register begin/finish accept it;
// everything else refuses it). registerFinish then replaces it with a passkey session.

// RecoverySessionTTL is the lifetime of a restricted recovery session: long enough to enrol a
// passkey, short enough that a forgotten one is soon worthless.
const RecoverySessionTTL = 30 * time.Minute

// errRecovery is the one answer to every refused recovery code: unknown user, disabled user,
// wrong code, used code and another user's code cannot be told apart.
var errRecovery = N("this recovery code is not valid for this account")

// maxCodeInput bounds what is hashed: a code is 19 characters, with room for stray spaces.
const maxCodeInput = 64

func (s *Service) enrolURL(r *http.Request) string { return s.domainOf(r).base() + "/.latchkey/enroll" }

// recoverWithCode is POST /.latchkey/api/recover {"user", "code"}.
func (s *Service) recoverWithCode(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		User string `json:"user"`
		Code string `json:"code"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	name := strings.TrimSpace(body.User)
	// Both buckets are charged before the code is looked at, right or wrong, so that guesses sent
	// in parallel are counted like guesses sent one after the other (HOSTILE PUB-28, PUB-31b).
	if err := s.limits.allow(w, "recover-ip", s.clientAddr(r)); err != nil {
		s.metrics.RateLimited("recover")
		return err
	}
	if err := s.limits.allow(w, "recover-user", limiterKey(name)); err != nil {
		s.metrics.RateLimited("recover")
		return err
	}
	u, err := s.store.UserByName(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	uid := ""
	if err == nil && !u.Disabled {
		uid = u.ID
	}
	// The same query runs for an unknown user (it finds nothing), so both take one round trip.
	codes, err := s.store.RecoveryCodes(ctx, uid)
	if err != nil {
		return err
	}
	var match *store.RecoveryCode
	if len(body.Code) <= maxCodeInput {
		h := hashCode(body.Code)
		for i := range codes {
			// Every stored hash is compared, in constant time, whatever matched before.
			if subtle.ConstantTimeCompare(codes[i].Hash, h) == 1 && codes[i].UsedAt.IsZero() {
				match = &codes[i]
			}
		}
	}
	if match == nil {
		s.metrics.Ceremony("recover", "failed")
		s.audit(ctx, r, uid, "recovery_code_failed", "wrong, used or unknown code")
		return fail(http.StatusUnauthorized, errRecovery, nil)
	}
	// Single use even under a race: the store marks the code used only if nobody did first.
	if err := s.store.UseRecoveryCode(ctx, match.ID); err != nil {
		if errors.Is(err, store.ErrUsed) {
			s.audit(ctx, r, uid, "recovery_code_failed", "code used concurrently")
			return fail(http.StatusUnauthorized, errRecovery, err)
		}
		return err
	}
	s.limits.reset("recover-user", limiterKey(name))
	if err := s.startRecoverySession(w, r, u.ID, MethodRecoveryCode); err != nil {
		return err
	}
	left := 0
	for _, c := range codes {
		if c.UsedAt.IsZero() && c.ID != match.ID {
			left++
		}
	}
	s.metrics.Ceremony("recover", "ok")
	s.audit(ctx, r, u.ID, "recovery_code_used", fmt.Sprintf("%d unused codes left", left))
	writeJSON(w, http.StatusOK, map[string]any{"redirect": s.enrolURL(r), "codes_left": left})
	return nil
}

// startRecoverySession creates a restricted session for userID and sets its cookie. A session the
// browser held before is ended: its cookie is being replaced, and no value the browser had before
// should work after (as for a login).
func (s *Service) startRecoverySession(w http.ResponseWriter, r *http.Request, userID, method string) error {
	ctx := r.Context()
	sid, err := newSessionID()
	if err != nil {
		return fmt.Errorf("auth: session id: %w", err)
	}
	now := s.now()
	d := s.domainOf(r)
	row := sessionRow(sid, newSessionParams{userID: userID, method: method}, now, RecoverySessionTTL, r.UserAgent(), s.clientAddr(r))
	row.Domain = d.key
	rev, err := s.store.CreateSessionRev(ctx, row)
	if err != nil {
		return err
	}
	value, err := d.codec.encode(sid, now)
	if err != nil {
		return err
	}
	s.view.Add(row, rev)
	if prev, ok := s.Authenticate(r); ok && prev.SessionID != "" {
		if err := s.store.RevokeSession(ctx, "", prev.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("auth: end the replaced session: %w", err)
		}
		s.Refresh(ctx)
	}
	http.SetCookie(w, s.sessionCookie(d, value, int(RecoverySessionTTL/time.Second)))
	return nil
}

// recoverByEmail is POST /.latchkey/api/recover/email {"user"}. It always answers 202 with the
// same body, at once: the lookup, the link and the mail happen in the background, so neither the
// answer nor its timing says whether the account exists or has an address (HOSTILE PUB-29).
func (s *Service) recoverByEmail(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		User string `json:"user"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	ip := s.clientAddr(r)
	// The address's bucket does not depend on the account named, so a 429 reveals nothing.
	if err := s.limits.allow(w, "recover-email-ip", ip); err != nil {
		s.metrics.RateLimited("recover_email")
		return err
	}
	name := strings.TrimSpace(body.User)
	if s.opts.Mailer != nil && len(name) <= 64 && s.limits.reserve("recover-email", limiterKey(name), true) == 0 {
		if release, ok := s.limits.mailSlot(); ok {
			ctx := context.WithoutCancel(r.Context())
			l := s.lang(r) // the mail speaks the language of the page that asked for it
			s.mail.Go(func() {
				defer release()
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				s.sendRecoveryLink(ctx, l, name, ip)
			})
		} else {
			s.log.WarnContext(r.Context(), "recovery e-mail dropped: too many in flight")
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"status": "If that account has an e-mail address, a link is on its way. It works once, for 15 minutes."})
	return nil
}

// sendRecoveryLink makes a one-time recovery link for the named user and mails it to the address
// on the account. Users without an address, disabled users and users who never enrolled a passkey
// (for them, an administrator's enrolment link is the way in) get nothing.
func (s *Service) sendRecoveryLink(ctx context.Context, l *locale, name, ip string) {
	u, err := s.store.UserByName(ctx, name)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "recovery link: user lookup failed", "err", err)
		}
		return
	}
	if u.Disabled || u.Email == "" {
		return
	}
	creds, err := s.store.Credentials(ctx, u.ID)
	if err != nil {
		s.log.ErrorContext(ctx, "recovery link: passkey lookup failed", "err", err)
		return
	}
	if len(creds) == 0 {
		return
	}
	token, hash, err := newToken()
	if err != nil {
		s.log.ErrorContext(ctx, "recovery link", "err", err)
		return
	}
	now := s.now()
	// A new link replaces the earlier unused ones: only the latest mail works.
	if err := s.store.RevokeInvites(ctx, u.ID, store.PurposeRecover); err != nil {
		s.log.ErrorContext(ctx, "recovery link", "err", err)
		return
	}
	if _, err := s.store.CreateInvite(ctx, store.Invite{TokenHash: hash, UserID: u.ID, Purpose: store.PurposeRecover,
		Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(MagicLinkTTL)}); err != nil {
		s.log.ErrorContext(ctx, "recovery link", "err", err)
		return
	}
	link := baseURL(s.opts.PublicURL) + "/.latchkey/recover?token=" + url.QueryEscape(token)
	subject := l.text(N("Recover your %s account"), s.opts.RPName)
	if err := s.opts.Mailer.Send(ctx, u.Email, subject, recoveryMail(l, u.Name, s.opts.PublicURL.Host, link, ip)); err != nil {
		s.log.ErrorContext(ctx, "recovery link: sending the e-mail failed", "user_id", u.ID, "err", err)
		s.auditIP(ctx, u.ID, "recovery_link_failed", "the e-mail could not be sent", ip)
		return
	}
	s.auditIP(ctx, u.ID, "recovery_link_sent", "to the account's e-mail address", ip)
}

// recoveryMail is the magic link's text in the language of the page that asked for it.
func recoveryMail(l *locale, user, host, link, ip string) string {
	who := l.text(N("Someone asked to recover access to the account %s at %s."), user, host)
	if ip != "" {
		who = l.text(N("Someone at %s asked to recover access to the account %s at %s."), ip, user, host)
	}
	return l.text(N("Hello %s,"), user) + "\r\n\r\n" + who + "\r\n" +
		l.text(N("If it was you, open this link within 15 minutes to create a new passkey. It works once:")) + "\r\n\r\n" +
		link + "\r\n\r\n" +
		l.text(N("If you did not ask for this, ignore this message: nothing changes on your account.")) + "\r\n"
}

// auditIP is audit for work that outlives its request (the request must not be read any more).
func (s *Service) auditIP(ctx context.Context, userID, event, detail, ip string) {
	s.log.InfoContext(ctx, "audit", "event", event, "user_id", userID, "detail", detail, "ip", ip)
	if err := s.store.Audit(context.WithoutCancel(ctx), store.Event{UserID: userID, Event: event, Detail: detail, IP: ip}); err != nil {
		s.log.ErrorContext(ctx, "writing audit event failed", "event", event, "err", err)
	}
}

// Opening a magic link takes two steps, because mail scanners and link previews fetch every link
// in a message before the person does: the GET only shows a confirmation page and writes nothing,
// and the button on that page POSTs the token to consume it. A scanner's prefetch leaves the link
// working; a person's click on the button uses it up.

// linkRefused is the one answer to a link that is not (or no longer) valid.
var linkRefused = N("This recovery link is not valid: it may have been used already or have expired. Ask for a new one.")

// linkTitle is the error page's title for a dead enrolment or recovery link.
var linkTitle = N("Link no longer valid")

// magicLinkTarget checks a recovery link's token without changing anything and returns its invite
// and user. A used, expired or unknown link, a link of another purpose, a disabled account, and a
// link sent to an address the account no longer has are refused with 403. audit says whether to
// record the last case (the GET writes nothing, not even an audit event).
func (s *Service) magicLinkTarget(ctx context.Context, r *http.Request, token string, audit bool) (store.Invite, store.User, error) {
	in, err := s.validInvite(ctx, token, store.PurposeRecover)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			return in, store.User{}, fail(http.StatusForbidden, linkRefused, err)
		}
		return in, store.User{}, err
	}
	u, err := s.store.UserByID(ctx, in.UserID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return in, u, fmt.Errorf("auth: recovery link user: %w", err)
	}
	if err != nil || u.Disabled {
		return in, u, fail(http.StatusForbidden, linkRefused, err)
	}
	if in.Email == "" || in.Email != u.Email {
		if audit {
			s.audit(ctx, r, u.ID, "recovery_link_refused", "the account's e-mail address changed since the link was sent")
		}
		return in, u, fail(http.StatusForbidden, N("This recovery link was sent to an e-mail address that is no longer on the account. Ask for a new one."), nil)
	}
	return in, u, nil
}

// magicLinkPage is GET /.latchkey/recover?token=T: it checks the link and shows a page whose
// button opens it. The token goes into the page only as an escaped attribute; the page is not
// cached and sends no Referer (SecurityHeaders), so the token does not leak from it.
func (s *Service) magicLinkPage(w http.ResponseWriter, r *http.Request) error {
	if err := s.limits.allow(w, "enroll-ip", s.clientAddr(r)); err != nil {
		return err
	}
	token := r.URL.Query().Get("token")
	_, u, err := s.magicLinkTarget(r.Context(), r, token, false)
	if err != nil {
		return withTitle(linkTitle, err)
	}
	d := struct{ Token, Name string }{Token: token, Name: u.Name}
	s.render(w, r, http.StatusOK, "recover-link", pageData{Title: N("Recover access"), Data: d})
	return nil
}

// openMagicLink is POST /.latchkey/api/recover/link {"token"}: it consumes the link (once, even
// under a race) and starts a restricted session (method magic_link), then names the enrolment
// page. Every refusal is 403 and changes nothing.
func (s *Service) openMagicLink(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if err := s.limits.allow(w, "enroll-ip", s.clientAddr(r)); err != nil {
		return err
	}
	in, u, err := s.magicLinkTarget(ctx, r, body.Token, true)
	if err != nil {
		return err
	}
	if err := s.store.UseInvite(ctx, in.ID); err != nil {
		if errors.Is(err, store.ErrUsed) {
			return fail(http.StatusForbidden, linkRefused, err)
		}
		return fmt.Errorf("auth: use recovery link: %w", err)
	}
	if err := s.startRecoverySession(w, r, u.ID, MethodMagicLink); err != nil {
		return err
	}
	s.audit(ctx, r, u.ID, "recovery_link_used", "")
	writeJSON(w, http.StatusOK, map[string]string{"redirect": s.enrolURL(r)})
	return nil
}
