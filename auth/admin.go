package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/store"
)

// Admin console (issue 12): users (add with a one-time enrolment link and its QR code, disable,
// enable, remove, re-invite), each user's passkeys and sessions, and the audit log. Only members
// of Options.AdminGroup get in, and only with a passkey verification younger than AdminStepUp:
// an admin's stolen cookie alone cannot add users. Pages are server-rendered; actions are
// same-origin JSON posts made by admin.js, behind the same CSRF guard as every other API. The
// operations themselves, with their validation and audit rows, are package account's, which the
// CLI runs too (issue 16): the handlers here only authorise, map errors and refresh the view.

const auditPageSize = 50

func (s *Service) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.latchkey/admin", s.page(s.adminUsersPage))
	mux.HandleFunc("GET /.latchkey/admin/users/{id}", s.page(s.adminUserPage))
	mux.HandleFunc("GET /.latchkey/admin/audit", s.page(s.adminAuditPage))

	mux.HandleFunc("POST /.latchkey/api/admin/users", s.api(s.adminAddUser))
	mux.HandleFunc("POST /.latchkey/api/admin/users/{id}/invite", s.api(s.adminInvite))
	mux.HandleFunc("POST /.latchkey/api/admin/users/{id}/disable", s.api(s.adminSetDisabled(true)))
	mux.HandleFunc("POST /.latchkey/api/admin/users/{id}/enable", s.api(s.adminSetDisabled(false)))
	mux.HandleFunc("DELETE /.latchkey/api/admin/users/{id}", s.api(s.adminRemoveUser))
	mux.HandleFunc("POST /.latchkey/api/admin/users/{id}/passkeys/remove", s.api(s.adminRemovePasskey))
	mux.HandleFunc("POST /.latchkey/api/admin/users/{id}/sessions/revoke", s.api(s.adminRevokeSessions))
}

// admin checks that the request comes from an admin with a fresh passkey verification. Errors are
// client-safe: 401 (no session, or step-up needed: errStepUp is the cause) or 403 (not an admin).
func (s *Service) admin(r *http.Request) (Identity, error) {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		return id, fail(http.StatusUnauthorized, N("sign in first"), nil)
	}
	if id.Restricted() || !inGroup(id.User.Groups, s.opts.AdminGroup) {
		return id, fail(http.StatusForbidden, N("This area is for administrators."), fmt.Errorf("user %s is not in group %q", id.User.Name, s.opts.AdminGroup))
	}
	return id, s.fresh(id)
}

// adminPage runs the admin check for a page: signed-out browsers go to the login page, admins
// with an old verification go through step-up and come back to the same page.
func (s *Service) adminPage(w http.ResponseWriter, r *http.Request) (Identity, bool, error) {
	id, err := s.admin(r)
	if err == nil {
		return id, true, nil
	}
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusUnauthorized {
		q := url.Values{"rd": {s.domainOf(r).base() + r.URL.RequestURI()}}
		if errors.Is(err, errStepUp) {
			q.Set("stepup", "1")
		}
		http.Redirect(w, r, s.domainOf(r).base()+"/.latchkey/login?"+q.Encode(), http.StatusFound)
		return id, false, nil
	}
	return id, false, err
}

// adminUser is a row of the users page.
type adminUser struct {
	store.User
	Passkeys   int
	Admin      bool
	LastSignIn time.Time // the latest use of any of their passkeys
}

func (s *Service) adminUsersPage(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := s.adminPage(w, r)
	if !ok {
		return err
	}
	users, err := s.store.Users(r.Context())
	if err != nil {
		return err
	}
	rows := make([]adminUser, 0, len(users))
	for _, u := range users {
		creds, err := s.store.Credentials(r.Context(), u.ID)
		if err != nil {
			return err
		}
		row := adminUser{User: u, Passkeys: len(creds), Admin: inGroup(u.Groups, s.opts.AdminGroup)}
		for _, c := range creds {
			if c.LastUsedAt.After(row.LastSignIn) {
				row.LastSignIn = c.LastUsedAt
			}
		}
		rows = append(rows, row)
	}
	s.render(w, r, http.StatusOK, "admin", pageData{Title: N("Admin · Users"), User: id.User, Data: struct {
		Users      []adminUser
		AdminGroup string
	}{rows, s.opts.AdminGroup}})
	return nil
}

func (s *Service) adminUserPage(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := s.adminPage(w, r)
	if !ok {
		return err
	}
	ctx := r.Context()
	u, err := s.store.UserByID(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return fail(http.StatusNotFound, N("No such user."), err)
	} else if err != nil {
		return err
	}
	creds, err := s.store.Credentials(ctx, u.ID)
	if err != nil {
		return err
	}
	sessions, err := s.store.Sessions(ctx, u.ID)
	if err != nil {
		return err
	}
	keys := make([]passkeyView, 0, len(creds))
	names := make(map[string]string, len(creds))
	for _, c := range creds {
		keys = append(keys, passkeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name,
			Created: c.CreatedAt, LastUsed: c.LastUsedAt, Synced: c.BackupEligible, Authenticator: AuthenticatorName(c.AAGUID)})
		names[string(c.ID)] = c.Name
	}
	tokens, err := s.tokenViews(r, u.ID)
	if err != nil {
		return err
	}
	l := s.lang(r)
	rows := make([]adminSession, 0, len(sessions))
	for _, se := range sessions {
		row := adminSession{Session: se, Passkey: names[string(se.CredentialID)]}
		if len(se.CredentialID) > 0 && row.Passkey == "" {
			row.Passkey = l.text(N("a removed passkey"))
		}
		rows = append(rows, row)
	}
	s.render(w, r, http.StatusOK, "admin-user", pageData{Title: N("Admin · %s"), TitleArgs: []any{u.Name}, User: id.User, Data: struct {
		Target   store.User
		Groups   string // the target's groups, joined for the sentence that names them
		Self     bool
		Passkeys []passkeyView
		Sessions []adminSession
		Tokens   []tokenView
	}{u, strings.Join(u.Groups, ", "), u.ID == id.User.ID, keys, rows, tokens}})
	return nil
}

// adminSession is a session row of a user's page, with the name of the passkey that made it.
type adminSession struct {
	store.Session
	Passkey string
}

// MethodName says how a session was made, in words.
func MethodName(method string) string {
	switch method {
	case MethodPasskey:
		return N("passkey")
	case MethodRecoveryCode:
		return N("recovery code")
	case MethodMagicLink:
		return N("e-mailed link")
	}
	return method
}

// enrolmentAnswer is the one-time link and its QR code (a PNG data: URL, which the CSP allows as
// an image), shown once to the admin, with how long the link works in the admin's language.
func enrolmentAnswer(l *locale, userID, link string) (map[string]string, error) {
	png, err := qrcode.Encode(link, qrcode.Medium, 256)
	if err != nil {
		return nil, fmt.Errorf("auth: enrolment QR code: %w", err)
	}
	return map[string]string{"id": userID, "link": link, "qr": "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		"expires_in": l.text(N("%d days"), int(EnrolTTL/(24*time.Hour)))}, nil
}

// revokedSummary says what revoking a user's access ended, one sentence per count so that each
// takes its language's plural form (account.Summary is the CLI's English).
func revokedSummary(l *locale, rv store.Revoked, tokens bool) string {
	out := l.text(N("%d sessions ended."), rv.Sessions)
	if tokens {
		out += " " + l.text(N("%d API tokens revoked."), rv.Tokens)
	}
	return out
}

// actor is who makes a change over HTTP, for the account operations' audit rows.
func (s *Service) actor(r *http.Request, id Identity) account.Actor {
	return account.Actor{Name: id.User.Name, UserID: id.User.ID, IP: s.clientAddr(r)}
}

// accountError maps the account operations' refusals to client-safe answers; anything else is
// a technical failure (500, cause logged).
func accountError(err error) error {
	var ie *account.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return &apiError{status: http.StatusBadRequest, field: ie.Field, msg: ie.Format, args: ie.Args, cause: err}
	case errors.Is(err, account.ErrUserExists):
		return fail(http.StatusConflict, N("a user with this name exists"), err)
	case errors.Is(err, account.ErrDisabled):
		return fail(http.StatusBadRequest, N("enable the user first"), err)
	case errors.Is(err, account.ErrSelf):
		return fail(http.StatusBadRequest, N("you cannot do this to your own account here; use your account page"), err)
	case errors.Is(err, store.ErrLastPasskey):
		return fail(http.StatusConflict, N("This is your only passkey and you have no unused recovery codes, so removing it would lock you out. Add another passkey or make new recovery codes first."), err)
	case errors.Is(err, store.ErrNotFound):
		return fail(http.StatusNotFound, N("not found"), err)
	}
	return err
}

func (s *Service) adminAddUser(w http.ResponseWriter, r *http.Request) error {
	admin, err := s.admin(r)
	if err != nil {
		return err
	}
	var body struct {
		Name        string   `json:"name"`
		DisplayName string   `json:"display_name"`
		Email       string   `json:"email"`
		Groups      []string `json:"groups"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	u, link, err := s.accounts.AddUser(r.Context(), s.actor(r, admin), account.NewUser{Name: body.Name,
		DisplayName: body.DisplayName, Email: body.Email, Groups: body.Groups})
	if err != nil {
		return accountError(err)
	}
	ans, err := enrolmentAnswer(s.lang(r), u.ID, link)
	if err != nil {
		return err
	}
	s.Refresh(r.Context())
	writeJSON(w, http.StatusCreated, ans)
	return nil
}

// adminTarget checks that the request comes from an admin with a fresh verification and finds
// the user named by the {id} path value.
func (s *Service) adminTarget(r *http.Request) (Identity, store.User, error) {
	admin, err := s.admin(r)
	if err != nil {
		return admin, store.User{}, err
	}
	u, err := s.store.UserByID(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return admin, u, fail(http.StatusNotFound, N("no such user"), err)
	}
	return admin, u, err
}

func (s *Service) adminInvite(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r)
	if err != nil {
		return err
	}
	link, err := s.accounts.Invite(r.Context(), s.actor(r, admin), u)
	if err != nil {
		return accountError(err)
	}
	ans, err := enrolmentAnswer(s.lang(r), u.ID, link)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Service) adminSetDisabled(disabled bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		admin, u, err := s.adminTarget(r)
		if err != nil {
			return err
		}
		out := map[string]any{"disabled": disabled}
		if disabled {
			rv, err := s.accounts.Disable(r.Context(), s.actor(r, admin), u)
			if err != nil {
				return accountError(err)
			}
			out["sessions"], out["tokens"], out["links"] = rv.Sessions, rv.Tokens, rv.Links
			l := s.lang(r)
			out["message"] = l.text(N("Disabled %s."), u.Name) + " " + revokedSummary(l, rv, true)
		} else if err := s.accounts.Enable(r.Context(), s.actor(r, admin), u); err != nil {
			return accountError(err)
		}
		s.Refresh(r.Context())
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (s *Service) adminRemoveUser(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r)
	if err != nil {
		return err
	}
	if err := s.accounts.Remove(r.Context(), s.actor(r, admin), u); err != nil {
		return accountError(err)
	}
	s.Refresh(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"redirect": "/.latchkey/admin"})
	return nil
}

func (s *Service) adminRemovePasskey(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r)
	if err != nil {
		return err
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	credID, err := decodeCredentialID(body.ID)
	if err != nil {
		return err
	}
	if err := s.accounts.RemovePasskey(r.Context(), s.actor(r, admin), u, credID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(http.StatusNotFound, N("no such passkey"), err)
		}
		return accountError(err)
	}
	s.Refresh(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"status": "removed"})
	return nil
}

func (s *Service) adminRevokeSessions(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r)
	if err != nil {
		return err
	}
	var body struct {
		ID     string `json:"id"`
		All    bool   `json:"all"`
		Tokens bool   `json:"tokens"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	out := map[string]any{"status": "revoked"}
	switch {
	case body.All:
		rv, err := s.accounts.RevokeSessions(r.Context(), s.actor(r, admin), u, body.Tokens)
		if err != nil {
			return accountError(err)
		}
		out["sessions"], out["tokens"], out["message"] = rv.Sessions, rv.Tokens, revokedSummary(s.lang(r), rv, body.Tokens)
	case body.ID != "":
		if err := s.accounts.RevokeSession(r.Context(), s.actor(r, admin), u, body.ID, u.ID == admin.User.ID && body.ID == admin.SessionID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fail(http.StatusNotFound, N("no such session"), err)
			}
			return accountError(err)
		}
	default:
		return fail(http.StatusBadRequest, N("name a session, or all"), nil)
	}
	s.Refresh(r.Context())
	writeJSON(w, http.StatusOK, out)
	return nil
}

// IsAdmin reports whether an identity belongs to a full session of a member of the admin group
// (no step-up required: callers use it for read-only diagnostics such as /.latchkey/debug/request).
func (s *Service) IsAdmin(id Identity) bool {
	return id.User != nil && id.SessionID != "" && !id.Restricted() && inGroup(id.User.Groups, s.opts.AdminGroup)
}
