package auth

import (
	"bytes"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyhq/latchkey/store"
)

//go:embed templates/*.html static
var assets embed.FS

func parsePages() (*template.Template, error) {
	funcs := template.FuncMap{
		"b64": func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) },
		// in wraps markup in a span of a class, for a script to find (the time of last use).
		"in": func(class string, h template.HTML) template.HTML {
			return template.HTML(`<span class="`+template.HTMLEscapeString(class)+`">`) + h + "</span>"
		},
	}
	// Parsing needs the language's functions declared; only each language's copy of the
	// templates has them (newLocales), so these never run.
	for _, name := range localeFuncs {
		funcs[name] = func(...any) (string, error) { return "", errors.New("auth: a page rendered without a language") }
	}
	t, err := template.New("pages").Funcs(funcs).ParseFS(assets, "templates/*.html")
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
	Title string
	// TitleArgs fill the title's verbs: the title is a catalogue key ("Sign in to %s").
	TitleArgs []any
	Brand     brandView // the owner's name, logo, accent and support line (issue 21)
	// Lang is the page's language (issue 21), Langs the switcher's links, and Messages what the
	// page scripts may say, in that language.
	Lang     string
	Langs    []langLink
	Messages map[string]any
	Public   string // the portal's base URL
	// RPID and RPHome are set with several domains (issue 23): the page script explains a
	// browser's refusal of a related origin with them.
	RPID, RPHome string
	Domain       string // the label of the request's domain, with several domains
	User         *User
	// Recovery: the browser holds a restricted (recovery) session, which can only create a
	// passkey; pages link straight to doing that.
	Recovery bool
	// LocalPortal: public_url is a localhost address, which a phone cannot open (the admin
	// console says so next to an enrolment link's QR code).
	LocalPortal bool
	LocalPort   string // its port, for the SSH tunnel line
	Message     string
	MessageArgs []any // fill Message's verbs after translation
	Data        any
}

// page adapts a page handler: security headers, and errors rendered as a short HTML page.
func (s *Service) page(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		if err := h(w, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = &apiError{status: http.StatusInternalServerError, msg: N("Something went wrong on our side."), cause: err}
				s.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
			}
			title := ""
			var te *titledError
			if errors.As(err, &te) {
				title = te.title
			}
			msg := ae.msg
			if len(ae.args) > 0 || ae.field != "" {
				msg = ae.message(s.lang(r)) // render translates a plain key itself
			}
			s.ErrorPageTitled(w, r, ae.status, title, msg)
		}
	}
}

// titledError gives the error page of a page handler a title that says more than its status.
type titledError struct {
	title string
	err   error
}

func (e *titledError) Error() string { return e.err.Error() }
func (e *titledError) Unwrap() error { return e.err }

// withTitle makes err's error page carry title (the status and message stay err's).
func withTitle(title string, err error) error {
	if err == nil {
		return nil
	}
	return &titledError{title: title, err: err}
}

// ErrorTitle is the error page's title for a status, in plain words where the status text is
// jargon ("Bad Gateway" means nothing to the person in front of the page).
func ErrorTitle(status int) string {
	switch status {
	case http.StatusBadRequest:
		return N("Request not understood")
	case http.StatusUnauthorized:
		return N("Sign in first")
	case http.StatusForbidden:
		return N("Not allowed")
	case http.StatusNotFound:
		return N("Not found")
	case http.StatusMethodNotAllowed:
		return N("Method Not Allowed") // the status text, translated: the message says more
	case http.StatusRequestEntityTooLarge:
		return N("Request too large")
	case http.StatusTooManyRequests:
		return N("Too many attempts")
	case http.StatusInternalServerError:
		return N("Something went wrong")
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return N("Application not answering")
	case http.StatusServiceUnavailable:
		return N("Temporarily unavailable")
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// ErrorPage renders a short, styled error page (also used by the proxy for 403, 404 and 502),
// titled by ErrorTitle.
//
// msg is a catalogue key (mark a literal with N), shown in the reader's language.
func (s *Service) ErrorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.ErrorPageTitled(w, r, status, "", msg)
}

// ErrorPagef is ErrorPage with a message whose verbs args fill after translation:
// ErrorPagef(w, r, 403, N("Your account may not sign in to %s. Ask your administrator to add you to one of its groups."), app).
func (s *Service) ErrorPagef(w http.ResponseWriter, r *http.Request, status int, msg string, args ...any) {
	id, _ := s.Authenticate(r)
	s.errorPage(w, r, status, "", msg, args, id)
}

// ErrorPageTitled is ErrorPage with a title chosen by the caller; "" means ErrorTitle(status).
func (s *Service) ErrorPageTitled(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	id, _ := s.Authenticate(r)
	s.errorPage(w, r, status, title, msg, nil, id)
}

// ErrorPageAs is ErrorPagef for a request whose identity the caller already knows (the reverse
// proxy's error handler sees the outgoing request, which no longer carries the session cookie).
// r chooses the language (its Accept-Language and language cookie) and may be nil.
func (s *Service) ErrorPageAs(w http.ResponseWriter, r *http.Request, id Identity, status int, msg string, args ...any) {
	s.errorPage(w, r, status, "", msg, args, id)
}

func (s *Service) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string, args []any, id Identity) {
	SecurityHeaders(w.Header())
	if title == "" {
		title = ErrorTitle(status)
	}
	d := pageData{Title: title, Message: msg, MessageArgs: args}
	if id.User != nil && id.SessionID != "" {
		if id.Restricted() {
			d.Recovery = true // link straight to creating a passkey
		} else {
			d.User = id.User // offer the account page rather than a sign-in link
		}
	}
	s.render(w, r, status, "error", d)
}

func (s *Service) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	dom := s.domainOf(r)
	d.Public = dom.base()
	d.Brand = s.brand.view()
	l, chosen := s.locales.pick(r)
	if chosen {
		rememberLanguage(w, l, dom)
	}
	d.Langs = s.locales.switcher(r, l, status < 400, func(rd string) string { return s.safeRedirect(r, rd) })
	d.Lang, d.Messages = l.code, l.script
	d.Title, d.Message = l.text(d.Title, d.TitleArgs...), l.text(d.Message, d.MessageArgs...)
	if len(s.domains) > 1 {
		d.RPID, d.RPHome, d.Domain = s.opts.RPID, s.rpHome(), dom.label()
	}
	if pu := dom.PublicURL; localHost(pu.Hostname()) {
		d.LocalPortal, d.LocalPort = true, pu.Port()
		if d.LocalPort == "" {
			d.LocalPort = map[bool]string{true: "443", false: "80"}[pu.Scheme == "https"]
		}
	}
	var buf bytes.Buffer
	if err := l.pages.ExecuteTemplate(&buf, name, d); err != nil {
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
		App    string // the host of the application that sent the person here, if not the portal
		StepUp bool
	}{StepUp: q.Get("stepup") == "1"}
	if rd := q.Get("rd"); rd != "" {
		// Only a validated target is ever put into the page (as an escaped attribute), and only
		// its host is named: the person sees which application is asking.
		d.RD = s.safeRedirect(r, rd)
		if u, err := url.Parse(d.RD); err == nil && d.RD != s.accountURL(r) && !strings.EqualFold(u.Host, s.domainOf(r).PublicURL.Host) {
			d.App = u.Host
		}
	}
	var u *User
	recovery := false
	if id, ok := s.Authenticate(r); ok && !id.Restricted() {
		u = id.User
	} else if ok && id.SessionID != "" {
		recovery = true
	}
	title, args := N("Sign in"), []any(nil)
	if d.App != "" && !d.StepUp {
		title, args = N("Sign in to %s"), []any{d.App}
	}
	s.render(w, r, http.StatusOK, "login", pageData{Title: title, TitleArgs: args, User: u, Recovery: recovery, Data: d})
	return nil
}

// logoutPage asks before signing out: a link (a prefetch, an image, a crawler) must never end a
// session; only the button's POST does.
func (s *Service) logoutPage(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		http.Redirect(w, r, s.domainOf(r).base()+"/.latchkey/login", http.StatusFound)
		return nil
	}
	d := struct{ RD string }{}
	if rd := r.URL.Query().Get("rd"); rd != "" {
		d.RD = s.safeRedirect(r, rd)
	}
	s.render(w, r, http.StatusOK, "logout", pageData{Title: N("Sign out"), User: id.User, Data: d})
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
			return withTitle(linkTitle, fail(http.StatusForbidden, N("This enrolment link is not valid: it may have been used already or have expired. Ask your administrator for a new one."), err))
		}
		u, err := s.store.UserByID(ctx, in.UserID)
		if err != nil || u.Disabled {
			return withTitle(linkTitle, fail(http.StatusForbidden, N("This enrolment link is not valid. Ask your administrator for a new one."), err))
		}
		d.Token, d.Name = token, u.Name
	} else if id, ok := s.Authenticate(r); ok && id.SessionID != "" {
		d.Name, d.Recovery = id.User.Name, id.Restricted()
	} else {
		return withTitle(N("Enrolment link needed"), fail(http.StatusForbidden, N("This page needs an enrolment link. Ask your administrator for one, or sign in to add a passkey."), nil))
	}
	s.render(w, r, http.StatusOK, "enroll", pageData{Title: N("Create a passkey"), Data: d})
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
	Current       bool // the passkey this browser's session was made or last verified with
	// Works and Related name the domains the passkey works on (issue 23): directly (inside the
	// RP ID), and through Related Origin Requests (browsers that support them).
	Works, Related []string
}

func (s *Service) accountPage(w http.ResponseWriter, r *http.Request) error {
	id, ok := s.Authenticate(r)
	if !ok || id.SessionID == "" {
		http.Redirect(w, r, s.domainOf(r).base()+"/.latchkey/login?rd="+url.QueryEscape(s.accountURL(r)), http.StatusFound)
		return nil
	}
	if id.Restricted() {
		http.Redirect(w, r, s.domainOf(r).base()+"/.latchkey/enroll", http.StatusFound)
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
	var current []byte
	for _, se := range sessions {
		if se.ID == id.SessionID {
			current = se.CredentialID
		}
	}
	var keys, lost []passkeyView
	works, related := s.passkeyDomains()
	for _, c := range creds {
		v := passkeyView{ID: base64.RawURLEncoding.EncodeToString(c.ID), Name: c.Name,
			Created: c.CreatedAt, LastUsed: c.LastUsedAt, Synced: c.BackupEligible, Authenticator: AuthenticatorName(c.AAGUID),
			Current: len(current) > 0 && bytes.Equal(c.ID, current), Works: works, Related: related}
		keys = append(keys, v)
		if !v.Current {
			lost = append(lost, v)
		}
	}
	var others []continueLink
	for _, o := range s.otherDomains(r) {
		others = append(others, continueLink{Domain: o.label(), Portal: o.base(), ID: "continue-" + strings.ReplaceAll(o.label(), ".", "-")})
	}
	d := struct {
		Passkeys      []passkeyView
		Sessions      []store.Session
		Current       string
		UnusedCodes   int
		Admin         bool
		RecoveryEmail bool
		// After a recovery (the account page reached from a passkey made in a recovery
		// session): the passkeys other than the new one, which may be the lost ones, and
		// whether other sessions exist, each offered for removal in one click.
		Recovered     bool
		Lost          []passkeyView
		OtherSessions bool
		Others        []continueLink
		Domains       map[string]string // session domain key → label
	}{Passkeys: keys, Sessions: sessions, Current: id.SessionID, UnusedCodes: unused, Others: others, Domains: s.domainLabels(),
		Admin: inGroup(id.User.Groups, s.opts.AdminGroup), RecoveryEmail: s.opts.Mailer != nil,
		Recovered: r.URL.Query().Get("recovered") == "1", Lost: lost, OtherSessions: len(sessions) > 1}
	s.render(w, r, http.StatusOK, "account", pageData{Title: "Your account", User: id.User, Data: d})
	return nil
}

func (s *Service) recoverPage(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Has("token") {
		return s.magicLinkPage(w, r) // recovery.go
	}
	d := struct{ Email bool }{Email: s.opts.Mailer != nil}
	s.render(w, r, http.StatusOK, "recover", pageData{Title: N("Recover access"), Data: d})
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

// defaultPasskeyName names a new passkey after its provider (from the AAGUID) and the device it
// was made on (from the User-Agent): "iCloud Keychain (Safari on iPhone)", "Chrome on Linux" when
// the provider is unknown. A name the user already has gets a number, so that two passkeys made
// the same way stay apart in the list. The person can change it on the page right away.
//
// The name is written in the language of the enrolment page (tr is its locale's text; nil is
// English): it is the person's own label, which they read in their language from then on.
func defaultPasskeyName(aaguid []byte, userAgent string, existing []store.Credential, tr func(string, ...any) string) string {
	if tr == nil {
		tr = fmt.Sprintf
	}
	device := describeDevice(userAgent, tr)
	unknown := device == tr(N("Unknown device")) || device == tr(N("Unknown browser"))
	name := AuthenticatorName(aaguid)
	switch {
	case name != "" && !unknown:
		name += " (" + device + ")"
	case name == "" && !unknown:
		name = device
	case name == "":
		name = tr(N("Passkey"))
	}
	if r := []rune(name); len(r) > maxPasskeyName-4 {
		name = string(r[:maxPasskeyName-5]) + "…"
	}
	taken := make(map[string]bool, len(existing))
	for _, c := range existing {
		taken[c.Name] = true
	}
	if !taken[name] {
		return name
	}
	for n := 2; ; n++ {
		if c := fmt.Sprintf("%s %d", name, n); !taken[c] {
			return c
		}
	}
}

// localHost reports whether a host name only ever means the machine it is used on.
func localHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
