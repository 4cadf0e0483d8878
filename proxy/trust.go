package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies is the set of peers (server.trusted_proxies) whose forwarding headers are
// believed. The zero value trusts nobody.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies accepts CIDRs ("10.0.0.0/8", "::1/128") and bare addresses
// ("127.0.0.1"). Every bad entry is reported, each naming its index and value, as
// `trusted_proxies[1]: invalid CIDR or IP address "x"`; callers prefix the config section.
func ParseTrustedProxies(cidrs []string) (TrustedProxies, error) {
	var (
		t    TrustedProxies
		errs []error
	)
	for i, s := range cidrs {
		p, ok := parsePrefix(s)
		if !ok {
			errs = append(errs, fmt.Errorf("trusted_proxies[%d]: invalid CIDR or IP address %q", i, s))
			continue
		}
		t.prefixes = append(t.prefixes, p)
	}
	if len(errs) > 0 {
		return TrustedProxies{}, errors.Join(errs...)
	}
	return t, nil
}

// parsePrefix parses a CIDR or a bare address into a masked prefix. IPv4-mapped IPv6
// prefixes (::ffff:10.0.0.0/104) become IPv4 prefixes, because addresses are unmapped before
// every comparison and would otherwise never match. Zones are refused.
func parsePrefix(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				// Covers more than the mapped range; keep it as written.
				return p.Masked(), true
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// Contains reports whether a is a trusted proxy. IPv4-mapped IPv6 addresses (from a
// dual-stack listener) are unmapped first, and a zone is ignored.
func (t TrustedProxies) Contains(a netip.Addr) bool {
	return prefixesContain(t.prefixes, a)
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PeerAddr parses r.RemoteAddr ("ip:port", "[ip6]:port" or a bare address) into an address,
// unmapped and without zone. ok is false when it is unparsable (for example a Unix socket).
func PeerAddr(r *http.Request) (netip.Addr, bool) {
	s := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// ClientAddr returns the address that network rules apply to.
//
// When the peer is not trusted, that is the peer itself, whatever the headers say. When the
// peer is trusted, X-Forwarded-For (all header lines, in order, comma separated) is walked from
// the right, with the peer as the implicit last hop, and the right-most address not in t is
// the client: proxies append, so only entries right of the first untrusted hop were written by
// someone we trust (nginx's $proxy_add_x_forwarded_for turns a spoofed "192.168.1.10" into
// "192.168.1.10, 203.0.113.9"). If every address is trusted, the left-most one is returned.
//
// An element that is not an address ("unknown", "a", empty) stops the walk with ok=false,
// which callers treat as "no address": it matches no network rule and is never an error that
// allows (Authentik CVE-2024-47070). X-Real-IP and Forwarded are never read, so that exactly
// one header decides.
func (t TrustedProxies) ClientAddr(r *http.Request) (netip.Addr, bool) {
	peer, ok := PeerAddr(r)
	if !ok {
		return netip.Addr{}, false
	}
	if !t.Contains(peer) {
		return peer, true
	}
	return t.forwardedClient(peer, r)
}

// forwardedClient is ClientAddr for a request whose peer (parsed by PeerAddr) is known to be
// trusted: the forward-auth endpoints check the peer first and need not parse it again.
func (t TrustedProxies) forwardedClient(peer netip.Addr, r *http.Request) (netip.Addr, bool) {
	leftmost := peer
	lines := r.Header["X-Forwarded-For"] // the canonical key: Values would canonicalise it again
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			j := strings.LastIndexByte(line, ',')
			a, ok := parseForwardedFor(line[j+1:])
			if !ok {
				return netip.Addr{}, false
			}
			if !t.Contains(a) {
				return a, true
			}
			leftmost = a
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return leftmost, true
}

// parseForwardedFor parses one X-Forwarded-For element: an address, optionally bracketed
// (IPv6) or with a port (some load balancers append one). Zones are refused: no proxy writes
// them, so one is a forgery.
func parseForwardedFor(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(s)
		switch {
		case err2 == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
