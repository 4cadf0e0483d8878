package auth

import (
	"bytes"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

//go:embed templates/*.html static
var assets embed.FS

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").Funcs(template.FuncMap{
		"date": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"b64": func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) },
	}).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("auth: parse templates: %w", err)
	}
	return t, nil
}

// SecurityHeaders sets the headers every Latchkey page and API answer carries. The CSP allows no
// inline script at all: the page script is an embedded file served from /.latchkey/static/.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// pageData is what every template gets.
type pageData struct {
	Title   string
	Public  string // the portal's base URL
	User    *User
	Message string
	Data    any
}

// page adapts a page handler: security headers, and errors rendered as a short HTML page.
func (s *Service) page(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		if err := h(w, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = &apiError{status: http.StatusInternalServerError, msg: "Something went wrong on our side.", cause: err}
				s.log.Error("page failed", "path", r.URL.Path, "err", err)
			}
			s.ErrorPage(w, r, ae.status, ae.msg)
		}
	}
}

// ErrorPage renders a short, styled error page (also used by the proxy for 403, 404 and 502).
func (s *Service) ErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	SecurityHeaders(w.Header())
	s.render(w, status, "error", pageData{Title: http.StatusText(status), Message: msg})
}

func (s *Service) render(w http.ResponseWriter, status int, name string, d pageData) {
	d.Public = baseURL(s.opts.PublicURL)
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.Error("rendering page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := struct {
		RD     string
		StepUp bool
	}{StepUp: q.Get("stepup") == "1"}
	if rd := q.Get("rd"); rd != "" {
		// Only a validated target is ever put into the page (as an escaped attribute).
		d.RD = s.safeRedirect(rd)
	}
	var u *User
	if id, ok := s.Authenticate(r); ok && !id.Restricted() {
		u = id.User
	}
	s.render(w, http.StatusOK, "login", pageData{Title: "Sign in", User: u, Data: d})
	return nil
}

func (s *Service) enrolPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d := struct {
		Token    string
		Name     string
		Recovery bool
	}{}
	if token := r.URL.Query().Get("token"); token != "" {
		if err := s.limits.allow(w, "enroll-ip", s.clientAddr(r)); err != nil {
			return err
		}
		in, err := s.validInvite(ctx, token, store.PurposeEnrol)
		if err != nil {
			return fail(http.StatusForbidden, "This enrolment link is not valid: it may have been used already or have expired. Ask your administrator for a new one.", err)
		}
		u, err := s.store.UserByID(ctx, in.UserID)
		if err != nil || u.Disabled {
			return fail(http.StatusForbidden, "This enrolment link is not valid. Ask your administrator for a new one.", err)
		}
		d.Token, d.Name = token, u.Name
	} else if id, ok := s.Authenticate(r); ok && id.SessionID != "" {
		d.Name, d.Recovery = id.User.Name, id.Restricted()
	} else {
		return fail(http.StatusForbidden, "This page needs an enrolment link. Ask your administrator for one, or sign in to add a passkey.", nil)
	}
	s.render(w, http.StatusOK, "enroll", pageData{Title: "Create a passkey", Data: d})
	return nil
}

// passkeyView is one row of the account page's passkey list.
type passkeyView struct {
	ID            string
	Name          string
	Created       time.Time
	LastUsed      time.Time
	Synced        bool
	Authenticator string
}

func (s *Service) accountPage(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		http.Redirect(w, r, baseURL(s.opts.PublicURL)+"/.latchkey/login?rd="+url.QueryEscape(s.accountURL()), http.StatusFound)
		return nil
	}
	if id.Restricted() {
		http.Redirect(w, r, baseURL(s.opts.PublicURL)+"/.latchkey/enroll", http.StatusFound)
		return nil
	}
	ctx := r.Context()
	creds, err := s.store.Credentials(ctx, id.User.ID)
	if err != nil {
		return err
	}
	sessions, err := s.store.Sessions(ctx, id.User.ID)
	if err != nil {
		return err
	}
	codes, err := s.store.RecoveryCodes(ctx, id.User.ID)
	if err != nil {
		return err
	}
	unused := 0
	for _, c := range codes {
		if c.UsedAt.IsZero() {
			unused++
		}
	}
	var keys []passkeyView
	for _, c := range creds {
		keys = append(keys, passkeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name,
			Created: c.CreatedAt, LastUsed: c.LastUsedAt, Synced: c.BackupEligible, Authenticator: AuthenticatorName(c.AAGUID)})
	}
	d := struct {
		Passkeys      []passkeyView
		Sessions      []store.Session
		Current       string
		UnusedCodes   int
		Admin         bool
		RecoveryEmail bool
	}{Passkeys: keys, Sessions: sessions, Current: id.SessionID, UnusedCodes: unused,
		Admin: inGroup(id.User.Groups, s.opts.AdminGroup), RecoveryEmail: s.opts.Mailer != nil}
	s.render(w, http.StatusOK, "account", pageData{Title: "Your account", User: id.User, Data: d})
	return nil
}

func (s *Service) recoverPage(w http.ResponseWriter, r *http.Request) error {
	d := struct{ Email bool }{Email: s.opts.Mailer != nil}
	s.render(w, http.StatusOK, "recover", pageData{Title: "Recover access", Data: d})
	return nil
}

func inGroup(groups []string, g string) bool {
	for _, x := range groups {
		if x == g {
			return true
		}
	}
	return false
}

// AuthenticatorName names a passkey provider from its AAGUID, or says what kind of passkey it is.
func AuthenticatorName(aaguid []byte) string {
	if len(aaguid) != 16 {
		return ""
	}
	id := uuid.UUID(aaguid)
	if name, ok := knownAAGUIDs[id.String()]; ok {
		return name
	}
	return ""
}

func defaultPasskeyName(aaguid []byte, existing int) string {
	if name := AuthenticatorName(aaguid); name != "" {
		return name
	}
	return fmt.Sprintf("Passkey %d", existing+1)
}

// knownAAGUIDs names common passkey providers (from the community-maintained passkey AAGUID list).
var knownAAGUIDs = map[string]string{
	"ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
	"adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
	"08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
	"9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
	"6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
	"dd4ec289-e01d-41c9-bb89-70fa845d4bf2": "iCloud Keychain (Managed)",
	"fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
	"bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
	"d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
	"531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
	"b84e4048-15dc-4dd0-8640-f4f60813c8af": "NordPass",
	"0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6": "Keeper",
	"f3809540-7f14-49c1-a8b3-8f813b225541": "Enpass",
	"53414d53-554e-4700-0000-000000000000": "Samsung Pass",
	"fdb141b2-5d84-443e-8a35-4698c205a502": "KeePassXC",
	"cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
	"ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
	"fa2b99dc-9e39-4257-8f92-4a30d23c4118": "YubiKey 5 Series (NFC)",
	"2fc0579f-8113-47ea-b116-bb5a8db9202a": "YubiKey 5 Series (NFC)",
	"73bb0cd4-e502-49b8-9c6f-b59445bf720b": "YubiKey 5 FIPS Series",
	"a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa": "Security Key NFC by Yubico",
	"d8522d9f-575b-4866-88a9-ba99fa02f35b": "YubiKey Bio Series",
	"ee041bce-25e5-4cdb-8f86-897fd6418464": "Feitian ePass FIDO2",
}
