// Package account is the one implementation of the operations that change who may sign in:
// add, invite, disable, enable and remove a user, remove a passkey, end sessions, and change a
// user's e-mail address. The CLI (cmd/latchkey) and the web front ends (auth: the admin console
// and the account page) all call it, so that the same input is refused with the same words
// everywhere and every change leaves the same audit row, naming who did it (the actor) and to
// whom (the target). It depends on store only: it knows nothing of HTTP, cookies or WebAuthn, and
// the auth package imports it (never the other way round), so both front ends can use it
// without an import cycle and the CLI does not have to build a relying party to add a user.
//
// What it leaves to its callers: authorisation (who may act; the console checks the admin
// group and a fresh passkey verification, the CLI is whoever can open the database) and telling
// their own in-memory views about the change (auth calls Refresh afterwards).
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

// EnrolTTL is how long an enrolment link works.
const EnrolTTL = 7 * 24 * time.Hour

// Audit events written by this package: one vocabulary for the CLI, the admin console and the
// account page. Each row's user_id is the target; its detail starts "actor=NAME target=NAME".
const (
	EventUserAdded       = "user_added"
	EventUserInvited     = "user_invited"
	EventUserDisabled    = "user_disabled"
	EventUserEnabled     = "user_enabled"
	EventUserRemoved     = "user_removed"
	EventPasskeyRemoved  = "passkey_removed"
	EventSessionRevoked  = "session_revoked"
	EventSessionsRevoked = "sessions_revoked"
	EventEmailChanged    = "email_changed"
	EventLinkCreated     = "enrolment_link_created"
)

// Errors callers map to their own answers (compare with errors.Is). Input errors are
// *InvalidError; store.ErrNotFound and store.ErrLastPasskey pass through wrapped.
var (
	ErrUserExists = errors.New("a user with this name exists")
	ErrDisabled   = errors.New("the user is disabled; enable them first")
	ErrSelf       = errors.New("you cannot do this to your own account")
)

// ActorCLI is the actor name of changes made with the latchkey command.
const ActorCLI = "cli"

// Actor is who makes a change: a signed-in user (an admin in the console, or the user on their
// own account page) or the CLI.
type Actor struct {
	Name   string // the acting user's login name, or ActorCLI
	UserID string // empty for the CLI
	IP     string // the client address, when the change came over HTTP
}

// CLI is the actor of the latchkey command.
var CLI = Actor{Name: ActorCLI}

// Options configure a Service.
type Options struct {
	PublicURL *url.URL // for enrolment links
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service runs account operations on a store.
type Service struct {
	st     *store.Store
	public *url.URL
	now    func() time.Time
	log    *slog.Logger
}

// New returns a Service on st.
func New(st *store.Store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, public: opts.PublicURL, now: opts.Now, log: opts.Logger}
}

// audit records one change in the store and the log. extra holds more key=value pairs; nothing
// in it is a secret.
func (s *Service) audit(ctx context.Context, a Actor, target store.User, event, extra string) {
	detail := "actor=" + a.Name + " target=" + target.Name
	if extra != "" {
		detail += " " + extra
	}
	s.log.InfoContext(ctx, "audit", "event", event, "user_id", target.ID, "actor", a.Name, "target", target.Name, "detail", detail, "ip", a.IP)
	// The change is made; a failed audit write must not turn it into a reported failure (the
	// caller would retry a change that happened), so it is logged as an error instead.
	if err := s.st.Audit(context.WithoutCancel(ctx), store.Event{UserID: target.ID, Event: event, Detail: detail, IP: a.IP, At: s.now()}); err != nil {
		s.log.ErrorContext(ctx, "writing audit event failed", "event", event, "err", err)
	}
}

// AddUser validates and creates a user and returns them with a one-time enrolment link.
func (s *Service) AddUser(ctx context.Context, a Actor, in NewUser) (store.User, string, error) {
	in, err := in.clean()
	if err != nil {
		return store.User{}, "", err
	}
	u := store.User{ID: uuid.NewString(), Name: in.Name, DisplayName: in.DisplayName, Email: in.Email, Groups: in.Groups, CreatedAt: s.now()}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return u, "", fmt.Errorf("user %q: %w", u.Name, ErrUserExists)
		}
		return u, "", err
	}
	// The link first, then the row: like an invitation, the event follows the link it made.
	link, err := NewEnrolmentLink(ctx, s.st, s.public, u.ID, s.now())
	s.audit(ctx, a, u, EventUserAdded, "groups="+strings.Join(u.Groups, ","))
	if err != nil {
		return u, "", err
	}
	return u, link, nil
}

// Invite makes a new one-time enrolment link for a user (recovery by an admin); earlier unused
// links stop working.
func (s *Service) Invite(ctx context.Context, a Actor, u store.User) (string, error) {
	if u.Disabled {
		return "", fmt.Errorf("user %q: %w", u.Name, ErrDisabled)
	}
	link, err := NewEnrolmentLink(ctx, s.st, s.public, u.ID, s.now())
	if err != nil {
		return "", err
	}
	s.audit(ctx, a, u, EventUserInvited, "")
	return link, nil
}

// Disable disables a user and ends for good their sessions, API tokens and unused links, in one
// store transaction; enabling them later brings none of it back.
func (s *Service) Disable(ctx context.Context, a Actor, u store.User) (store.Revoked, error) {
	if a.UserID != "" && a.UserID == u.ID {
		return store.Revoked{}, ErrSelf
	}
	rv, err := s.st.DisableUser(ctx, u.ID)
	if err != nil {
		return rv, err
	}
	s.audit(ctx, a, u, EventUserDisabled, fmt.Sprintf("sessions=%d tokens=%d links=%d", rv.Sessions, rv.Tokens, rv.Links))
	return rv, nil
}

// Enable lets a disabled user sign in with their passkeys again.
func (s *Service) Enable(ctx context.Context, a Actor, u store.User) error {
	if a.UserID != "" && a.UserID == u.ID {
		return ErrSelf
	}
	if err := s.st.SetUserDisabled(ctx, u.ID, false); err != nil {
		return err
	}
	s.audit(ctx, a, u, EventUserEnabled, "")
	return nil
}

// Remove deletes a user with their passkeys, sessions, tokens and links (audit rows stay).
func (s *Service) Remove(ctx context.Context, a Actor, u store.User) error {
	if a.UserID != "" && a.UserID == u.ID {
		return ErrSelf
	}
	if err := s.st.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	s.audit(ctx, a, u, EventUserRemoved, "")
	return nil
}

// RemovePasskey removes one of u's passkeys and ends the sessions it made. Someone removing a
// passkey of their own is kept from locking themselves out: their last passkey goes only while
// they hold an unused recovery code (store.ErrLastPasskey). An admin may remove anyone else's
// last passkey (a stolen device) and then invites them again.
func (s *Service) RemovePasskey(ctx context.Context, a Actor, u store.User, credentialID []byte) error {
	var err error
	if a.UserID != "" && a.UserID == u.ID {
		err = s.st.RemoveOwnCredential(ctx, u.ID, credentialID)
	} else {
		err = s.st.DeleteCredential(ctx, u.ID, credentialID)
	}
	if err != nil {
		return err
	}
	s.audit(ctx, a, u, EventPasskeyRemoved, "passkey="+CredentialRef(credentialID))
	return nil
}

// RevokeSession ends one of u's sessions. current says whether it is the actor's own browser
// session (for the audit row).
func (s *Service) RevokeSession(ctx context.Context, a Actor, u store.User, sessionID string, current bool) error {
	if err := s.st.RevokeSession(ctx, u.ID, sessionID); err != nil {
		return err
	}
	which := "other"
	if current {
		which = "current"
	}
	s.audit(ctx, a, u, EventSessionRevoked, "session="+which)
	return nil
}

// RevokeSessions ends every session of u and, when tokens is set, revokes every API token of
// theirs too, in one store transaction ("sign out everywhere").
func (s *Service) RevokeSessions(ctx context.Context, a Actor, u store.User, tokens bool) (store.Revoked, error) {
	rv, err := s.st.RevokeAccess(ctx, u.ID, tokens)
	if err != nil {
		return rv, err
	}
	s.audit(ctx, a, u, EventSessionsRevoked, fmt.Sprintf("sessions=%d tokens=%d", rv.Sessions, rv.Tokens))
	return rv, nil
}

// SetEmail changes u's e-mail address ("" removes it); unused recovery links mailed to the old
// address stop working in the same transaction.
func (s *Service) SetEmail(ctx context.Context, a Actor, u store.User, email string) (string, error) {
	email = strings.TrimSpace(email)
	if err := ValidEmail(email); err != nil {
		return "", err
	}
	if err := s.st.SetUserEmail(ctx, u.ID, email); err != nil {
		return "", err
	}
	// Neither address goes into the row: the audit log outlives the address it would expose.
	s.audit(ctx, a, u, EventEmailChanged, fmt.Sprintf("email_set=%t", email != ""))
	return email, nil
}

// Summary says in words what a revocation ended: "Ended 3 sessions and revoked 2 API tokens".
func Summary(rv store.Revoked, tokens bool) string {
	out := "Ended " + plural(rv.Sessions, "session")
	if tokens {
		out += " and revoked " + plural(rv.Tokens, "API token")
	}
	return out
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// NewEnrolmentLink makes a one-time enrolment link for a user, replacing any earlier unused one.
// Account operations, the bootstrap on serve and the tests use it.
func NewEnrolmentLink(ctx context.Context, st *store.Store, publicURL *url.URL, userID string, now time.Time) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("account: enrolment token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := st.RevokeInvites(ctx, userID, store.PurposeEnrol); err != nil {
		return "", err
	}
	if _, err := st.CreateInvite(ctx, store.Invite{TokenHash: HashToken(token), UserID: userID, Purpose: store.PurposeEnrol,
		CreatedAt: now, ExpiresAt: now.Add(EnrolTTL)}); err != nil {
		return "", fmt.Errorf("account: enrolment link: %w", err)
	}
	if err := st.Audit(ctx, store.Event{UserID: userID, Event: EventLinkCreated, At: now}); err != nil {
		return "", err
	}
	return publicURL.Scheme + "://" + publicURL.Host + "/.latchkey/enroll?token=" + url.QueryEscape(token), nil
}

// HashToken is how one-time link tokens and API tokens are kept in the store: their SHA-256.
// The tokens carry 256 random bits, so a plain hash reveals nothing usable.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// CredentialRef names a passkey in logs and audit rows by a short, non-identifying prefix of
// its ID's hash.
func CredentialRef(id []byte) string {
	sum := sha256.Sum256(id)
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}
