package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/store"
)

// AMR values (RFC 8176) in ID tokens. Every Latchkey sign-in is a passkey assertion with user
// verification required: "hwk" (a device-bound passkey: proof of possession of a
// hardware-secured key) or "swk" (a synced passkey, whose key lives in a password manager), plus
// "user" (user presence and verification) and "mfa" (the device and its PIN or biometric).
var (
	amrDeviceBound = []string{"hwk", "user", "mfa"}
	amrSynced      = []string{"swk", "user", "mfa"}
)

// login is where op sends the browser after validating an authorization request. It reuses the
// browser's Latchkey session (single sign-on with forward auth), sends it through the passkey
// step-up when max_age or prompt=login ask for a fresh verification, checks --groups, asks for
// consent once per client unless the client is trusted, and then issues the code.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	auth.SecurityHeaders(w.Header())
	ctx := r.Context()
	a, c, ok := p.pending(w, r, r.URL.Query().Get("id"))
	if !ok {
		return
	}
	promptNone := slices.Contains(a.Prompt, oidc.PromptNone)
	id, signedIn := p.auth.Authenticate(r)
	signedIn = signedIn && id.SessionID != "" && !id.Restricted()
	self := p.issuer + "/login?" + url.Values{"id": {a.ID}}.Encode()
	if !signedIn {
		if promptNone {
			p.redirectError(w, r, a, oidc.ErrLoginRequired())
			return
		}
		http.Redirect(w, r, p.public+"/.latchkey/login?"+url.Values{"rd": {self}}.Encode(), http.StatusFound)
		return
	}
	if !c.allows(id.User.Groups) {
		p.audit(ctx, id.User.ID, "oidc_denied", "client "+c.c.Name+": user not in its groups")
		p.auth.ErrorPagef(w, r, http.StatusForbidden, auth.N("Your account may not sign in to %s. Ask your administrator to add you to one of its groups."), c.c.Name)
		return
	}
	if !p.fresh(a, id) {
		if promptNone {
			p.redirectError(w, r, a, oidc.ErrLoginRequired().WithDescription("a fresh passkey check is required"))
			return
		}
		http.Redirect(w, r, p.public+"/.latchkey/login?"+url.Values{"stepup": {"1"}, "rd": {self}}.Encode(), http.StatusFound)
		return
	}
	if !c.c.Trusted {
		granted, err := p.st.OIDCConsent(ctx, id.User.ID, c.c.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			p.fail(w, r, err)
			return
		}
		if !covers(granted, a.Scopes) || slices.Contains(a.Prompt, oidc.PromptConsent) {
			if promptNone {
				p.redirectError(w, r, a, &oidc.Error{ErrorType: "consent_required"})
				return
			}
			p.consentPage(w, r, a, c, id)
			return
		}
	}
	p.complete(w, r, a, id, http.StatusFound)
}

// pending loads a request that is still waiting for the user, or answers with an error page.
func (p *Provider) pending(w http.ResponseWriter, r *http.Request, reqID string) (*authRequest, *client, bool) {
	sa, err := p.st.OIDCAuthRequestByID(r.Context(), reqID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.fail(w, r, err)
			return nil, nil, false
		}
		p.auth.ErrorPage(w, r, http.StatusBadRequest, auth.N("This sign-in request has expired or was already used. Go back to the app and sign in again."))
		return nil, nil, false
	}
	a, err := fromStored(sa)
	if err != nil {
		p.fail(w, r, err)
		return nil, nil, false
	}
	st := &storage{p: p}
	c, err := st.client(r.Context(), a.ClientID)
	if err != nil {
		p.fail(w, r, err)
		return nil, nil, false
	}
	return a, c, true
}

func (p *Provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.opts.Logger.ErrorContext(r.Context(), "oidc login step failed", "err", err)
	p.auth.ErrorPage(w, r, http.StatusInternalServerError, auth.N("Something went wrong on our side. Try again in a moment."))
}

// fresh reports whether the session's last passkey verification satisfies the request: max_age
// (prompt=login is max_age=0) is met by a verification younger than max_age, or by one made after
// the request arrived (so that the step-up it triggers always ends the loop).
func (p *Provider) fresh(a *authRequest, id auth.Identity) bool {
	if a.MaxAge == nil {
		return true
	}
	if id.VerifiedAt.After(a.CreatedAt) {
		return true
	}
	return *a.MaxAge > 0 && p.now().Sub(id.VerifiedAt) <= time.Duration(*a.MaxAge)*time.Second
}

func covers(granted, asked []string) bool {
	for _, s := range asked {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}

// complete records the approval and sends the browser to the client with the code, state and iss.
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, a *authRequest, id auth.Identity, status int) {
	ctx := r.Context()
	a.AMR = amrSynced
	if !id.BackupEligible {
		a.AMR = amrDeviceBound
	}
	a.AuthTime = id.VerifiedAt
	body, err := json.Marshal(a)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if err := p.st.ApproveOIDCAuthRequest(ctx, a.ID, id.User.ID, id.SessionID, id.VerifiedAt, body); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			p.auth.ErrorPage(w, r, http.StatusBadRequest, auth.N("This sign-in request has expired or was already used. Go back to the app and sign in again."))
			return
		}
		p.fail(w, r, err)
		return
	}
	a.UserID, a.SessionID = id.User.ID, id.SessionID
	if err := p.st.RecordOIDCSession(ctx, id.SessionID, a.ClientID, id.User.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	callback, err := op.BuildAuthResponseCallbackURL(op.ContextWithIssuer(ctx, p.issuer), a, p.op)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.audit(ctx, id.User.ID, "oidc_authorized", "client "+a.ClientID+" scopes "+strings.Join(a.Scopes, " "))
	http.Redirect(w, r, withParams(callback, url.Values{"iss": {p.issuer}}), status)
}

// redirectError sends an error response to the (validated) redirect URI, with state and iss.
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, a *authRequest, e *oidc.Error) {
	params := url.Values{"error": {string(e.ErrorType)}, "iss": {p.issuer}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	if a.State != "" {
		params.Set("state", a.State)
	}
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, withParams(a.RedirectURI, params), status)
}

// consentView is the consent page's data.
type consentView struct {
	Client string
	ID     string
	CSRF   string
	Scopes []string // plain-language lines, catalogue keys the page translates
}

var scopeText = map[string]string{
	oidc.ScopeOpenID:        auth.N("Know who you are (your account ID)"),
	oidc.ScopeProfile:       auth.N("See your user name and display name"),
	oidc.ScopeEmail:         auth.N("See your email address"),
	ScopeGroups:             auth.N("See the groups you belong to"),
	oidc.ScopeOfflineAccess: auth.N("Stay signed in when you are not using it"),
}

func (p *Provider) consentPage(w http.ResponseWriter, r *http.Request, a *authRequest, c *client, id auth.Identity) {
	v := consentView{Client: c.c.Name, ID: a.ID, CSRF: p.csrf(id.SessionID, a.ID)}
	for _, s := range a.Scopes {
		if t, ok := scopeText[s]; ok {
			v.Scopes = append(v.Scopes, t)
		}
	}
	// The answer to the consent form is a redirect to the app: form-action must allow its origin,
	// or the browser refuses to follow it.
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self' "+formTarget(a.RedirectURI)+"; frame-ancestors 'none'; base-uri 'none'")
	p.auth.Page(w, r, http.StatusOK, "oidc_consent", auth.N("Allow %s?"), v, c.c.Name)
}

// formTarget is the CSP source for a redirect URI: its origin, or its scheme for an app's
// custom scheme.
func formTarget(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Scheme + "://" + u.Host
}

// csrf binds the consent form to the session that saw it and to the request it answers.
func (p *Provider) csrf(sessionID, reqID string) string {
	m := hmac.New(sha256.New, p.consentKey)
	m.Write([]byte(sessionID + " " + reqID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// consent receives the consent form.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	auth.SecurityHeaders(w.Header())
	ctx := r.Context()
	// Under Referrer-Policy: no-referrer, browsers send "Origin: null" with a same-origin form
	// post; Sec-Fetch-Site still says where it came from, and the CSRF token decides.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This form can only be sent from Latchkey's own page."))
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && o != p.public {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This form can only be sent from Latchkey's own page."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		p.auth.ErrorPage(w, r, http.StatusBadRequest, auth.N("The form could not be read."))
		return
	}
	a, c, ok := p.pending(w, r, r.PostForm.Get("id"))
	if !ok {
		return
	}
	id, signedIn := p.auth.Authenticate(r)
	if !signedIn || id.SessionID == "" || id.Restricted() ||
		!hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(p.csrf(id.SessionID, a.ID))) {
		p.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("This form has expired. Go back to the app and sign in again."))
		return
	}
	if !c.allows(id.User.Groups) || !p.fresh(a, id) {
		// The session changed since the page was shown: start over from the login step.
		http.Redirect(w, r, p.issuer+"/login?"+url.Values{"id": {a.ID}}.Encode(), http.StatusSeeOther)
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		p.audit(ctx, id.User.ID, "oidc_consent_denied", "client "+c.c.Name)
		p.redirectError(w, r, a, oidc.ErrAccessDenied().WithDescription("the user declined"))
		return
	}
	granted, err := p.st.OIDCConsent(ctx, id.User.ID, c.c.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.fail(w, r, err)
		return
	}
	for _, s := range a.Scopes {
		if !slices.Contains(granted, s) {
			granted = append(granted, s)
		}
	}
	if err := p.st.PutOIDCConsent(ctx, id.User.ID, c.c.ID, granted); err != nil {
		p.fail(w, r, err)
		return
	}
	p.audit(ctx, id.User.ID, "oidc_consent", "client "+c.c.Name+" scopes "+strings.Join(a.Scopes, " "))
	p.complete(w, r, a, id, http.StatusSeeOther)
}
