package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkeyhq/latchkey/auth"
)

// CookieConfig is one domain of session.cookies (issue 23): the session cookie's domain and the
// portal (Latchkey's login and account pages) on it.
type CookieConfig struct {
	Domain    string `mapstructure:"domain"`
	PublicURL string `mapstructure:"public_url"`
}

// normalize makes session.cookies[0] and the one-domain shorthand (server.public_url,
// session.cookie_domain) one thing: with a list, the shorthand keys left at their defaults take
// the first item's values, so that every user of public_url sees the primary portal.
func (c *Config) normalize() {
	if len(c.Session.Cookies) == 0 {
		return
	}
	first := c.Session.Cookies[0]
	if c.Server.PublicURL == "" || c.Server.PublicURL == Default().Server.PublicURL {
		c.Server.PublicURL = first.PublicURL
	}
	if c.Session.CookieDomain == "" {
		c.Session.CookieDomain = first.Domain
	}
}

func cleanDomain(d string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d)), "."), ".")
}

// validateCookies checks session.cookies: each domain a host name covering its portal, no
// domain inside another (a cookie of one would reach the other), and the first item agreeing
// with the shorthand keys.
func (c *Config) validateCookies(bad func(key, format string, args ...any)) {
	list := c.Session.Cookies
	if len(list) == 0 {
		return
	}
	names := make([]string, len(list))
	for i, cc := range list {
		key := fmt.Sprintf("session.cookies[%d]", i)
		d := cleanDomain(cc.Domain)
		names[i] = d
		switch {
		case d == "" && len(list) > 1:
			bad(key+".domain", "must be set when several domains are configured (e.g. example.org)")
		case d != "" && (strings.ContainsAny(d, ":/@ ") || net.ParseIP(d) != nil || !strings.Contains(d, ".") && d != "localhost"):
			bad(key+".domain", "must be a domain name such as example.org, got %q", cc.Domain)
		}
		u, err := url.Parse(cc.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			bad(key+".public_url", "must be an origin such as https://auth.example.org, got %q", cc.PublicURL)
			continue
		}
		host := strings.ToLower(u.Hostname())
		if net.ParseIP(host) != nil {
			bad(key+".public_url", "WebAuthn needs a host name, not an IP address, got %q", cc.PublicURL)
		}
		if d != "" && !domainCovers(d, host) {
			bad(key+".domain", "%q does not cover its public_url's host %q", cc.Domain, host)
		}
		for j := 0; j < i; j++ {
			if names[j] == "" || d == "" {
				continue
			}
			if domainCovers(names[j], d) || domainCovers(d, names[j]) {
				bad(key+".domain", "%q overlaps session.cookies[%d].domain %q: a cookie of one would be sent to the other", cc.Domain, j, list[j].Domain)
			}
		}
	}
	if c.Server.PublicURL != list[0].PublicURL {
		bad("session.cookies[0].public_url", "%q differs from server.public_url %q: the first domain's portal is public_url; set one of them", list[0].PublicURL, c.Server.PublicURL)
	}
	if cleanDomain(c.Session.CookieDomain) != names[0] {
		bad("session.cookies[0].domain", "%q differs from session.cookie_domain %q: set one of them", list[0].Domain, c.Session.CookieDomain)
	}
}

// authDomains turns the configured domains into auth's list; the first one is public.
func authDomains(cfg Config, public *url.URL) []auth.Domain {
	if len(cfg.Session.Cookies) == 0 {
		return []auth.Domain{{Name: cleanDomain(cfg.Session.CookieDomain), PublicURL: public}}
	}
	out := []auth.Domain{{Name: cleanDomain(cfg.Session.Cookies[0].Domain), PublicURL: public}}
	for _, cc := range cfg.Session.Cookies[1:] {
		u, err := url.Parse(cc.PublicURL)
		if err != nil {
			continue // Validate refused it already
		}
		u.Path = ""
		out = append(out, auth.Domain{Name: cleanDomain(cc.Domain), PublicURL: u})
	}
	return out
}

// checkWellKnown probes https://RP_ID/.well-known/webauthn with several domains: browsers fetch
// it before they let a portal outside the RP ID use a passkey of the RP ID (Related Origin
// Requests), and it is served by whatever answers on the RP ID's host, which is Latchkey only
// when the proxy routes that path to it.
func (d *doctor) checkWellKnown(ctx context.Context) {
	if len(d.cfg.Session.Cookies) < 2 || d.public == nil {
		return
	}
	rp := strings.ToLower(d.cfg.WebAuthn.RPID)
	if rp == "" {
		rp = strings.ToLower(d.public.Hostname())
	}
	var need []string
	for _, cc := range d.cfg.Session.Cookies {
		u, err := url.Parse(cc.PublicURL)
		if err != nil || u.Host == "" || domainCovers(rp, strings.ToLower(u.Hostname())) {
			continue
		}
		need = append(need, u.Scheme+"://"+u.Host)
	}
	if len(need) == 0 {
		d.add(sevOK, "every portal is inside webauthn.rp_id %q: passkeys need no related origins", rp)
		return
	}
	where := "https://" + rp + "/.well-known/webauthn"
	fix := "browsers then refuse the passkey on " + strings.Join(need, ", ") + " (people can still sign in on the RP ID's portal and use \"Continue to\"). " +
		"Route /.well-known/webauthn on " + rp + " to Latchkey (README: Several domains)."
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		d.add(sevError, "%s: %v", where, err)
		return
	}
	resp, err := d.client.Do(req)
	if err != nil {
		d.add(sevError, "%s is not reachable (%v): %s", where, err, fix)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.add(sevError, "%s answers %d, not Latchkey's list of related origins: %s", where, resp.StatusCode, fix)
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		d.add(sevError, "%s answers with Content-Type %q; browsers need application/json: %s", where, ct, fix)
		return
	}
	var body struct {
		Origins []string `json:"origins"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		d.add(sevError, "%s is not the JSON of related origins (%v): %s", where, err, fix)
		return
	}
	var missing []string
	for _, o := range need {
		found := false
		for _, got := range body.Origins {
			if got == o {
				found = true
			}
		}
		if !found {
			missing = append(missing, o)
		}
	}
	if len(missing) > 0 {
		d.add(sevError, "%s does not list %s (it lists %v): %s", where, strings.Join(missing, ", "), body.Origins, fix)
		return
	}
	d.add(sevOK, "%s lists %s: one passkey works on every portal in browsers with related origins", where, strings.Join(need, ", "))
}

// otherDomain finds the session.cookies item after the first whose domain covers a host name.
func (d *doctor) otherDomain(name string) (CookieConfig, bool) {
	if len(d.cfg.Session.Cookies) < 2 {
		return CookieConfig{}, false
	}
	for _, cc := range d.cfg.Session.Cookies[1:] {
		if dn := cleanDomain(cc.Domain); dn != "" && domainCovers(dn, strings.ToLower(name)) {
			return cc, true
		}
	}
	return CookieConfig{}, false
}
