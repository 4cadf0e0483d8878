package proxy

import (
	"net/netip"
	"strings"
)

// maxHostLen bounds what CanonicalHost looks at: a DNS name is at most 253 octets plus an
// optional root dot, and a bracketed IPv6 literal with a port is far shorter. Anything longer
// is not a host a browser would send.
const maxHostLen = 260

// CanonicalHost lower-cases host, strips one trailing dot, and strips the port when it is the
// default for scheme ("http"→80, "https"→443). Non-default ports stay as "host:port" (written
// without leading zeros). IPv6 literals are written in their canonical form and keep brackets
// only when a port remains.
//
// It returns ok=false for an empty host, userinfo, spaces or control characters, an empty,
// zero or out-of-range port, an IPv6 zone, empty labels ("a..b"), and anything outside the
// characters a browser puts in a Host header (ASCII letters, digits, '-', '.', '_'; IDNs
// arrive as punycode). That is stricter than net/url on purpose: a host that could be
// written two ways must not reach a rule comparison.
func CanonicalHost(host, scheme string) (string, bool) {
	if host == "" || len(host) > maxHostLen {
		return "", false
	}
	var (
		name, port string
		ipv6       bool
	)
	switch {
	case host[0] == '[':
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", false
		}
		rest := host[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
			if port == "" {
				return "", false
			}
		default:
			return "", false
		}
		name, ipv6 = host[1:end], true
	case strings.Count(host, ":") > 1:
		// A bare IPv6 literal ("::1"): what URL.Hostname returns and what CanonicalHost
		// itself returns for "[::1]" on a default port, so it must be accepted for
		// idempotence. It cannot carry a port.
		name, ipv6 = host, true
	default:
		name = host
		if i := strings.IndexByte(host, ':'); i >= 0 {
			name, port = host[:i], host[i+1:]
			if port == "" {
				// "host:" is legal in RFC 3986 and means the default port; refusing it keeps
				// one spelling per host.
				return "", false
			}
		}
	}

	changed := false
	if port != "" {
		p, pchanged, ok := canonicalPort(port)
		if !ok {
			return "", false
		}
		if isDefaultPort(p, scheme) {
			port, changed = "", true
		} else if pchanged {
			port, changed = p, true
		}
	}

	if ipv6 {
		a, err := netip.ParseAddr(name)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		name = a.String()
		if port == "" {
			return name, true
		}
		return "[" + name + "]:" + port, true
	}

	if strings.HasSuffix(name, ".") {
		name, changed = name[:len(name)-1], true
	}
	if !validHostName(name) {
		return "", false
	}
	if lower := strings.ToLower(name); lower != name {
		name, changed = lower, true
	}
	switch {
	case port == "":
		return name, true
	case !changed:
		return host, true // already canonical: no allocation
	default:
		return name + ":" + port, true
	}
}

// validHostName reports whether name is a non-empty sequence of non-empty labels made of
// ASCII letters, digits, '-' and '_' (Docker service names use '_').
func validHostName(name string) bool {
	if name == "" {
		return false
	}
	labelLen := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if labelLen == 0 {
				return false
			}
			labelLen = 0
			continue
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		labelLen++
	}
	return labelLen > 0
}

// canonicalPort validates a decimal port in 1..65535 and returns it without leading zeros;
// changed reports whether that differs from p.
func canonicalPort(p string) (canon string, changed, ok bool) {
	if len(p) > 5 {
		// Leading zeros beyond five digits are not worth the ambiguity.
		return "", false, false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return "", false, false
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return "", false, false
	}
	i := 0
	for i < len(p)-1 && p[i] == '0' {
		i++
	}
	return p[i:], i > 0, true
}

// isDefaultPort reports whether p (canonical decimal) is the default port of scheme.
func isDefaultPort(p, scheme string) bool {
	switch {
	case strings.EqualFold(scheme, "https"):
		return p == "443"
	case strings.EqualFold(scheme, "http"):
		return p == "80"
	}
	return false
}

// splitCanonicalHost splits a host already returned by CanonicalHost into its name and port
// (port "" when none). IP-literal hosts report ok=false: wildcard and domain-suffix matching
// never apply to them.
func splitCanonicalHost(h string) (name, port string, ok bool) {
	if strings.IndexByte(h, '[') >= 0 {
		return "", "", false
	}
	i := strings.IndexByte(h, ':')
	if i < 0 {
		return h, "", true
	}
	if strings.IndexByte(h[i+1:], ':') >= 0 {
		return "", "", false // bare IPv6
	}
	return h[:i], h[i+1:], true
}

// hostAndPort splits a host returned by CanonicalHost into its name (a DNS name, or an IP
// literal without brackets) and its explicit port ("" when none). Unlike splitCanonicalHost it
// accepts IP literals, for exact comparisons.
func hostAndPort(h string) (name, port string) {
	if h != "" && h[0] == '[' {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return h, ""
		}
		name = h[1:end]
		if rest := h[end+1:]; len(rest) > 1 && rest[0] == ':' {
			port = rest[1:]
		}
		return name, port
	}
	if strings.Count(h, ":") == 1 {
		i := strings.IndexByte(h, ':')
		return h[:i], h[i+1:]
	}
	return h, "" // a name without port, or a bare IPv6 literal
}

// defaultPort is the port a request of scheme reaches when its host names none; "" when the
// scheme has no default (the port is then unknown, and a rule naming a port never matches).
func defaultPort(scheme string) string {
	switch {
	case strings.EqualFold(scheme, "https"):
		return "443"
	case strings.EqualFold(scheme, "http"):
		return "80"
	}
	return ""
}
