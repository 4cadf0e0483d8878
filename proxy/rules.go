package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Policy is what a matching rule asks for.
type Policy uint8

const (
	// PolicyDeny refuses the request whoever asks. It is the zero value so that a forgotten
	// assignment denies.
	PolicyDeny Policy = iota
	// PolicyBypass lets the request through without a session.
	PolicyBypass
	// PolicyPasskey requires a session (made with a passkey) that satisfies the rule's
	// users, groups and step-up requirements.
	PolicyPasskey
)

// ParsePolicy parses "deny", "bypass" or "passkey" (exactly, lower case).
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "deny":
		return PolicyDeny, nil
	case "bypass":
		return PolicyBypass, nil
	case "passkey":
		return PolicyPasskey, nil
	}
	return PolicyDeny, fmt.Errorf("unknown policy %q (deny | passkey | bypass)", s)
}

// String returns the config spelling of p.
func (p Policy) String() string {
	switch p {
	case PolicyDeny:
		return "deny"
	case PolicyBypass:
		return "bypass"
	case PolicyPasskey:
		return "passkey"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// RuleConfig is one entry of access_control.rules as written in the config file; cmd/latchkey
// decodes YAML into it. Empty lists match anything.
type RuleConfig struct {
	Hosts    []string `mapstructure:"hosts"`    // exact ("grafana.example.com") or "*.example.com" (subdomains, never the apex); without a port: any port, with one: only that port
	Paths    []string `mapstructure:"paths"`    // Go regular expressions, search semantics, on the normalised path; any of
	Methods  []string `mapstructure:"methods"`  // any of, case-insensitive
	Networks []string `mapstructure:"networks"` // CIDRs or addresses of the client (see TrustedProxies.ClientAddr); any of
	Groups   []string `mapstructure:"groups"`   // any of
	Users    []string `mapstructure:"users"`    // any of
	Policy   string   `mapstructure:"policy"`   // deny | passkey | bypass

	MaxAge         time.Duration `mapstructure:"max_age"`        // step-up: max age of the last passkey verification, 0 = none
	DeviceBound    bool          `mapstructure:"device_bound"`   // only sessions from a device-bound passkey (BE flag clear)
	Authenticators []string      `mapstructure:"authenticators"` // AAGUID allow-list (canonical UUID strings), empty = any
}

// Rule is a compiled access rule. The exported fields are read-only for callers; the
// requirements that depend on the session (MaxAge, DeviceBound, Authenticators, Allows) are
// for the caller to enforce once Match has chosen the rule.
type Rule struct {
	Index          int // position in access_control.rules; -1 for the default policy
	Policy         Policy
	MaxAge         time.Duration
	DeviceBound    bool
	Authenticators []string // lower-case canonical UUIDs

	hosts     []hostPattern // exact hosts
	wildcards []wildcard
	paths     []*regexp.Regexp
	methods   []string // upper case
	networks  []netip.Prefix
	groups    []string
	users     []string
}

// hostPattern is a compiled exact host: a canonical name (DNS name or IP literal, without
// brackets) and the port the rule names, "" for any port.
type hostPattern struct {
	name, port string
}

// wildcard is a compiled "*.example.com[:port]" pattern.
type wildcard struct {
	suffix string // ".example.com"
	port   string // "" for any port
}

// Allows reports whether a signed-in subject satisfies the rule's users and groups: true when
// both lists are empty (anyone signed in), otherwise when user is one of users or any of
// groups is one of the rule's groups. Names compare exactly, so "Admin" is not "admin".
func (r *Rule) Allows(user string, groups []string) bool {
	if len(r.users) == 0 && len(r.groups) == 0 {
		return true
	}
	if user != "" {
		for _, u := range r.users {
			if u == user {
				return true
			}
		}
	}
	for _, g := range groups {
		for _, want := range r.groups {
			if g == want {
				return true
			}
		}
	}
	return false
}

// Rules is a compiled access_control section: the rules in order and the default policy.
type Rules struct {
	rules []Rule
	def   Rule
}

// denyRule is what a nil *Rules matches: a miss denies.
var denyRule = Rule{Index: -1, Policy: PolicyDeny}

// CompileRules validates and compiles access_control. Every problem is reported (joined with
// errors.Join), each naming its key, for example
// `access_control.rules[2].paths[0]: error parsing regexp: ...`. An empty defaultPolicy means
// deny, the documented default.
func CompileRules(rules []RuleConfig, defaultPolicy string) (*Rules, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	rs := &Rules{def: Rule{Index: -1, Policy: PolicyDeny}}
	if defaultPolicy != "" {
		p, err := ParsePolicy(defaultPolicy)
		if err != nil {
			bad("access_control.default_policy: %w", err)
		}
		rs.def.Policy = p
	}

	for i, rc := range rules {
		key := fmt.Sprintf("access_control.rules[%d]", i)
		r := Rule{Index: i, MaxAge: rc.MaxAge, DeviceBound: rc.DeviceBound}

		p, policyErr := ParsePolicy(rc.Policy)
		if policyErr != nil {
			bad("%s.policy: %w", key, policyErr)
		}
		r.Policy = p

		for j, h := range rc.Hosts {
			// No scheme: a port written in the rule is kept as written, ":443" included, so
			// that it means exactly that port (issue 16); a rule without a port matches any.
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				c, ok := CanonicalHost(rest, "")
				name, port, split := splitCanonicalHost(c)
				if !ok || !split {
					bad("%s.hosts[%d]: invalid host pattern %q%s", key, j, h, hostHint(h))
					continue
				}
				r.wildcards = append(r.wildcards, wildcard{suffix: "." + name, port: port})
				continue
			}
			c, ok := CanonicalHost(h, "")
			if !ok {
				bad("%s.hosts[%d]: invalid host %q%s", key, j, h, hostHint(h))
				continue
			}
			name, port := hostAndPort(c)
			r.hosts = append(r.hosts, hostPattern{name: name, port: port})
		}

		for j, expr := range rc.Paths {
			re, err := regexp.Compile(expr)
			if err != nil {
				bad("%s.paths[%d]: %w", key, j, err)
				continue
			}
			r.paths = append(r.paths, re)
		}

		for j, m := range rc.Methods {
			if !isToken(m) {
				bad("%s.methods[%d]: invalid method %q", key, j, m)
				continue
			}
			r.methods = append(r.methods, strings.ToUpper(m))
		}

		for j, n := range rc.Networks {
			pfx, ok := parsePrefix(n)
			if !ok {
				bad("%s.networks[%d]: invalid CIDR %q", key, j, n)
				continue
			}
			r.networks = append(r.networks, pfx)
		}

		for j, g := range rc.Groups {
			if g == "" {
				bad("%s.groups[%d]: empty group name", key, j)
				continue
			}
			r.groups = append(r.groups, g)
		}
		for j, u := range rc.Users {
			if u == "" {
				bad("%s.users[%d]: empty user name", key, j)
				continue
			}
			r.users = append(r.users, u)
		}

		if rc.MaxAge < 0 {
			bad("%s.max_age: must not be negative, got %s", key, rc.MaxAge)
		}
		for j, a := range rc.Authenticators {
			if !isUUID(a) {
				bad("%s.authenticators[%d]: invalid AAGUID %q (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", key, j, a)
				continue
			}
			r.Authenticators = append(r.Authenticators, strings.ToLower(a))
		}

		// A bypass rule never looks at a session, so subject or step-up requirements on it
		// would be silently ignored: the operator thinks a path is restricted when it is open.
		if policyErr == nil && p == PolicyBypass && (len(rc.Users) > 0 || len(rc.Groups) > 0 ||
			rc.MaxAge != 0 || rc.DeviceBound || len(rc.Authenticators) > 0) {
			bad("%s.policy: bypass cannot be combined with users, groups, max_age, device_bound or authenticators", key)
		}
		rs.rules = append(rs.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

// Request is what rules are matched against. Host must already be canonical (CanonicalHost
// for Scheme) and Path normalised (NormalizePath); Client is meaningful only when ClientOK.
// Scheme ("http" or "https") gives the port of a Host without one, so that a rule naming
// "app.example.com:443" matches "https://app.example.com/"; with no Scheme such a Host has no
// known port and matches only rules without a port.
type Request struct {
	Method, Scheme, Host, Path string
	Client                     netip.Addr
	ClientOK                   bool
}

// Match returns the first rule whose hosts, paths, methods and networks all match req (an
// empty list matches anything; a non-empty networks list never matches when !req.ClientOK).
// When none matches it returns the default-policy rule (Index -1). It never returns nil and
// does not allocate.
func (rs *Rules) Match(req *Request) *Rule {
	if rs == nil {
		return &denyRule
	}
	for i := range rs.rules {
		if r := &rs.rules[i]; r.matches(req) {
			return r
		}
	}
	return &rs.def
}

// matches checks the cheap conditions first and the regular expressions last.
func (r *Rule) matches(req *Request) bool {
	return r.matchHost(req.Host, req.Scheme) && r.matchMethod(req.Method) &&
		r.matchNetwork(req) && r.matchPath(req.Path)
}

// matchHost compares the host name exactly (both are canonical: lower case, no trailing dot)
// and the port only when the rule names one, against the request's explicit port or its
// scheme's default. It does not allocate.
func (r *Rule) matchHost(h, scheme string) bool {
	if len(r.hosts) == 0 && len(r.wildcards) == 0 {
		return true
	}
	name, port := hostAndPort(h)
	if port == "" {
		port = defaultPort(scheme)
	}
	for _, e := range r.hosts {
		if name == e.name && (e.port == "" || e.port == port) {
			return true
		}
	}
	if len(r.wildcards) == 0 || strings.IndexByte(name, ':') >= 0 {
		return false // wildcards never apply to IP literals
	}
	for _, w := range r.wildcards {
		// len > len(suffix) keeps the apex out: "*.example.com" never matches "example.com".
		if (w.port == "" || w.port == port) && len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return true
		}
	}
	return false
}

// hostHint explains the usual reason a host in the config is refused.
func hostHint(h string) string {
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			return " (write an internationalised name in its ASCII form, xn--..., as browsers send it)"
		}
	}
	if strings.Contains(h, "/") {
		return " (a host name, not a URL)"
	}
	return ""
}

// matchMethod compares case-insensitively although HTTP methods are case-sensitive: some
// upstreams fold "delete" into DELETE, so a deny rule on DELETE must catch it too, and a
// bypass rule on GET matching "get" opens nothing an upstream would not serve as GET.
func (r *Rule) matchMethod(m string) bool {
	if len(r.methods) == 0 {
		return true
	}
	for _, want := range r.methods {
		if strings.EqualFold(m, want) {
			return true
		}
	}
	return false
}

func (r *Rule) matchNetwork(req *Request) bool {
	if len(r.networks) == 0 {
		return true
	}
	return req.ClientOK && prefixesContain(r.networks, req.Client)
}

func (r *Rule) matchPath(p string) bool {
	if len(r.paths) == 0 {
		return true
	}
	for _, re := range r.paths {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

// Hosts returns every exact host and wildcard pattern named by the rules, canonical and
// without duplicates, for redirect validation (RedirectPolicy.Hosts).
func (rs *Rules) Hosts() []string {
	if rs == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(h string) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for i := range rs.rules {
		r := &rs.rules[i]
		for _, e := range r.hosts {
			h := e.name
			if strings.IndexByte(h, ':') >= 0 {
				h = "[" + h + "]"
			}
			if e.port != "" {
				h += ":" + e.port
			}
			if c, ok := CanonicalHost(h, "https"); ok {
				add(c)
			}
		}
		for _, w := range r.wildcards {
			h := "*" + w.suffix
			if w.port != "" && w.port != "443" {
				h += ":" + w.port
			}
			add(h)
		}
	}
	return out
}

// isToken reports whether s is a non-empty RFC 9110 token (the syntax of a method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in the canonical 8-4-4-4-12 hex form (either case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if _, ok := unhex(c); !ok {
			return false
		}
	}
	return true
}
