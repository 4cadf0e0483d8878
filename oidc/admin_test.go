package oidc_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/oidc"
)

var (
	adminCSRF    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	newClientID  = regexp.MustCompile(`id="oidc-new-client-id">([^<]+)<`)
	newClientSec = regexp.MustCompile(`id="oidc-new-client-secret">([^<]+)<`)
)

func postForm(f *fixture, b *lktest.Client, path string, form url.Values, site string) *lktest.Response {
	return b.Do(http.MethodPost, "", path, strings.NewReader(form.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"null"}, "Sec-Fetch-Site": {site}})
}

// tokenStatus is what the token endpoint answers a client's credentials (with a bogus grant): 400
// for a known client with the right secret, 401 otherwise.
func (f *fixture) tokenStatus(id, secret string) int {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.issuer+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"bogus"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAdminApps(t *testing.T) {
	f := newFixture(t)
	root := f.user("root", "admins")
	bob := f.user("bob")
	page := oidc.Prefix + "/admin"

	if r := bob.b.Get(page); r.StatusCode != http.StatusForbidden {
		t.Fatalf("non-admin: %d", r.StatusCode)
	}
	if r := f.env.Client().Get(page); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/.latchkey/login?rd=") {
		t.Fatalf("signed out: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	r := root.b.Get(page)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.Body), f.issuer) {
		t.Fatalf("admin page: %d", r.StatusCode)
	}
	csrf := string(adminCSRF.FindSubmatch(r.Body)[1])
	add := url.Values{"csrf": {csrf}, "name": {"grafana"}, "redirect_uris": {"https://grafana.example.com/login/generic_oauth\r\nhttps://g2.example.com/cb\r\n"}, "groups": {"ops, admins"},
		"backchannel_logout_uri": {"https://grafana.example.com/logout"}}

	if r := postForm(f, root.b, page+"/clients", add, "cross-site"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site add: %d", r.StatusCode)
	}
	bad := url.Values{}
	for k, v := range add {
		bad[k] = v
	}
	bad.Set("csrf", "x")
	if r := postForm(f, root.b, page+"/clients", bad, "same-origin"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong csrf: %d", r.StatusCode)
	}
	if r := postForm(f, bob.b, page+"/clients", add, "same-origin"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("non-admin add: %d", r.StatusCode)
	}
	if n := f.env.Count("oidc_clients", ""); n != 0 {
		t.Fatalf("%d clients after refused posts", n)
	}

	r = postForm(f, root.b, page+"/clients", add, "same-origin")
	id, sec := newClientID.FindSubmatch(r.Body), newClientSec.FindSubmatch(r.Body)
	if r.StatusCode != http.StatusOK || id == nil || sec == nil {
		t.Fatalf("add: %d %s", r.StatusCode, r.Body)
	}
	if s := f.tokenStatus(string(id[1]), string(sec[1])); s != http.StatusBadRequest {
		t.Fatalf("the shown secret at the token endpoint: %d", s)
	}
	c, err := f.env.Store.OIDCClientByName(f.ctx, "grafana")
	if err != nil || len(c.RedirectURIs) != 2 || strings.Join(c.Groups, ",") != "ops,admins" || c.BackchannelLogoutURI != "https://grafana.example.com/logout" {
		t.Fatalf("stored client: %+v %v", c, err)
	}
	if r := root.b.Get(page); strings.Contains(string(r.Body), string(sec[1])) {
		t.Fatal("the secret is shown again")
	}
	if r := postForm(f, root.b, page+"/clients", add, "same-origin"); r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.Body), "exists already") {
		t.Fatalf("duplicate: %d", r.StatusCode)
	}

	r = postForm(f, root.b, page+"/clients/rotate-secret", url.Values{"csrf": {csrf}, "name": {"grafana"}}, "same-origin")
	sec2 := newClientSec.FindSubmatch(r.Body)
	if sec2 == nil || f.tokenStatus(string(id[1]), string(sec[1])) != http.StatusUnauthorized || f.tokenStatus(string(id[1]), string(sec2[1])) != http.StatusBadRequest {
		t.Fatalf("rotate: %d", r.StatusCode)
	}
	postForm(f, root.b, page+"/clients/remove", url.Values{"csrf": {csrf}, "name": {"grafana"}}, "same-origin")
	if f.env.Count("oidc_clients", "") != 0 || f.tokenStatus(string(id[1]), string(sec2[1])) != http.StatusUnauthorized {
		t.Fatal("remove did not remove")
	}
	for _, ev := range []string{"oidc_client_added", "oidc_client_secret_rotated", "oidc_client_removed"} {
		if f.env.Count("audit", "event = ? AND detail LIKE '%by root%'", ev) != 1 {
			t.Errorf("%s not audited with the admin's name", ev)
		}
	}

	t.Run("an old passkey check is sent through step-up", func(t *testing.T) {
		f.env.Clock.Advance(6 * time.Minute)
		r := root.b.Get(page)
		loc, _ := url.Parse(r.Header.Get("Location"))
		if loc == nil || loc.Query().Get("stepup") != "1" || loc.Query().Get("rd") != f.issuer+"/admin" {
			t.Fatalf("old verification: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		if p := root.b.Get(loc.RequestURI()); !strings.Contains(string(p.Body), `data-rd="`+f.issuer+`/admin"`) {
			t.Fatal("the login page does not return to the Apps page")
		}
	})
}
