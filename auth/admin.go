package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/latchkeyhq/latchkey/store"
)

// Admin console (issue 12): users (add with a one-time enrolment link and its QR code, disable,
// enable, remove, re-invite), each user's passkeys and sessions, and the audit log. Only members
// of Options.AdminGroup get in, and only with a passkey verification younger than AdminStepUp:
// an admin's stolen cookie alone cannot add users. Pages are server-rendered; actions are
// same-origin JSON posts made by admin.js, behind the same CSRF guard as every other API.

// AdminStepUp is how recent an admin's last passkey verification must be.
const AdminStepUp = 5 * time.Minute

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

var errStepUp = errors.New("admin verification too old")

// admin checks that the request comes from an admin with a fresh passkey verification. Errors are
// client-safe: 401 (no session, or step-up needed: errStepUp is the cause) or 403 (not an admin).
func (s *Service) admin(r *http.Request) (Identity, error) {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		return id, fail(http.StatusUnauthorized, "sign in first", nil)
	}
	if id.Restricted() || !inGroup(id.User.Groups, s.opts.AdminGroup) {
		return id, fail(http.StatusForbidden, "This area is for administrators.", fmt.Errorf("user %s is not in group %q", id.User.Name, s.opts.AdminGroup))
	}
	if id.VerifiedAt.IsZero() || s.now().Sub(id.VerifiedAt) > AdminStepUp {
		return id, fail(http.StatusUnauthorized, "confirm it's you with your passkey first", errStepUp)
	}
	return id, nil
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
		q := url.Values{"rd": {baseURL(s.opts.PublicURL) + r.URL.RequestURI()}}
		if errors.Is(err, errStepUp) {
			q.Set("stepup", "1")
		}
		http.Redirect(w, r, baseURL(s.opts.PublicURL)+"/.latchkey/login?"+q.Encode(), http.StatusFound)
		return id, false, nil
	}
	return id, false, err
}

// adminUser is a row of the users page.
type adminUser struct {
	store.User
	Passkeys int
	Admin    bool
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
		rows = append(rows, adminUser{User: u, Passkeys: len(creds), Admin: inGroup(u.Groups, s.opts.AdminGroup)})
	}
	s.render(w, http.StatusOK, "admin", pageData{Title: "Admin · Users", User: id.User, Data: struct {
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
		return fail(http.StatusNotFound, "No such user.", err)
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
	for _, c := range creds {
		keys = append(keys, passkeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name,
			Created: c.CreatedAt, LastUsed: c.LastUsedAt, Synced: c.BackupEligible, Authenticator: AuthenticatorName(c.AAGUID)})
	}
	s.render(w, http.StatusOK, "admin-user", pageData{Title: "Admin · " + u.Name, User: id.User, Data: struct {
		Target   store.User
		Self     bool
		Passkeys []passkeyView
		Sessions []store.Session
	}{u, u.ID == id.User.ID, keys, sessions}})
	return nil
}

// auditRow is an audit event with the user's name resolved.
type auditRow struct {
	store.Event
	UserName string
}

func (s *Service) adminAuditPage(w http.ResponseWriter, r *http.Request) error {
	id, ok, err := s.adminPage(w, r)
	if !ok {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	userName, event := strings.TrimSpace(q.Get("user")), strings.TrimSpace(q.Get("event"))
	page, _ := strconv.Atoi(q.Get("page"))
	if page < 1 || page > 100000 {
		page = 1
	}
	users, err := s.store.Users(ctx)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(users))
	filter := store.AuditFilter{Event: event, Limit: auditPageSize + 1, Offset: (page - 1) * auditPageSize}
	for _, u := range users {
		names[u.ID] = u.Name
		if u.Name == userName {
			filter.UserID = u.ID
		}
	}
	var events []store.Event
	if userName == "" || filter.UserID != "" {
		if events, err = s.store.AuditEvents(ctx, filter); err != nil {
			return err
		}
	}
	more := len(events) > auditPageSize
	if more {
		events = events[:auditPageSize]
	}
	rows := make([]auditRow, 0, len(events))
	for _, e := range events {
		rows = append(rows, auditRow{Event: e, UserName: names[e.UserID]})
	}
	link := func(p int) string {
		v := url.Values{}
		if userName != "" {
			v.Set("user", userName)
		}
		if event != "" {
			v.Set("event", event)
		}
		v.Set("page", strconv.Itoa(p))
		return "/.latchkey/admin/audit?" + v.Encode()
	}
	d := struct {
		Events           []auditRow
		User, Event      string
		Page             int
		PrevURL, NextURL string
	}{Events: rows, User: userName, Event: event, Page: page}
	if page > 1 {
		d.PrevURL = link(page - 1)
	}
	if more {
		d.NextURL = link(page + 1)
	}
	s.render(w, http.StatusOK, "admin-audit", pageData{Title: "Admin · Audit log", User: id.User, Data: d})
	return nil
}

// enrolmentAnswer is the one-time link and its QR code (a PNG data: URL, which the CSP allows as
// an image), shown once to the admin.
func (s *Service) enrolmentAnswer(r *http.Request, userID string) (map[string]string, error) {
	link, err := NewEnrolmentLink(r.Context(), s.store, s.opts.PublicURL, userID, s.now())
	if err != nil {
		return nil, err
	}
	png, err := qrcode.Encode(link, qrcode.Medium, 256)
	if err != nil {
		return nil, fmt.Errorf("auth: enrolment QR code: %w", err)
	}
	return map[string]string{"id": userID, "link": link, "qr": "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		"expires_in": fmt.Sprintf("%d days", int(EnrolTTL/(24*time.Hour)))}, nil
}

// validUserName accepts what the CLI accepts: letters, digits and . _ @ -, 1 to 64 characters.
func validUserName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)) {
			return false
		}
	}
	return true
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
	if !validUserName(body.Name) {
		return fail(http.StatusBadRequest, "user name: 1 to 64 letters, digits and . _ @ -", nil)
	}
	if len(body.DisplayName) > 200 || len(body.Email) > 254 || strings.ContainsAny(body.DisplayName+body.Email, "\r\n") ||
		(body.Email != "" && !strings.Contains(body.Email, "@")) {
		return fail(http.StatusBadRequest, "display name or e-mail not acceptable", nil)
	}
	var groups []string
	for _, g := range body.Groups {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if len(g) > 64 || strings.ContainsAny(g, ", \t\r\n") {
			return fail(http.StatusBadRequest, fmt.Sprintf("group %q: no spaces or commas, at most 64 characters", g), nil)
		}
		if !contains(groups, g) {
			groups = append(groups, g)
		}
	}
	u := store.User{ID: uuid.NewString(), Name: body.Name, DisplayName: strings.TrimSpace(body.DisplayName),
		Email: strings.TrimSpace(body.Email), Groups: groups}
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fail(http.StatusConflict, "a user with this name exists", err)
		}
		return err
	}
	ans, err := s.enrolmentAnswer(r, u.ID)
	if err != nil {
		return err
	}
	s.Refresh(r.Context())
	s.audit(r.Context(), r, u.ID, "admin_user_added", fmt.Sprintf("user %s (groups %s) by %s", u.Name, strings.Join(groups, ","), admin.User.Name))
	writeJSON(w, http.StatusCreated, ans)
	return nil
}

// target loads the user named by the path, refusing an admin's actions on their own account
// where they could lock themselves out.
// adminTarget checks that the request comes from an admin with a fresh verification and finds
// the user named by the {id} path value; notSelf refuses actions on the admin's own account.
func (s *Service) adminTarget(r *http.Request, notSelf bool) (Identity, store.User, error) {
	admin, err := s.admin(r)
	if err != nil {
		return admin, store.User{}, err
	}
	u, err := s.target(r, admin, notSelf)
	return admin, u, err
}

func (s *Service) target(r *http.Request, admin Identity, notSelf bool) (store.User, error) {
	u, err := s.store.UserByID(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return u, fail(http.StatusNotFound, "no such user", err)
	} else if err != nil {
		return u, err
	}
	if notSelf && u.ID == admin.User.ID {
		return u, fail(http.StatusBadRequest, "you cannot do this to your own account here; use your account page", nil)
	}
	return u, nil
}

func (s *Service) adminInvite(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r, false)
	if err != nil {
		return err
	}
	if u.Disabled {
		return fail(http.StatusBadRequest, "enable the user first", nil)
	}
	ans, err := s.enrolmentAnswer(r, u.ID)
	if err != nil {
		return err
	}
	s.audit(r.Context(), r, u.ID, "admin_user_invited", fmt.Sprintf("new enrolment link for %s by %s", u.Name, admin.User.Name))
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Service) adminSetDisabled(disabled bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		admin, u, err := s.adminTarget(r, true)
		if err != nil {
			return err
		}
		if err := s.store.SetUserDisabled(r.Context(), u.ID, disabled); err != nil {
			return err
		}
		s.Refresh(r.Context())
		event := "admin_user_enabled"
		if disabled {
			event = "admin_user_disabled"
		}
		s.audit(r.Context(), r, u.ID, event, fmt.Sprintf("user %s by %s", u.Name, admin.User.Name))
		writeJSON(w, http.StatusOK, map[string]bool{"disabled": disabled})
		return nil
	}
}

func (s *Service) adminRemoveUser(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r, true)
	if err != nil {
		return err
	}
	if err := s.store.DeleteUser(r.Context(), u.ID); err != nil {
		return err
	}
	s.Refresh(r.Context())
	s.audit(r.Context(), r, u.ID, "admin_user_removed", fmt.Sprintf("user %s by %s", u.Name, admin.User.Name))
	writeJSON(w, http.StatusOK, map[string]string{"redirect": "/.latchkey/admin"})
	return nil
}

func (s *Service) adminRemovePasskey(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r, false)
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
	if err := s.store.DeleteCredential(r.Context(), u.ID, credID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(http.StatusNotFound, "no such passkey", err)
		}
		return err
	}
	s.Refresh(r.Context())
	s.audit(r.Context(), r, u.ID, "admin_passkey_removed", fmt.Sprintf("credential %s of %s by %s", credRef(credID), u.Name, admin.User.Name))
	writeJSON(w, http.StatusOK, map[string]string{"status": "removed"})
	return nil
}

func (s *Service) adminRevokeSessions(w http.ResponseWriter, r *http.Request) error {
	admin, u, err := s.adminTarget(r, false)
	if err != nil {
		return err
	}
	var body struct {
		ID  string `json:"id"`
		All bool   `json:"all"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	detail := ""
	switch {
	case body.All:
		n, err := s.store.RevokeSessions(r.Context(), u.ID)
		if err != nil {
			return err
		}
		detail = fmt.Sprintf("%d sessions of %s by %s", n, u.Name, admin.User.Name)
	case body.ID != "":
		if err := s.store.RevokeSession(r.Context(), u.ID, body.ID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fail(http.StatusNotFound, "no such session", err)
			}
			return err
		}
		detail = fmt.Sprintf("one session of %s by %s", u.Name, admin.User.Name)
	default:
		return fail(http.StatusBadRequest, "name a session, or all", nil)
	}
	s.Refresh(r.Context())
	s.audit(r.Context(), r, u.ID, "admin_session_revoked", detail)
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
	return nil
}

// IsAdmin reports whether an identity belongs to a full session of a member of the admin group
// (no step-up required: callers use it for read-only diagnostics such as /.latchkey/debug/request).
func (s *Service) IsAdmin(id Identity) bool {
	return id.User != nil && id.SessionID != "" && !id.Restricted() && inGroup(id.User.Groups, s.opts.AdminGroup)
}
