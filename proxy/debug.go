package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/auth"
)

// debugHeaders are the request headers the debug report shows, in this order. Cookie and
// Authorization are reported as present or absent only: their values are secrets.
var debugHeaders = []string{"Host", "X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Uri",
	"X-Forwarded-For", "X-Original-Url", "X-Original-Method", "X-Real-Ip", "Forwarded", "Accept", "Cookie", "Authorization"}

// DebugReport is what /.latchkey/debug/request answers: how Latchkey reads a forward-auth
// request. Its JSON form is stable enough for scripts; the text form is for people.
type DebugReport struct {
	Note        string          `json:"note"`
	Peer        string          `json:"peer"`
	PeerTrusted bool            `json:"peer_trusted"`
	Style       string          `json:"style"` // forward (X-Forwarded-*), request (X-Original-URL) or none
	Headers     []DebugHeader   `json:"headers"`
	Target      *DebugTarget    `json:"target,omitempty"`
	TargetError string          `json:"target_error,omitempty"`
	Cookie      DebugCredential `json:"cookie"`
	Token       DebugCredential `json:"token"`
	Rule        *DebugRule      `json:"rule,omitempty"`
	Decision    string          `json:"decision"`
	Reason      string          `json:"reason"`
	// Answers are what /auth/forward (Traefik, Caddy) and /auth/request (Nginx) would answer.
	ForwardAnswer string   `json:"forward_answer"`
	RequestAnswer string   `json:"request_answer"`
	Hints         []string `json:"hints,omitempty"`
}

// DebugHeader is one request header as received, and whether Latchkey acts on it.
type DebugHeader struct {
	Name     string `json:"name"`
	Present  bool   `json:"present"`
	Value    string `json:"value,omitempty"` // never for Cookie or Authorization
	Count    int    `json:"count,omitempty"` // more than 1 makes forwarded headers unusable
	Honoured bool   `json:"honoured"`
	Note     string `json:"note,omitempty"`
}

// DebugTarget is the request the decision is about, as derived from the headers.
type DebugTarget struct {
	OriginalURL string `json:"original_url"`
	Method      string `json:"method"`
	Host        string `json:"host"`
	Path        string `json:"path"` // normalised, as the rules see it
	Client      string `json:"client"`
	Navigation  bool   `json:"navigation"`
}

// DebugCredential describes the session cookie or an API token without showing it.
type DebugCredential struct {
	Present bool   `json:"present"`
	Valid   bool   `json:"valid"`
	User    string `json:"user,omitempty"`
	Method  string `json:"method,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// DebugRule is the rule that matched.
type DebugRule struct {
	Index          int      `json:"index"` // -1: the default policy
	Policy         string   `json:"policy"`
	MaxAge         string   `json:"max_age,omitempty"`
	DeviceBound    bool     `json:"device_bound,omitempty"`
	Authenticators []string `json:"authenticators,omitempty"`
}

// debugRequest echoes how Latchkey sees a forward-auth request (issue 12): point the proxy's
// forward-auth address at /.latchkey/debug/request once and open the protected site signed in
// as an administrator. It answers only a signed-in admin session (a full session, not an API
// token or a recovery session), whatever the peer: through a portal proxy every client arrives
// from the proxy's trusted address, so a trusted peer alone would open the report, and its
// answers about cookies and rules, to anyone (issue 16). Through the forward-auth proxy the
// report needs the admin's session cookie in the forwarded request. It always answers 403,
// never 2xx: a proxy that is left pointed at it must not let anything through, and Traefik and
// Caddy show the body of a refusal to the browser. Nothing is logged and nothing is written.
func (h *Handler) debugRequest(w http.ResponseWriter, r *http.Request) {
	peer, ok := PeerAddr(r)
	trusted := ok && h.opts.Trusted.Contains(peer)
	// The admin check reads the session cookie only: an API token in the request is what the
	// report is about, and tokens never open the debugger.
	cookieOnly := r.Clone(r.Context())
	cookieOnly.Header.Del("Authorization")
	if id, signedIn := h.auth.Authenticate(cookieOnly); !signedIn || !h.auth.IsAdmin(id) {
		h.auth.ErrorPage(w, r, http.StatusForbidden, auth.N("The request debugger answers administrators only: open it signed in as a member of the admin group."))
		return
	}
	rep := h.debugReport(r, trusted)
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		hd.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	rep.writeText(w)
}

func (h *Handler) debugReport(r *http.Request, trusted bool) DebugReport {
	rep := DebugReport{
		Note:        "Latchkey request debugger: this answer is always 403, so a proxy pointed here never lets a request through. Point the proxy back at /.latchkey/auth/forward (Traefik, Caddy) or /.latchkey/auth/request (Nginx) when done.",
		Peer:        r.RemoteAddr,
		PeerTrusted: trusted,
		Style:       "none",
	}
	_, hasOriginal := r.Header["X-Original-Url"]
	_, hasForwardedHost := r.Header["X-Forwarded-Host"]
	switch {
	case hasOriginal:
		rep.Style = "request"
	case hasForwardedHost:
		rep.Style = "forward"
	}
	honoured := map[string]string{}
	if trusted {
		switch rep.Style {
		case "forward":
			for _, k := range []string{"X-Forwarded-Method", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri", "X-Forwarded-For"} {
				honoured[k] = ""
			}
			honoured["X-Forwarded-Port"] = "the port the proxy received the request on; replaces a port in X-Forwarded-Host"
		case "request":
			honoured["X-Original-Url"] = ""
			honoured["X-Original-Method"] = ""
			honoured["X-Forwarded-For"] = ""
			honoured["X-Forwarded-Host"] = "must agree with X-Original-URL's host"
		}
	}
	for _, name := range debugHeaders {
		vals := r.Header[name]
		dh := DebugHeader{Name: name, Present: len(vals) > 0, Count: len(vals)}
		if name == "Host" {
			dh.Present, dh.Count, dh.Value = r.Host != "", 1, r.Host
			dh.Note = "the sub-request's own Host; forward auth decides on the forwarded host instead"
		} else if len(vals) > 0 && name != "Cookie" && name != "Authorization" {
			dh.Value = strings.Join(vals, " | ")
		}
		note, ok := honoured[name]
		dh.Honoured = ok && dh.Present
		switch {
		case name == "Cookie":
			dh.Honoured = dh.Present
			dh.Note = "value not shown; only the " + h.opts.CookieName + " cookie is read"
		case name == "Authorization":
			dh.Honoured = dh.Present
			dh.Note = "value not shown; Bearer API tokens are read"
		case name == "Accept":
			dh.Honoured = dh.Present
			dh.Note = "text/html marks a browser navigation, which /auth/forward redirects to the login page"
		case name == "X-Real-Ip" || name == "Forwarded":
			dh.Note = "ignored: the client address comes from X-Forwarded-For only"
		case note != "":
			dh.Note = note
		case dh.Present && !trusted && name != "Host":
			dh.Note = "ignored: the peer is not in server.trusted_proxies"
		case dh.Present && !ok && name != "Host":
			dh.Note = "ignored for a " + rep.Style + "-style request"
		}
		if dh.Present && dh.Count > 1 && name != "X-Forwarded-For" && name != "Cookie" {
			dh.Note = "sent more than once: the request is refused as ambiguous"
		}
		if dh.Present || name == "X-Forwarded-Host" || name == "X-Original-Url" {
			rep.Headers = append(rep.Headers, dh)
		}
	}

	// What the session cookie and a token amount to, independently of the rules.
	if hasCookie(r, h.opts.CookieName) {
		rep.Cookie.Present = true
		stripped := r.Clone(r.Context())
		stripped.Header.Del("Authorization")
		if id, ok := h.auth.Authenticate(stripped); ok {
			rep.Cookie.Valid, rep.Cookie.User, rep.Cookie.Method = true, id.User.Name, id.Method
			if !id.VerifiedAt.IsZero() {
				rep.Cookie.Detail = "last passkey check " + h.opts.Now().Sub(id.VerifiedAt).Round(time.Second).String() + " ago"
			}
		} else {
			rep.Cookie.Detail = "not a live session (expired, revoked, signed with other keys, or not ours)"
		}
	} else {
		rep.Cookie.Detail = "no " + h.opts.CookieName + " cookie: check that session.cookie_domain covers this host and that the proxy passes the Cookie header"
	}

	if !trusted {
		rep.Decision, rep.Reason = "forbidden", "the peer is not in server.trusted_proxies"
		rep.ForwardAnswer, rep.RequestAnswer = "403", "403"
		rep.Hints = append(rep.Hints, fmt.Sprintf("A forward-auth request from %s is refused before anything else. If this is your proxy, add its address to server.trusted_proxies.", r.RemoteAddr))
		return rep
	}
	var (
		t   target
		bad string
	)
	peer, _ := PeerAddr(r) // trusted, checked above
	switch rep.Style {
	case "request":
		t, bad = h.originalTarget(r, peer)
	default:
		t, bad = h.forwardTarget(r, peer)
	}
	if bad != "" {
		rep.Decision, rep.ForwardAnswer, rep.RequestAnswer = "bad_request", "400", "400"
		if rep.Style == "none" {
			rep.TargetError = "neither X-Forwarded-Host (Traefik, Caddy) nor X-Original-URL (Nginx) is set: the proxy does not describe the original request"
		} else {
			rep.TargetError = "the forwarded headers do not describe one usable URL: " + bad
		}
		rep.Reason = rep.TargetError
		return rep
	}
	client := "unknown"
	if t.clientOK {
		client = t.client.String()
	}
	rep.Target = &DebugTarget{OriginalURL: t.originalURL(), Method: t.method, Host: t.host, Path: t.path, Client: client,
		Navigation: isNavigation(t.method, r)}
	if _, ok := r.Header["Authorization"]; ok {
		rep.Token.Present = true
		rep.Token.Detail = "not a valid API token"
	}
	// decide changes nothing, so looking at a decision keeps no session alive.
	d := h.decide(r, &t, h.opts.Now())
	if d.Identity.Method == auth.MethodToken {
		rep.Token.Valid, rep.Token.User, rep.Token.Method, rep.Token.Detail = true, d.Identity.User.Name, auth.MethodToken, "valid for "+strings.Join(d.Identity.TokenHosts, ", ")
	}
	if d.Rule != nil {
		dr := &DebugRule{Index: d.Rule.Index, Policy: d.Rule.Policy.String(), DeviceBound: d.Rule.DeviceBound, Authenticators: d.Rule.Authenticators}
		if d.Rule.MaxAge > 0 {
			dr.MaxAge = d.Rule.MaxAge.String()
		}
		rep.Rule = dr
		if d.Rule.Index < 0 {
			rep.Hints = append(rep.Hints, "No rule matches "+t.host+t.path+": access_control.default_policy ("+d.Rule.Policy.String()+") applies.")
		}
	}
	rep.Reason = d.Reason
	nav := isNavigation(t.method, r)
	switch d.outcome {
	case allow:
		rep.Decision, rep.ForwardAnswer, rep.RequestAnswer = "allowed", "200 with Remote-User "+identityName(d.Identity), "200"
	case unauth, stepUp:
		rep.Decision = "unauthenticated"
		if d.outcome == stepUp {
			rep.Decision = "step_up"
		}
		rep.ForwardAnswer, rep.RequestAnswer = "401", "401"
		if nav {
			rep.ForwardAnswer = "302 to " + h.loginURL
		} else {
			rep.Hints = append(rep.Hints, "This is not a browser navigation (a GET or HEAD with Accept: text/html), so /auth/forward answers 401 rather than a redirect to the login page.")
		}
	case forbid:
		rep.Decision, rep.ForwardAnswer, rep.RequestAnswer = "forbidden", "403", "403"
	default:
		rep.Decision, rep.ForwardAnswer, rep.RequestAnswer = "bad_request", "400", "400"
	}
	if t.scheme == "http" && h.opts.PublicURL.Scheme == "https" {
		rep.Hints = append(rep.Hints, "X-Forwarded-Proto is http while public_url is https: the session cookie is Secure and browsers do not send it over http.")
	}
	return rep
}

func identityName(id auth.Identity) string {
	if id.User == nil {
		return "(none: bypass)"
	}
	return id.User.Name
}

// hasCookie reports whether a cookie of that name is present.
func hasCookie(r *http.Request, name string) bool {
	_, err := r.Cookie(name)
	return err == nil
}

func (rep *DebugReport) writeText(w http.ResponseWriter) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("%s", rep.Note)
	p("")
	trust := "trusted"
	if !rep.PeerTrusted {
		trust = "NOT trusted"
	}
	p("Peer: %s (%s)", rep.Peer, trust)
	p("Style: %s", rep.Style)
	p("")
	p("Headers:")
	for _, hd := range rep.Headers {
		state := "absent"
		if hd.Present {
			state = "ignored"
			if hd.Honoured {
				state = "honoured"
			}
		}
		line := fmt.Sprintf("  %-19s %-8s", hd.Name, state)
		if hd.Value != "" {
			line += " " + hd.Value
		}
		if hd.Note != "" {
			line += "  (" + hd.Note + ")"
		}
		p("%s", line)
	}
	p("")
	if rep.Target != nil {
		p("Original URL: %s", rep.Target.OriginalURL)
		p("Method: %s   Host: %s   Path (as rules see it): %s   Client: %s   Browser navigation: %t",
			rep.Target.Method, rep.Target.Host, rep.Target.Path, rep.Target.Client, rep.Target.Navigation)
	}
	if rep.TargetError != "" {
		p("Target: %s", rep.TargetError)
	}
	cred := func(name string, c DebugCredential) {
		switch {
		case !c.Present:
			p("%s: absent. %s", name, c.Detail)
		case c.Valid:
			p("%s: present, valid: %s (%s) %s", name, c.User, c.Method, c.Detail)
		default:
			p("%s: present, not valid: %s", name, c.Detail)
		}
	}
	cred("Session cookie", rep.Cookie)
	if rep.Token.Present {
		cred("API token", rep.Token)
	}
	if rep.Rule != nil {
		if rep.Rule.Index < 0 {
			p("Rule: none matched; default policy %s", rep.Rule.Policy)
		} else {
			extra := ""
			if rep.Rule.MaxAge != "" {
				extra += " max_age " + rep.Rule.MaxAge
			}
			if rep.Rule.DeviceBound {
				extra += " device_bound"
			}
			if len(rep.Rule.Authenticators) > 0 {
				extra += " authenticators " + strings.Join(rep.Rule.Authenticators, ",")
			}
			p("Rule: access_control.rules[%d], policy %s%s", rep.Rule.Index, rep.Rule.Policy, extra)
		}
	}
	p("Decision: %s (%s)", rep.Decision, rep.Reason)
	p("/auth/forward would answer: %s", rep.ForwardAnswer)
	p("/auth/request would answer: %s", rep.RequestAnswer)
	for _, h := range rep.Hints {
		p("Hint: %s", h)
	}
}
