package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/proxy"
)

// doctor explains, in plain words, everything in a configuration that would break a login
// (issue 12). It exits 1 when it finds such a problem and 0 otherwise (warnings included), so it
// can gate a deployment. It only reads: it dials upstreams and asks for a Date header, and checks
// that data_dir is writable with a temporary file it removes again.

// doctorTimeout bounds each network probe.
const doctorTimeout = 2 * time.Second

// maxClockSkew is how far another machine's clock may be from ours before the doctor warns:
// session expiry, ceremony timeouts and replicas sharing a store all assume one time.
const maxClockSkew = time.Minute

type severity int

const (
	sevOK severity = iota
	sevInfo
	sevWarn
	sevError
)

func (s severity) String() string {
	switch s {
	case sevError:
		return "PROBLEM"
	case sevWarn:
		return "warning"
	case sevInfo:
		return "note"
	}
	return "ok"
}

type finding struct {
	sev severity
	msg string
}

type doctor struct {
	cfg       Config
	public    *url.URL
	rules     *proxy.Rules
	trusted   proxy.TrustedProxies
	trustedOK bool
	findings  []finding
	now       func() time.Time
	client    *http.Client
}

func (d *doctor) add(sev severity, format string, args ...any) {
	d.findings = append(d.findings, finding{sev, fmt.Sprintf(format, args...)})
}

func newDoctorCommand() *cobra.Command {
	var target, proxyAddr string
	var offline bool
	cmd := &cobra.Command{
		Use:   "doctor [--config FILE] [--url URL] [--proxy-addr IP] [--offline]",
		Short: "Explain what in the configuration would break a login; exit 1 on such a problem",
		Long: "Loads the configuration and reports, in plain words, everything that would break a login:\n" +
			"rp_id, cookie_domain and public_url that do not fit the protected hosts, a proxy address outside\n" +
			"trusted_proxies, routes no rule matches, unreachable upstreams, an unwritable data_dir and clock skew.\n" +
			"With --url it shows which rule matches that URL and what signed-out and signed-in requests get.\n" +
			"Exit status: 1 when something breaks logins, 0 otherwise (warnings are printed).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			n := runDoctor(cmd.Context(), cmd.OutOrStdout(), doctorArgs{path: path, target: target, proxyAddr: proxyAddr, offline: offline}, time.Now)
			if n > 0 {
				return &exitError{code: 1, err: fmt.Errorf("doctor: %d problem(s) that break logins", n)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "a protected URL to explain, such as https://app.example.com/path")
	cmd.Flags().StringVar(&proxyAddr, "proxy-addr", "", "the address your reverse proxy connects to Latchkey from")
	cmd.Flags().BoolVar(&offline, "offline", false, "skip the network probes (upstream reachability, clock skew, the RP ID's /.well-known/webauthn), e.g. to check a config in CI")
	return cmd
}

type doctorArgs struct {
	path, target, proxyAddr string
	offline                 bool
	// transport, when set (tests), carries the network probes.
	transport http.RoundTripper
}

// runDoctor prints the report and returns the number of problems that break logins.
func runDoctor(ctx context.Context, out io.Writer, a doctorArgs, now func() time.Time) int {
	path := a.path
	d := &doctor{now: now, client: &http.Client{Timeout: doctorTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Transport: a.transport}}
	shown := path
	if shown == "" {
		shown = "built-in defaults (or ./latchkey.yaml when present)"
	}
	fmt.Fprintf(out, "Latchkey doctor · configuration: %s\n\n", shown)
	cfg, err := checkConfig(path)
	var re *readError
	if errors.As(err, &re) {
		d.add(sevError, "the configuration cannot be read: %v", err)
		return d.report(out)
	}
	d.cfg = cfg
	if err != nil {
		for _, line := range problemLines(err) {
			d.add(sevError, "%s", line)
		}
	}
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		d.public = u
	}
	if rs, err := proxy.CompileRules(cfg.AccessControl.Rules, cfg.AccessControl.DefaultPolicy); err == nil {
		d.rules = rs
	}
	if tp, err := proxy.ParseTrustedProxies(cfg.Server.TrustedProxies); err == nil {
		d.trusted, d.trustedOK = tp, true
	}
	d.checkPublicURL()
	d.checkHosts()
	d.checkProxyAddr(a.proxyAddr)
	d.checkRoutes(ctx, !a.offline)
	d.checkDataDir()
	if a.offline {
		d.add(sevInfo, "upstreams and clock skew were not checked (--offline)")
		if len(cfg.Session.Cookies) > 1 {
			d.add(sevInfo, "the RP ID's /.well-known/webauthn (several domains) was not checked (--offline)")
		}
	} else {
		d.checkClock(ctx)
		d.checkWellKnown(ctx)
	}
	if a.target != "" {
		d.explainURL(out, a.target)
	}
	return d.report(out)
}

func (d *doctor) report(out io.Writer) int {
	problems, warnings := 0, 0
	for _, f := range d.findings {
		switch f.sev {
		case sevError:
			problems++
		case sevWarn:
			warnings++
		}
		fmt.Fprintf(out, "%-8s %s\n", f.sev.String()+":", f.msg)
	}
	fmt.Fprintln(out)
	switch {
	case problems > 0:
		fmt.Fprintf(out, "%d problem(s) will break logins; %d warning(s).\n", problems, warnings)
	case warnings > 0:
		fmt.Fprintf(out, "No problem that breaks logins; %d warning(s).\n", warnings)
	default:
		fmt.Fprintln(out, "No problem found.")
	}
	return problems
}

func isLocalHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

func (d *doctor) checkPublicURL() {
	if d.public == nil {
		return
	}
	host := d.public.Hostname()
	switch {
	case d.public.Scheme == "https":
		d.add(sevOK, "server.public_url %s is https", d.cfg.Server.PublicURL)
	case isLocalHost(host):
		d.add(sevOK, "server.public_url %s is http, which browsers allow for passkeys on localhost only", d.cfg.Server.PublicURL)
	default:
		d.add(sevError, "server.public_url %s is not https: browsers offer passkeys only in a secure context (https, or http://localhost). Put Latchkey behind TLS and set public_url to its https address.", d.cfg.Server.PublicURL)
	}
}

// protectedHost is a host that needs the session cookie: a route, or a rule that asks for a passkey.
type protectedHost struct {
	host   string // canonical; "*.example.com" for wildcards
	source string // the config key it came from
}

func (d *doctor) protectedHosts() []protectedHost {
	var out []protectedHost
	for i, r := range d.cfg.AccessControl.Rules {
		if r.Policy != "passkey" {
			continue
		}
		for j, h := range r.Hosts {
			out = append(out, protectedHost{strings.ToLower(strings.TrimSuffix(h, ".")), fmt.Sprintf("access_control.rules[%d].hosts[%d]", i, j)})
		}
	}
	for i, rt := range d.cfg.Routes {
		if h, ok := proxy.CanonicalHost(rt.Host, "https"); ok {
			out = append(out, protectedHost{h, fmt.Sprintf("routes[%d].host", i)})
		}
	}
	return out
}

// hostName drops a port, and the "*." of a wildcard (a subdomain stands for it).
func hostName(h string) string {
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	}
	if strings.HasPrefix(h, "*.") {
		h = "sub" + h[1:]
	}
	return strings.Trim(h, "[]")
}

func (d *doctor) checkHosts() {
	if d.public == nil {
		return
	}
	publicHost := strings.ToLower(d.public.Hostname())
	rpID := strings.ToLower(d.cfg.WebAuthn.RPID)
	if rpID == "" {
		rpID = publicHost
	}
	cookieDomain := strings.ToLower(strings.TrimPrefix(d.cfg.Session.CookieDomain, "."))
	if domainCovers(rpID, publicHost) {
		d.add(sevOK, "webauthn.rp_id %q covers public_url's host %q", rpID, publicHost)
	}
	seen := map[string]bool{}
	for _, ph := range d.protectedHosts() {
		if seen[ph.host] {
			continue // one finding per host, naming the first key that mentions it
		}
		seen[ph.host] = true
		name := hostName(ph.host)
		if other, ok := d.otherDomain(name); ok {
			// Several domains (issue 23): the host is in another configured domain, served by
			// that domain's cookie and portal.
			d.add(sevOK, "%s %q is inside session.cookies domain %q (portal %s)", ph.source, ph.host, other.Domain, other.PublicURL)
			continue
		}
		if !domainCovers(rpID, name) {
			d.add(sevWarn, "%s %q is outside webauthn.rp_id %q: sign-in still works on %s, but passkeys can never be used on %s itself; set rp_id to a parent domain of both if you want that.",
				ph.source, ph.host, rpID, publicHost, ph.host)
		}
		switch {
		case name == publicHost:
		case cookieDomain == "":
			d.add(sevError, "%s %q gets no session cookie: session.cookie_domain is empty, so the cookie belongs to %s only, and every visit to %s loops back to the login page. Set session.cookie_domain to a parent domain of both.",
				ph.source, ph.host, publicHost, ph.host)
		case !domainCovers(cookieDomain, name):
			d.add(sevError, "%s %q is outside session.cookie_domain %q: the browser never sends the session cookie there, so every visit loops back to the login page.",
				ph.source, ph.host, cookieDomain)
		}
	}
}

func (d *doctor) checkProxyAddr(addr string) {
	if addr == "" {
		d.add(sevInfo, "the proxy's address was not checked against server.trusted_proxies (give --proxy-addr)")
		return
	}
	ip, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	if err != nil {
		if host, _, serr := net.SplitHostPort(addr); serr == nil {
			ip, err = netip.ParseAddr(strings.Trim(host, "[]"))
		}
	}
	switch {
	case err != nil:
		d.add(sevError, "--proxy-addr %q is not an IP address", addr)
	case !d.trustedOK:
	case d.trusted.Contains(ip):
		d.add(sevOK, "the proxy address %s is in server.trusted_proxies", ip)
	default:
		d.add(sevError, "the proxy address %s is not in server.trusted_proxies %v: every forward-auth request from it is refused with 403. Add it (or its Docker network's subnet).",
			ip, d.cfg.Server.TrustedProxies)
	}
}

func (d *doctor) checkRoutes(ctx context.Context, dial bool) {
	for i, rt := range d.cfg.Routes {
		host, ok := proxy.CanonicalHost(rt.Host, "https")
		if !ok {
			continue
		}
		if d.rules != nil {
			rule := d.rules.Match(&proxy.Request{Method: http.MethodGet, Scheme: "https", Host: host, Path: "/"})
			if rule.Index < 0 {
				sev := sevWarn
				if rule.Policy == proxy.PolicyDeny {
					sev = sevError
				}
				consequence := ""
				if rule.Policy == proxy.PolicyDeny {
					consequence = ": nobody can reach it"
				}
				d.add(sev, "routes[%d] host %q matches no access rule, so default_policy %q applies to it%s. Add a rule for it.",
					i, rt.Host, rule.Policy, consequence)
			}
		}
		u, err := url.Parse(rt.Upstream)
		if err != nil || u.Host == "" || !dial {
			continue
		}
		addr := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			addr = net.JoinHostPort(u.Hostname(), port)
		}
		dctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			d.add(sevError, "routes[%d] upstream %s cannot be reached (%v): requests to %s will get 502.", i, u.Redacted(), err, rt.Host)
			continue
		}
		conn.Close()
		d.add(sevOK, "routes[%d] upstream %s answers", i, u.Redacted())
	}
}

func (d *doctor) checkDataDir() {
	if dsn, _ := secretValue(d.cfg.Storage.Postgres.DSN, d.cfg.Storage.Postgres.DSNFile, "storage.postgres.dsn"); dsn != "" {
		return // keys still live in data_dir, but only when not given inline; the store is elsewhere
	}
	dir := d.cfg.DataDir
	if dir == "" {
		return
	}
	// Latchkey creates data_dir on start: test the nearest directory that exists.
	probe := dir
	for {
		st, err := os.Stat(probe)
		if err == nil {
			if !st.IsDir() {
				d.add(sevError, "data_dir %q: %s is not a directory", dir, probe)
				return
			}
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	f, err := os.CreateTemp(probe, ".latchkey-doctor-*")
	if err != nil {
		d.add(sevError, "data_dir %q is not writable (%v): Latchkey cannot create its database and keys there.", dir, errors.Unwrap(err))
		return
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	d.add(sevOK, "data_dir %q is writable", dir)
}

// checkClock compares our clock with the Date header of the first upstream or portal that answers.
func (d *doctor) checkClock(ctx context.Context) {
	var candidates []string
	for _, rt := range d.cfg.Routes {
		candidates = append(candidates, rt.Upstream)
	}
	if d.public != nil {
		candidates = append(candidates, baseURLOf(d.public)+"/.latchkey/healthz")
	}
	for _, c := range candidates {
		rctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodHead, c, nil)
		if err != nil {
			cancel()
			continue
		}
		resp, err := d.client.Do(req)
		cancel()
		if err != nil {
			continue
		}
		resp.Body.Close()
		date, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			continue
		}
		skew := d.now().Sub(date)
		host := req.URL.Host
		if skew < -maxClockSkew || skew > maxClockSkew {
			d.add(sevWarn, "this machine's clock and %s's differ by %s: session expiry and sign-in timeouts assume one time. Run NTP on both.", host, skew.Round(time.Second))
		} else {
			d.add(sevOK, "clock agrees with %s (within %s)", host, maxClockSkew)
		}
		return
	}
	d.add(sevInfo, "clock skew could not be checked: no upstream or public_url answered with a Date header")
}

func baseURLOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

// explainURL prints which rule a URL matches and what signed-out and signed-in requests get.
func (d *doctor) explainURL(out io.Writer, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.add(sevError, "--url %q is not an absolute http(s) URL", raw)
		return
	}
	host, ok := proxy.CanonicalHost(u.Host, u.Scheme)
	if !ok {
		d.add(sevError, "--url host %q is not a valid host name", u.Host)
		return
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	path, err := proxy.NormalizePath(p)
	if err != nil {
		d.add(sevError, "--url path %q is refused as ambiguous (%v): every request for it gets 400", p, err)
		return
	}
	if d.rules == nil {
		return
	}
	rule := d.rules.Match(&proxy.Request{Method: http.MethodGet, Scheme: u.Scheme, Host: host, Path: path})
	w := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	w("URL %s (host %s, path %s as the rules see it)", raw, host, path)
	if rule.Index < 0 {
		w("  rule:       none matches; access_control.default_policy %q applies", rule.Policy)
	} else {
		w("  rule:       access_control.rules[%d], policy %s", rule.Index, rule.Policy)
	}
	login := "the login page"
	if d.public != nil {
		login = baseURLOf(d.public) + "/.latchkey/login"
	}
	switch rule.Policy {
	case proxy.PolicyBypass:
		w("  signed out: 200, no identity headers (bypass)")
		w("  signed in:  200 with Remote-User and the other identity headers")
	case proxy.PolicyDeny:
		w("  signed out: 403 (denied)")
		w("  signed in:  403 (denied)")
	default:
		w("  signed out: a browser is redirected (302) to %s; scripts and Nginx get 401", login)
		var conds []string
		if rule.Index >= 0 {
			rc := d.cfg.AccessControl.Rules[rule.Index]
			if len(rc.Users) > 0 {
				conds = append(conds, "users "+strings.Join(rc.Users, ", "))
			}
			if len(rc.Groups) > 0 {
				conds = append(conds, "groups "+strings.Join(rc.Groups, ", "))
			}
		}
		who := "any signed-in user"
		if len(conds) > 0 {
			who = strings.Join(conds, " or ") + " (others get 403)"
		}
		w("  signed in:  200 with Remote-User for %s", who)
		if rule.MaxAge > 0 {
			w("              after a passkey check older than %s: back through the login page for a fresh one (step-up)", rule.MaxAge)
		}
		if rule.DeviceBound {
			w("              only sessions made with a device-bound (not synced) passkey; others get 403")
		}
		if len(rule.Authenticators) > 0 {
			names := make([]string, len(rule.Authenticators))
			for i, a := range rule.Authenticators {
				names[i] = a
				if n := auth.AAGUIDName(a); n != "" {
					names[i] = a + " (" + n + ")"
				}
			}
			w("              only passkeys from authenticators %s; others get 403", strings.Join(names, ", "))
		}
		if _, other := d.otherDomain(hostName(host)); d.public != nil && !other && hostName(host) != strings.ToLower(d.public.Hostname()) {
			cd := strings.ToLower(strings.TrimPrefix(d.cfg.Session.CookieDomain, "."))
			if cd == "" || !domainCovers(cd, hostName(host)) {
				d.add(sevError, "--url host %s does not receive the session cookie (session.cookie_domain %q): signed-in users loop back to the login page there", host, d.cfg.Session.CookieDomain)
			}
		}
	}
	if u.Scheme == "http" && d.public != nil && d.public.Scheme == "https" {
		d.add(sevWarn, "--url is http while public_url is https: the Secure session cookie is not sent over http, and the login page refuses to return there")
	}
	w("")
}
