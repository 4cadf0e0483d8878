package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// Domain is one cookie domain and the portal that serves it (issue 23: one Latchkey for
// example.com and example.org). A session belongs to exactly one domain: its cookie is minted
// for it, the session row records it, and a check on a host of another domain refuses it.
type Domain struct {
	// Name is the cookie's Domain attribute ("example.com"); "" means a host-only cookie of the
	// portal (the one-domain shorthand without session.cookie_domain).
	Name string
	// PublicURL is this domain's portal (its login and account pages).
	PublicURL *url.URL
}

// domain is a configured Domain with what the hot path needs precomputed.
type domain struct {
	Domain
	index int
	// key is what a session row records for the domain: "" for the first one (so that sessions
	// made before several domains existed stay valid there), the cookie domain otherwise.
	key    string
	name   string // lower-case Name without a leading dot; "" for host-only
	portal string // lower-case host name of PublicURL
	origin string // scheme://host[:port] of PublicURL
	codec  *codec // session cookie codec; its name binds the domain into the HMAC
}

func newDomains(opts Options) []*domain {
	list := opts.Domains
	if len(list) == 0 {
		list = []Domain{{Name: opts.CookieDomain, PublicURL: opts.PublicURL}}
	}
	out := make([]*domain, len(list))
	for i, d := range list {
		dd := &domain{Domain: d, index: i,
			name:   strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(d.Name), "."), "."),
			portal: strings.ToLower(d.PublicURL.Hostname()),
			origin: d.PublicURL.Scheme + "://" + d.PublicURL.Host,
		}
		// The first domain keeps the plain cookie name in the HMAC, so that cookies minted before
		// several domains were configured stay valid; every other domain binds its name in, so a
		// cookie of one domain never even decodes on another.
		codecName := opts.CookieName
		if i > 0 {
			dd.key = dd.name
			codecName = opts.CookieName + "|domain=" + dd.name
		}
		dd.codec = newCodec(codecName, opts.HashKey, opts.BlockKey, opts.Lifetime)
		out[i] = dd
	}
	return out
}

// domainForHost returns the configured domain a host (name, optionally with a port) belongs
// to: the one whose cookie domain covers it on a dot boundary, or whose portal it is. A host
// outside every domain is judged with the first one, as with a single domain.
func (s *Service) domainForHost(host string) *domain {
	if len(s.domains) == 1 {
		return s.domains[0]
	}
	name := strings.ToLower(hostName(host))
	for _, d := range s.domains {
		if name == d.portal || (d.name != "" && covers(d.name, name)) {
			return d
		}
	}
	return s.domains[0]
}

// domainOf is the domain of a request to Latchkey's own pages: the one of its Host (the first
// domain for no request).
func (s *Service) domainOf(r *http.Request) *domain {
	if r == nil {
		return s.domains[0]
	}
	return s.domainForHost(r.Host)
}

// domainByName finds a configured domain by its cookie domain (or, for a host-only one, by its
// portal's host name).
func (s *Service) domainByName(name string) (*domain, bool) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if name == "" {
		return nil, false
	}
	for _, d := range s.domains {
		if name == d.name || (d.name == "" && name == d.portal) {
			return d, true
		}
	}
	return nil, false
}

// label is how pages name a domain: its cookie domain, or its portal's host.
func (d *domain) label() string {
	if d.name != "" {
		return d.name
	}
	return d.portal
}

// base is the portal's origin, for absolute links.
func (d *domain) base() string { return d.origin }

// covers reports whether host is domain itself or inside it on a dot boundary.
func covers(domain, host string) bool {
	return host == domain || (len(host) > len(domain) && strings.HasSuffix(host, domain) && host[len(host)-len(domain)-1] == '.')
}

// hostName drops a port and a trailing dot from a Host value.
func hostName(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.TrimSuffix(host, ".")
}

// Domains lists the configured domains (the first one is the primary: its portal is
// PublicURL).
func (s *Service) Domains() []Domain {
	out := make([]Domain, len(s.domains))
	for i, d := range s.domains {
		out[i] = d.Domain
	}
	return out
}

// PortalFor returns the portal (scheme://host) of the domain a host belongs to; forward auth
// sends a browser there to sign in (issue 23).
func (s *Service) PortalFor(host string) string { return s.domainForHost(host).base() }

// rpHome is the portal whose host is inside the RP ID, where passkeys work in every browser.
func (s *Service) rpHome() string {
	rp := strings.ToLower(s.opts.RPID)
	for _, d := range s.domains {
		if covers(rp, d.portal) {
			return d.base()
		}
	}
	return s.domains[0].base()
}

// RelatedOrigins is the body of /.well-known/webauthn (WebAuthn Related Origin Requests): the
// WebAuthn origins outside the RP ID, which browsers check before they let a page there use a
// passkey of the RP ID. Nil with a single domain: then Latchkey does not serve the file.
func (s *Service) RelatedOrigins() []string {
	if len(s.domains) < 2 {
		return nil
	}
	rp := strings.ToLower(s.opts.RPID)
	out := []string{}
	for _, o := range s.opts.Origins {
		u, err := url.Parse(o)
		if err != nil || covers(rp, strings.ToLower(u.Hostname())) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// RPID is the relying party ID every passkey is made for.
func (s *Service) RPID() string { return s.opts.RPID }

// WellKnownWebAuthn serves GET /.well-known/webauthn: {"origins": [...]}, public and cacheable
// for a short while (browsers fetch it before each ceremony on a related origin).
func (s *Service) WellKnownWebAuthn(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string][]string{"origins": s.RelatedOrigins()})
}

// continueLink is one "Continue to example.org" button of the account page; ID is its element
// id ("continue-example-org").
type continueLink struct{ Domain, Portal, ID string }

// passkeyDomains names the domains a passkey of the RP ID works on: directly (the portal is
// inside the RP ID) and through Related Origin Requests. Every passkey has the one RP ID.
func (s *Service) passkeyDomains() (works, related []string) {
	if len(s.domains) < 2 {
		return nil, nil
	}
	rp := strings.ToLower(s.opts.RPID)
	for _, d := range s.domains {
		if covers(rp, d.portal) {
			works = append(works, d.label())
		} else {
			related = append(related, d.label())
		}
	}
	return works, related
}

// domainLabels maps the domain a session records to how pages name it; nil with one domain.
func (s *Service) domainLabels() map[string]string {
	if len(s.domains) < 2 {
		return nil
	}
	m := make(map[string]string, len(s.domains))
	for _, d := range s.domains {
		m[d.key] = d.label()
	}
	return m
}
