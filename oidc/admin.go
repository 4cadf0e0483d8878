package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/store"
)

// The admin console's Apps page: the same as `latchkey oidc client add|list|remove|rotate-secret`,
// for members of the admin group with a passkey verification younger than auth.AdminStepUp (as
// the rest of the console). Plain HTML forms, bound to the admin's session by a token.

// Admins is the slice of auth.Service the admin page needs.
type Admins interface {
	IsAdmin(id auth.Identity) bool
}

type createdClient struct {
	Name, ID, Secret string
}

type clientsView struct {
	Issuer  string
	CSRF    string
	Clients []clientRow
	Created *createdClient
	// Error is a catalogue key with at most one verb, which ErrorArgs' one element fills: the page
	// translates it into the reader's language.
	Error     string
	ErrorArgs []any
}

// clientRow is one app of the list, with its groups joined for one translated line.
type clientRow struct {
	store.OIDCClient
	GroupList string
}

// adminIdentity admits an admin with a fresh passkey check, or answers (login, step-up, 403).
func (p *Provider) adminIdentity(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	id, ok := p.auth.Authenticate(r)
	self := p.issuer + "/admin"
	if !ok || id.SessionID == "" || id.Restricted() {
		http.Redirect(w, r, p.public+"/.latchkey/login?"+url.Values{"rd": {self}}.Encode(), http.StatusSeeOther)
		return id, false
	}
	admins, _ := p.auth.(Admins)
	if admins == nil || !admins.IsAdmin(id) {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This area is for administrators."))
		return id, false
	}
	if id.VerifiedAt.IsZero() || p.now().Sub(id.VerifiedAt) > auth.AdminStepUp {
		http.Redirect(w, r, p.public+"/.latchkey/login?"+url.Values{"stepup": {"1"}, "rd": {self}}.Encode(), http.StatusSeeOther)
		return id, false
	}
	return id, true
}

func (p *Provider) adminCSRF(sessionID string) string {
	m := hmac.New(sha256.New, p.consentKey)
	m.Write([]byte("admin " + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Provider) adminPage(w http.ResponseWriter, r *http.Request) {
	auth.SecurityHeaders(w.Header())
	id, ok := p.adminIdentity(w, r)
	if !ok {
		return
	}
	p.renderClients(w, r, id, http.StatusOK, clientsView{})
}

func (p *Provider) renderClients(w http.ResponseWriter, r *http.Request, id auth.Identity, status int, v clientsView) {
	clients, err := p.st.OIDCClients(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v.Issuer, v.CSRF = p.issuer, p.adminCSRF(id.SessionID)
	for _, c := range clients {
		v.Clients = append(v.Clients, clientRow{OIDCClient: c, GroupList: strings.Join(c.Groups, ", ")})
	}
	p.auth.Page(w, r, status, "oidc_clients", auth.N("Admin · Apps"), v)
}

// adminAction checks an admin form post: same origin, a fresh admin, the session's token.
func (p *Provider) adminAction(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	auth.SecurityHeaders(w.Header())
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This form can only be sent from Latchkey's own page."))
		return auth.Identity{}, false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != p.public {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This form can only be sent from Latchkey's own page."))
		return auth.Identity{}, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.auth.ErrorPage(w, r, http.StatusBadRequest, auth.N("The form could not be read."))
		return auth.Identity{}, false
	}
	id, ok := p.adminIdentity(w, r)
	if !ok {
		return id, false
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(p.adminCSRF(id.SessionID))) {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This form has expired. Reload the page and try again."))
		return id, false
	}
	return id, true
}

func (p *Provider) adminAdd(w http.ResponseWriter, r *http.Request) {
	id, ok := p.adminAction(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	var redirects, groups []string
	for _, l := range strings.Split(f.Get("redirect_uris"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			redirects = append(redirects, l)
		}
	}
	for _, g := range strings.Split(f.Get("groups"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	name := strings.TrimSpace(f.Get("name"))
	cid, secret, err := AddClient(r.Context(), p.st, NewClient{Name: name, RedirectURIs: redirects,
		Public: f.Get("public") == "1", Trusted: f.Get("trusted") == "1", Groups: groups,
		BackchannelLogoutURI: strings.TrimSpace(f.Get("backchannel_logout_uri"))}, p.now())
	if err != nil {
		var ce *ClientError
		switch {
		case errors.Is(err, store.ErrConflict):
			p.renderClients(w, r, id, http.StatusBadRequest, clientsView{Error: auth.N("An app named %s exists already."), ErrorArgs: []any{name}})
		case errors.As(err, &ce):
			v := clientsView{Error: ce.Key}
			if strings.Contains(ce.Key, "%") {
				v.ErrorArgs = []any{ce.Arg}
			}
			p.renderClients(w, r, id, http.StatusBadRequest, v)
		default:
			p.opts.Logger.ErrorContext(r.Context(), "adding an OpenID client failed", "client", name, "err", err)
			p.renderClients(w, r, id, http.StatusInternalServerError, clientsView{Error: auth.N("Something went wrong on our side. Try again in a moment.")})
		}
		return
	}
	p.audit(r.Context(), id.User.ID, "oidc_client_added", "client "+name+" by "+id.User.Name)
	p.renderClients(w, r, id, http.StatusOK, clientsView{Created: &createdClient{Name: name, ID: cid, Secret: secret}})
}

func (p *Provider) adminRemove(w http.ResponseWriter, r *http.Request) {
	id, ok := p.adminAction(w, r)
	if !ok {
		return
	}
	name := r.PostForm.Get("name")
	if err := p.st.DeleteOIDCClient(r.Context(), name); err != nil {
		p.renderClients(w, r, id, http.StatusBadRequest, clientsView{Error: auth.N("No app named %s."), ErrorArgs: []any{name}})
		return
	}
	p.audit(r.Context(), id.User.ID, "oidc_client_removed", "client "+name+" by "+id.User.Name+": its tokens are revoked")
	p.renderClients(w, r, id, http.StatusOK, clientsView{})
}

func (p *Provider) adminRotate(w http.ResponseWriter, r *http.Request) {
	id, ok := p.adminAction(w, r)
	if !ok {
		return
	}
	name := r.PostForm.Get("name")
	c, err := p.st.OIDCClientByName(r.Context(), name)
	if err != nil {
		p.renderClients(w, r, id, http.StatusBadRequest, clientsView{Error: auth.N("No app named %s."), ErrorArgs: []any{name}})
		return
	}
	secret, err := RotateSecret(r.Context(), p.st, name)
	if err != nil {
		p.renderClients(w, r, id, http.StatusBadRequest, clientsView{Error: auth.N("A public app has no secret.")})
		return
	}
	p.audit(r.Context(), id.User.ID, "oidc_client_secret_rotated", "client "+name+" by "+id.User.Name)
	p.renderClients(w, r, id, http.StatusOK, clientsView{Created: &createdClient{Name: name, ID: c.ID, Secret: secret}})
}
