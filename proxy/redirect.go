package proxy

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxRedirectLen bounds the rd value; a longer one is refused rather than parsed.
const maxRedirectLen = 8 << 10

// accountPath is the fallback target of every refused redirect.
const accountPath = "/.latchkey/account"

// returnPages are the signed-in pages under /.latchkey/ that a redirect may return to: the
// account page, and the token and admin pages that send a user through step-up and back.
// The OpenID Provider's login step and its Apps page are too: sign-in and step-up return to them
// (issue 22).
// Nothing else under /.latchkey/ (ceremony APIs, logout, enrolment) is ever a target.
func returnPage(clean string) bool {
	switch clean {
	case accountPath, "/.latchkey/tokens", "/.latchkey/admin", "/.latchkey/admin/audit", "/.latchkey/oidc/login", "/.latchkey/oidc/admin":
		return true
	}
	if rest, ok := strings.CutPrefix(clean, "/.latchkey/admin/users/"); ok {
		return rest != "" && !strings.Contains(rest, "/")
	}
	return false
}

// RedirectPolicy validates the rd parameter of the login, login-finish and logout sinks.
//
// A target is followed only when it parses as an absolute URL with no userinfo, scheme https
// (or http while Portal itself is http), a host that is the portal's host, one of Hosts
// (exact, or "*.example.com" for any deeper subdomain), or inside CookieDomain on a dot
// boundary, a port that is the scheme's default (or, for the portal's host, the portal's own
// port; or one that a Hosts entry names exactly), and a path that does not point into
// /.latchkey/ apart from the signed-in pages (account, tokens, admin). Everything else gets the
// account page.
//
// With several domains (issue 23), every domain's portal counts as the portal and every cookie
// domain as CookieDomain: rd may target any configured domain, and nothing else.
type RedirectPolicy struct {
	Portal       *url.URL // public_url
	Hosts        []string // Rules.Hosts() and route hosts
	CookieDomain string   // session.cookie_domain; "" for none
	// Portals and CookieDomains are the other domains' portals and cookie domains
	// (session.cookies after the first).
	Portals       []*url.URL
	CookieDomains []string
}

// Account returns the fallback target: the portal's account page.
func (p RedirectPolicy) Account() string {
	if p.Portal == nil {
		return accountPath
	}
	u := url.URL{Scheme: p.Portal.Scheme, Host: p.Portal.Host, Path: accountPath}
	return u.String()
}

// Safe returns the URL to redirect to and whether raw was accepted: raw re-serialised by
// net/url when it is allowed, otherwise Account().
func (p RedirectPolicy) Safe(raw string) (string, bool) {
	if u, ok := p.check(raw); ok {
		return u.String(), true
	}
	return p.Account(), false
}

func (p RedirectPolicy) check(raw string) (*url.URL, bool) {
	if p.Portal == nil || raw == "" || len(raw) > maxRedirectLen || !cleanRedirectText(raw) {
		return nil, false
	}
	u, err := url.Parse(raw)
	// Opaque catches "https:evil.com"; an empty Host catches "https:/evil.com" and
	// "https:///evil.com", which browsers resolve in ways that differ from net/url.
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return nil, false
	}
	portalScheme := strings.ToLower(p.Portal.Scheme)
	switch u.Scheme { // net/url lower-cases the scheme
	case "https":
	case "http":
		if portalScheme != "http" {
			return nil, false // a downgrade from an https portal
		}
	default:
		return nil, false
	}

	host, ok := CanonicalHost(u.Host, u.Scheme)
	if !ok || !p.hostAllowed(host) {
		return nil, false
	}

	// Decide on what the target server will see: the decoded, dot-cleaned path.
	clean, err := NormalizePath(u.EscapedPath())
	if err != nil {
		return nil, false
	}
	// Case-insensitively, because refusing /.LATCHKEY/ costs nothing and some upstreams fold
	// case.
	if len(clean) >= len("/.latchkey") && strings.EqualFold(clean[:len("/.latchkey")], "/.latchkey") &&
		(len(clean) == len("/.latchkey") || clean[len("/.latchkey")] == '/') && !returnPage(clean) {
		return nil, false
	}
	return u, true
}

// hostAllowed reports whether the canonical host (as CanonicalHost returns it for the
// target's scheme) may be redirected to.
func (p RedirectPolicy) hostAllowed(host string) bool {
	if portal, ok := CanonicalHost(p.Portal.Host, p.Portal.Scheme); ok && host == portal {
		return true
	}
	for _, pu := range p.Portals {
		if portal, ok := CanonicalHost(pu.Host, pu.Scheme); ok && host == portal {
			return true
		}
	}
	for _, h := range p.Hosts {
		if strings.HasPrefix(h, "*.") {
			c, ok := CanonicalHost(h[2:], "https")
			if !ok {
				continue
			}
			if matchWildcard(host, c) {
				return true
			}
			continue
		}
		// A Hosts entry may name a non-default port exactly (a rule for
		// "grafana.example.com:8443"); that is an exact structural match.
		if c, ok := CanonicalHost(h, "https"); ok && host == c {
			return true
		}
	}
	name, port, ok := splitCanonicalHost(host)
	if !ok || port != "" {
		// Every other host must use the scheme's default port.
		return false
	}
	for _, cd := range append([]string{p.CookieDomain}, p.CookieDomains...) {
		d := strings.TrimPrefix(strings.ToLower(cd), ".")
		d = strings.TrimSuffix(d, ".")
		if d == "" {
			continue
		}
		if name == d || (len(name) > len(d) && strings.HasSuffix(name, d) && name[len(name)-len(d)-1] == '.') {
			return true
		}
	}
	return false
}

// matchWildcard reports whether host is a strict subdomain of the canonical pattern base
// ("example.com" or "example.com:8443"), with the same port.
func matchWildcard(host, base string) bool {
	hn, hp, ok1 := splitCanonicalHost(host)
	bn, bp, ok2 := splitCanonicalHost(base)
	return ok1 && ok2 && hp == bp && len(hn) > len(bn)+1 &&
		strings.HasSuffix(hn, bn) && hn[len(hn)-len(bn)-1] == '.'
}

// cleanRedirectText refuses text that browsers and net/url may read differently: invalid
// UTF-8, any whitespace (so also leading or trailing), control characters (browsers strip
// tab, CR and LF inside URLs: "java\nscript:"), and backslashes (browsers read "\" as "/" in
// special URLs: "/\evil.com" is "//evil.com").
func cleanRedirectText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || r == '\uFEFF' {
			return false
		}
	}
	return true
}
