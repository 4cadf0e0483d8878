package oidc_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/oidc"
)

type claims struct {
	Sub               string   `json:"sub"`
	PreferredUsername string   `json:"preferred_username"`
	Name              string   `json:"name"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Groups            []string `json:"groups"`
	AMR               []string `json:"amr"`
	AuthTime          int64    `json:"auth_time"`
	Nonce             string   `json:"nonce"`
	AZP               string   `json:"azp"`
}

func TestDiscovery(t *testing.T) {
	f := newFixture(t)
	if !strings.HasSuffix(f.issuer, "/.latchkey/oidc") || !strings.HasPrefix(f.issuer, f.env.Origin()) {
		t.Fatalf("issuer %q", f.issuer)
	}
	r, err := http.Get(f.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != f.issuer || doc["authorization_response_iss_parameter_supported"] != true ||
		doc["backchannel_logout_supported"] != true || doc["backchannel_logout_session_supported"] != true {
		t.Fatalf("discovery: %v", doc)
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
		"revocation_endpoint", "introspection_endpoint", "end_session_endpoint"} {
		v, _ := doc[k].(string)
		if !strings.HasPrefix(v, f.issuer+"/") {
			t.Errorf("%s = %q, not under the issuer", k, v)
		}
	}
	want := map[string][]string{
		"response_types_supported":         {"code"},
		"grant_types_supported":            {"authorization_code", "refresh_token"},
		"code_challenge_methods_supported": {"S256"},
		"scopes_supported":                 {"openid", "profile", "email", "groups", "offline_access"},
	}
	for k, w := range want {
		var got []string
		for _, v := range doc[k].([]any) {
			got = append(got, v.(string))
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
	if algs := doc["id_token_signing_alg_values_supported"]; algs == nil || !strings.Contains(jsonText(algs), "RS256") {
		t.Errorf("signing algs %v", algs)
	}
}

func jsonText(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestCodeFlowWithPKCE(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice", "admins", "family")
	c := f.addClient(oidc.NewClient{Name: "grafana", Trusted: true})

	tok, idt := f.signIn(c, alice)
	if idt.Issuer != f.issuer || !slices.Equal(idt.Audience, []string{c.id}) || idt.Subject != alice.u.ID {
		t.Fatalf("ID token iss %q aud %v sub %q", idt.Issuer, idt.Audience, idt.Subject)
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.PreferredUsername != "alice" || cl.Name != "Alice" || cl.Email != "alice@example.com" || !cl.EmailVerified ||
		!slices.Equal(cl.Groups, []string{"admins", "family"}) || cl.AZP != c.id {
		t.Fatalf("ID token claims %+v", cl)
	}
	if !slices.Equal(cl.AMR, []string{"hwk", "user", "mfa"}) || cl.AuthTime == 0 {
		t.Fatalf("amr %v auth_time %d", cl.AMR, cl.AuthTime)
	}
	if tok.RefreshToken == "" || tok.AccessToken == "" || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("token response: access %t refresh %t expiry %v", tok.AccessToken != "", tok.RefreshToken != "", tok.Expiry)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}

	info, err := f.userinfo(tok)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var ui claims
	info.Claims(&ui)
	if info.Subject != alice.u.ID || info.Email != "alice@example.com" || ui.PreferredUsername != "alice" || !slices.Equal(ui.Groups, []string{"admins", "family"}) {
		t.Fatalf("userinfo %+v", ui)
	}

	t.Run("a synced passkey says swk", func(t *testing.T) {
		u, token := f.env.AddUser("synced")
		pk := lktest.NewPasskey()
		pk.Flags |= lktest.FlagBE | lktest.FlagBS
		b := f.env.Client()
		b.Enrol(pk, token)
		_, idt := f.signIn(c, &user{u: u, pk: pk, b: b})
		var cl claims
		idt.Claims(&cl)
		if !slices.Equal(cl.AMR, []string{"swk", "user", "mfa"}) {
			t.Fatalf("amr %v", cl.AMR)
		}
	})

	t.Run("the session is shared with forward auth", func(t *testing.T) {
		// One passkey sign-in served both: no second login was needed for the app.
		if n := f.env.Count("sessions", "user_id = ?", alice.u.ID); n != 1 {
			t.Fatalf("%d sessions, want the one from the enrolment", n)
		}
	})

	t.Run("codes, secrets and tokens are stored only as hashes", func(t *testing.T) {
		dump := f.env.Tables()
		for _, table := range []string{"oidc_tokens", "oidc_auth_requests", "oidc_clients"} {
			rows, err := f.env.Store.DB().Query("SELECT * FROM " + table)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				rows.Scan(ptrs...)
				for _, v := range vals {
					s := ""
					switch x := v.(type) {
					case string:
						s = x
					case []byte:
						s = string(x)
					}
					dump += s + "\n"
				}
			}
			rows.Close()
		}
		for name, secret := range map[string]string{"refresh token": tok.RefreshToken, "access token": tok.AccessToken, "client secret": c.secret} {
			if strings.Contains(dump, secret) {
				t.Errorf("the %s is stored in clear", name)
			}
		}
	})

	t.Run("audited", func(t *testing.T) {
		if f.env.Count("audit", "event = 'oidc_authorized' AND user_id = ?", alice.u.ID) != 1 || f.env.Count("audit", "event = 'oidc_grant' AND user_id = ?", alice.u.ID) != 1 {
			t.Fatal("authorization and grant not audited")
		}
	})
}

func TestPublicClientNeedsPKCE(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "immich-app", Public: true, Trusted: true, RedirectURIs: []string{"app.immich:///oauth-callback"}})

	t.Run("without a code challenge the request is refused at the redirect URI", func(t *testing.T) {
		u := c.cfg.AuthCodeURL("st1", gooidc.Nonce("n"))
		s := f.browse(alice.b, u)
		loc, _ := url.Parse(s.location)
		if s.location == "" || loc.Scheme != "app.immich" || loc.Query().Get("error") != "invalid_request" ||
			loc.Query().Get("state") != "st1" || loc.Query().Get("iss") != f.issuer {
			t.Fatalf("no PKCE: %d %s", s.resp.StatusCode, s.location)
		}
	})
	t.Run("plain is refused", func(t *testing.T) {
		u := c.cfg.AuthCodeURL("st2", oauth2.SetAuthURLParam("code_challenge", "abc"), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		s := f.browse(alice.b, u)
		if !strings.Contains(s.location, "error=invalid_request") {
			t.Fatalf("plain PKCE: %s", s.location)
		}
	})
	t.Run("with S256 and the right verifier", func(t *testing.T) {
		fl := newFlow()
		code := f.code(f.authorize(c, alice, fl), fl)
		if _, err := c.cfg.Exchange(f.ctx, code, oauth2.SetAuthURLParam("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier")); err == nil {
			t.Fatal("a wrong verifier was accepted")
		}
		fl = newFlow()
		code = f.code(f.authorize(c, alice, fl), fl)
		tok, err := c.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(fl.verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		f.verify(c, tok, fl.nonce)
	})
}

func TestWrongRedirectURIIsRefusedWithoutRedirect(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true, RedirectURIs: []string{"https://app.example.com/cb"}})
	for _, bad := range []string{"https://evil.example.com/cb", "https://app.example.com/cb/", "https://app.example.com/cb?x=1", "https://APP.example.com/cb"} {
		cfg := c.cfg
		cfg.RedirectURL = bad
		u := cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		r := alice.b.Get(f.portalPath(u))
		if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
			t.Errorf("redirect_uri %s: %d, Location %q", bad, r.StatusCode, r.Header.Get("Location"))
		}
	}
	r := alice.b.Get(oidc.Prefix + "/authorize?client_id=nobody&response_type=code&scope=openid&redirect_uri=" + url.QueryEscape("https://evil.example.com/"))
	if r.StatusCode != http.StatusBadRequest || r.Header.Get("Location") != "" {
		t.Errorf("unknown client: %d, Location %q", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})
	fl := newFlow()
	code := f.code(f.authorize(c, alice, fl), fl)
	tok, err := c.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(fl.verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.userinfo(tok); err != nil {
		t.Fatalf("userinfo before the replay: %v", err)
	}
	_, err = c.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(fl.verifier))
	var re *oauth2.RetrieveError
	if err == nil || !asRetrieve(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("second exchange of a code: %v", err)
	}
	if _, err := f.userinfo(tok); err == nil {
		t.Fatal("the access token of a replayed code still works")
	}
	if _, err := c.refresh(tok.RefreshToken); err == nil {
		t.Fatal("the refresh token of a replayed code still works")
	}
	if f.env.Count("audit", "event = 'oidc_code_reused'") != 1 {
		t.Fatal("code reuse not audited")
	}

	t.Run("an expired code is refused", func(t *testing.T) {
		fl := newFlow()
		code := f.code(f.authorize(c, alice, fl), fl)
		f.env.Clock.Advance(61 * time.Second)
		if _, err := c.cfg.Exchange(f.ctx, code, oauth2.VerifierOption(fl.verifier)); err == nil {
			t.Fatal("a code older than a minute was accepted")
		}
	})
}

func asRetrieve(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if !ok {
		return false
	}
	*re = e
	return true
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})
	tok, _ := f.signIn(c, alice)

	t2, err := c.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if t2.RefreshToken == "" || t2.RefreshToken == tok.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	f.verify(c, t2, "")
	if _, err := f.userinfo(t2); err != nil {
		t.Fatalf("userinfo with the refreshed access token: %v", err)
	}
	// The first refresh token is presented again: someone kept a copy.
	if _, err := c.refresh(tok.RefreshToken); err == nil {
		t.Fatal("a rotated refresh token was accepted")
	}
	if _, err := c.refresh(t2.RefreshToken); err == nil {
		t.Fatal("the family survived the reuse of a rotated token")
	}
	if _, err := f.userinfo(t2); err == nil {
		t.Fatal("the family's access token survived the reuse")
	}
	if f.env.Count("audit", "event = 'oidc_refresh_reused'") != 1 || f.env.Count("audit", "event = 'oidc_refresh'") != 1 {
		t.Fatal("refresh and reuse not audited")
	}
	// Another sign-in is a new family, untouched by the revocation.
	tok3, _ := f.signIn(c, alice)
	if _, err := c.refresh(tok3.RefreshToken); err != nil {
		t.Fatalf("a new family: %v", err)
	}

	t.Run("no refresh token without offline_access", func(t *testing.T) {
		c2 := f.addClient(oidc.NewClient{Name: "no-offline", Trusted: true}, "openid", "profile")
		tok, _ := f.signIn(c2, alice)
		if tok.RefreshToken != "" {
			t.Fatal("a refresh token without offline_access")
		}
	})
	t.Run("refresh tokens end at their absolute lifetime", func(t *testing.T) {
		tok, _ := f.signIn(c, alice)
		f.env.Clock.Advance(oidc.DefaultRefreshTokenLifetime + time.Minute)
		if _, err := c.refresh(tok.RefreshToken); err == nil {
			t.Fatal("a refresh token past its lifetime was accepted")
		}
	})
}

func TestRevocation(t *testing.T) {
	f := newFixture(t)
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})

	t.Run("user disabled", func(t *testing.T) {
		u := f.user("disabled")
		tok, _ := f.signIn(c, u)
		if err := f.env.Store.SetUserDisabled(f.ctx, u.u.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh after the user was disabled")
		}
		if _, err := f.userinfo(tok); err == nil {
			t.Fatal("userinfo after the user was disabled")
		}
	})
	t.Run("passkey behind the session removed", func(t *testing.T) {
		u := f.user("pkremoved")
		tok, _ := f.signIn(c, u)
		if err := f.env.Store.DeleteCredential(f.ctx, u.u.ID, u.pk.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := c.refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh after the passkey was removed")
		}
	})
	t.Run("sign out everywhere", func(t *testing.T) {
		u := f.user("everywhere")
		tok, _ := f.signIn(c, u)
		if r := u.b.PostJSON("/.latchkey/api/sessions/revoke-all", map[string]string{}); r.StatusCode != http.StatusOK {
			t.Fatalf("revoke-all: %d %s", r.StatusCode, r.Body)
		}
		if _, err := c.refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh after sign out everywhere")
		}
	})
	t.Run("client removed", func(t *testing.T) {
		u := f.user("clientgone")
		c2 := f.addClient(oidc.NewClient{Name: "gone", Trusted: true})
		tok, _ := f.signIn(c2, u)
		if err := f.env.Store.DeleteOIDCClient(f.ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh after the client was removed")
		}
		if _, err := f.userinfo(tok); err == nil {
			t.Fatal("userinfo after the client was removed")
		}
	})
	t.Run("revocation endpoint", func(t *testing.T) {
		u := f.user("revoker")
		tok, _ := f.signIn(c, u)
		form := url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
		req, _ := http.NewRequest(http.MethodPost, f.issuer+"/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.id, c.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if _, err := c.refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh after revocation")
		}
		if _, err := f.userinfo(tok); err == nil {
			t.Fatal("the family's access token survived the revocation of its refresh token")
		}
		if f.env.Count("audit", "event = 'oidc_revoke'") != 1 {
			t.Fatal("revocation not audited")
		}
	})
	t.Run("introspection", func(t *testing.T) {
		u := f.user("introspected")
		tok, _ := f.signIn(c, u)
		other := f.addClient(oidc.NewClient{Name: "other", Trusted: true})
		introspect := func(as ...*rpClient) map[string]any {
			form := url.Values{"token": {tok.AccessToken}}
			req, _ := http.NewRequest(http.MethodPost, f.issuer+"/oauth/introspect", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			who := c
			if len(as) > 0 {
				who = as[0]
			}
			req.SetBasicAuth(who.id, who.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			return out
		}
		if got := introspect(); got["active"] != true || got["sub"] != u.u.ID || got["client_id"] != c.id {
			t.Fatalf("introspection of a live token: %v", got)
		}
		if got := introspect(other); got["active"] == true {
			t.Fatalf("another client introspected the token: %v", got)
		}
		f.env.Store.SetUserDisabled(f.ctx, u.u.ID, true)
		if got := introspect(); got["active"] == true {
			t.Fatalf("introspection after disable: %v", got)
		}
	})
}

func TestMaxAgeForcesPasskeyCheck(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "vault", Trusted: true})
	f.env.Clock.Advance(5 * time.Minute)

	for _, tc := range []struct {
		name  string
		param oauth2.AuthCodeOption
	}{
		{"max_age=0", oauth2.SetAuthURLParam("max_age", "0")},
		{"prompt=login", oauth2.SetAuthURLParam("prompt", "login")},
		{"max_age=60 after five minutes", oauth2.SetAuthURLParam("max_age", "60")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.env.Clock.Advance(5 * time.Minute)
			fl := newFlow()
			s := f.browse(alice.b, c.authURL(fl, tc.param))
			loc, _ := url.Parse(s.location)
			if s.location == "" || loc.Path != "/.latchkey/login" || loc.Query().Get("stepup") != "1" {
				t.Fatalf("no step-up: %d %s", s.resp.StatusCode, s.location)
			}
			rd := loc.Query().Get("rd")
			// The login page accepts the way back (it is a return page, not replaced by the account page).
			if page := alice.b.Get(loc.RequestURI()); !bytes.Contains(page.Body, []byte(`data-rd="`+htmlAttr(rd)+`"`)) {
				t.Fatalf("the login page does not return to the provider:\n%s", page.Body)
			}
			f.env.Clock.Advance(2 * time.Second) // the person takes a moment to confirm
			before := f.env.Clock.Now()
			r := alice.b.PostJSON("/.latchkey/api/login/begin", map[string]any{"step_up": true})
			o, err := lktest.ParseOptions(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			fin := alice.b.FinishLogin(alice.pk.Assert(o, f.env.Origin(), lktest.Ceremony{}), rd)
			var out struct {
				Redirect string `json:"redirect"`
			}
			if fin.StatusCode != http.StatusOK || fin.JSON(&out) != nil || out.Redirect != rd {
				t.Fatalf("step-up finish: %d %s (rd %s)", fin.StatusCode, fin.Body, rd)
			}
			s = f.browse(alice.b, out.Redirect)
			if s.location == "" || f.portalPath(s.location) != "" {
				t.Fatalf("after the step-up: %d %s", s.resp.StatusCode, s.location)
			}
			loc, _ = url.Parse(s.location)
			tok, err := c.cfg.Exchange(f.ctx, f.code(loc, fl), oauth2.VerifierOption(fl.verifier))
			if err != nil {
				t.Fatal(err)
			}
			var cl claims
			f.verify(c, tok, fl.nonce).Claims(&cl)
			if cl.AuthTime < before.Unix() {
				t.Fatalf("auth_time %d is older than the step-up at %d", cl.AuthTime, before.Unix())
			}
		})
	}

	t.Run("max_age met by a recent verification needs no step-up", func(t *testing.T) {
		fl := newFlow()
		f.code(f.authorize(c, alice, fl, oauth2.SetAuthURLParam("max_age", "3600")), fl)
	})
	t.Run("prompt=none with an old verification answers login_required", func(t *testing.T) {
		f.env.Clock.Advance(5 * time.Minute)
		fl := newFlow()
		s := f.browse(alice.b, c.authURL(fl, oauth2.SetAuthURLParam("max_age", "0"), oauth2.SetAuthURLParam("prompt", "none")))
		if !strings.Contains(s.location, "error=login_required") || !strings.Contains(s.location, "iss=") {
			t.Fatalf("prompt=none: %s", s.location)
		}
	})
}

func htmlAttr(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }

func TestSignInThroughLatchkeyLogin(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})
	b := f.env.Client() // a browser with no session
	fl := newFlow()
	s := f.browse(b, c.authURL(fl))
	loc, _ := url.Parse(s.location)
	if loc == nil || loc.Path != "/.latchkey/login" || loc.Query().Get("stepup") != "" {
		t.Fatalf("not sent to the login page: %d %s", s.resp.StatusCode, s.location)
	}
	rd := b.Login(alice.pk, loc.Query().Get("rd"))
	if !strings.HasPrefix(rd, f.issuer+"/login?id=") {
		t.Fatalf("login returned to %q", rd)
	}
	s = f.browse(b, rd)
	loc, _ = url.Parse(s.location)
	if _, err := c.cfg.Exchange(f.ctx, f.code(loc, fl), oauth2.VerifierOption(fl.verifier)); err != nil {
		t.Fatal(err)
	}
	t.Run("prompt=none without a session answers login_required", func(t *testing.T) {
		fl := newFlow()
		s := f.browse(f.env.Client(), c.authURL(fl, oauth2.SetAuthURLParam("prompt", "none")))
		if !strings.Contains(s.location, "error=login_required") || !strings.Contains(s.location, "state="+fl.state) {
			t.Fatalf("prompt=none: %s", s.location)
		}
	})
	t.Run("op's callback cannot be used to fetch a code", func(t *testing.T) {
		if r := b.Get(oidc.Prefix + "/authorize/callback?id=x"); r.StatusCode != http.StatusNotFound {
			t.Fatalf("callback: %d", r.StatusCode)
		}
	})
}

func TestConsentAndGroups(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice", "family")
	bob := f.user("bob", "guests")
	c := f.addClient(oidc.NewClient{Name: "Immich", Groups: []string{"family", "admins"}})

	t.Run("consent is asked once", func(t *testing.T) {
		fl := newFlow()
		s := f.browse(alice.b, c.authURL(fl))
		if s.resp.StatusCode != http.StatusOK || !bytes.Contains(s.resp.Body, []byte("Allow Immich?")) {
			t.Fatalf("no consent page: %d %s", s.resp.StatusCode, s.resp.Body)
		}
		if csp := s.resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:9") {
			t.Fatalf("consent CSP does not let the form's redirect through: %s", csp)
		}
		// A form post from another site is refused, whatever it carries.
		id, csrf := consentID.FindSubmatch(s.resp.Body), consentCSRF.FindSubmatch(s.resp.Body)
		form := url.Values{"id": {string(id[1])}, "csrf": {string(csrf[1])}, "decision": {"allow"}}
		r := alice.b.Do(http.MethodPost, "", oidc.Prefix+"/consent", strings.NewReader(form.Encode()), http.Header{
			"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}})
		if r.StatusCode != http.StatusForbidden || f.env.Count("oidc_consents", "") != 0 {
			t.Fatalf("cross-site consent: %d", r.StatusCode)
		}
		allowed := f.consent(alice.b, s.resp, "allow")
		loc, _ := url.Parse(allowed.location)
		if allowed.resp.StatusCode != http.StatusSeeOther || loc == nil {
			t.Fatalf("consent allow: %d %s", allowed.resp.StatusCode, allowed.location)
		}
		f.code(loc, fl)
		fl2 := newFlow()
		s = f.browse(alice.b, c.authURL(fl2))
		if s.location == "" || !strings.Contains(s.location, "code=") {
			t.Fatalf("consent asked twice: %d", s.resp.StatusCode)
		}
		if f.env.Count("audit", "event = 'oidc_consent'") != 1 {
			t.Fatal("consent not audited")
		}
		// prompt=consent asks again.
		s = f.browse(alice.b, c.authURL(newFlow(), oauth2.SetAuthURLParam("prompt", "consent")))
		if s.resp.StatusCode != http.StatusOK || !bytes.Contains(s.resp.Body, []byte("Allow Immich?")) {
			t.Fatalf("prompt=consent: %d %s", s.resp.StatusCode, s.location)
		}
	})
	t.Run("a user taken out of the client's groups gets no new tokens", func(t *testing.T) {
		erin := f.user("erin", "family")
		trusted := f.addClient(oidc.NewClient{Name: "FamilyOnly", Trusted: true, Groups: []string{"family"}})
		tok, _ := f.signIn(trusted, erin)
		erin.u.Groups = []string{"guests"}
		if err := f.env.Store.UpdateUser(f.ctx, erin.u); err != nil {
			t.Fatal(err)
		}
		if _, err := trusted.refresh(tok.RefreshToken); err == nil {
			t.Fatal("refresh after leaving the client's groups")
		}
	})
	t.Run("a wrong CSRF token is refused", func(t *testing.T) {
		carol := f.user("carol", "family")
		s := f.browse(carol.b, c.authURL(newFlow()))
		body := consentCSRF.ReplaceAll(s.resp.Body, []byte(`name="csrf" value="AAAA"`))
		r := f.consent(carol.b, &lktest.Response{Response: s.resp.Response, Body: body}, "allow")
		if r.resp.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong csrf: %d %s", r.resp.StatusCode, r.location)
		}
	})
	t.Run("deny returns access_denied", func(t *testing.T) {
		dave := f.user("dave", "admins")
		fl := newFlow()
		s := f.browse(dave.b, c.authURL(fl))
		d := f.consent(dave.b, s.resp, "deny")
		if !strings.Contains(d.location, "error=access_denied") || !strings.Contains(d.location, "state="+fl.state) {
			t.Fatalf("deny: %s", d.location)
		}
	})
	t.Run("a user outside the client's groups gets a 403 page", func(t *testing.T) {
		s := f.browse(bob.b, c.authURL(newFlow()))
		if s.resp.StatusCode != http.StatusForbidden || s.location != "" || !bytes.Contains(s.resp.Body, []byte("may not sign in to Immich")) {
			t.Fatalf("bob: %d %s", s.resp.StatusCode, s.location)
		}
		if f.env.Count("audit", "event = 'oidc_denied'") != 1 {
			t.Fatal("denial not audited")
		}
	})
}

func TestEndSession(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true, PostLogoutURIs: []string{"https://app.example.com/bye"}})
	tok, _ := f.signIn(c, alice)
	raw := tok.Extra("id_token").(string)

	t.Run("without id_token_hint Latchkey asks first", func(t *testing.T) {
		r := alice.b.Get(oidc.Prefix + "/end_session?client_id=" + c.id)
		if r.StatusCode != http.StatusFound || !strings.HasSuffix(r.Header.Get("Location"), "/.latchkey/logout") {
			t.Fatalf("no hint: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		if rr := alice.b.Forward("app.localhost", "/", nil); rr.StatusCode != http.StatusOK {
			t.Fatal("a link alone ended the session")
		}
	})
	t.Run("with id_token_hint the session ends", func(t *testing.T) {
		q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://app.example.com/bye"}, "state": {"s1"}}
		r := alice.b.Get(oidc.Prefix + "/end_session?" + q.Encode())
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "https://app.example.com/bye?state=s1" {
			t.Fatalf("end_session: %d %s %s", r.StatusCode, r.Header.Get("Location"), r.Body)
		}
		if rr := alice.b.Forward("app.localhost", "/", nil); rr.StatusCode == http.StatusOK {
			t.Fatal("the Latchkey session survived RP-initiated logout")
		}
		if _, err := c.refresh(tok.RefreshToken); err == nil {
			t.Fatal("the refresh token survived RP-initiated logout")
		}
	})
	t.Run("an unregistered post_logout_redirect_uri is refused", func(t *testing.T) {
		q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"https://evil.example.com/"}}
		r := alice.b.Get(oidc.Prefix + "/end_session?" + q.Encode())
		if r.StatusCode == http.StatusFound {
			t.Fatalf("redirected to %s", r.Header.Get("Location"))
		}
	})
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})
	tok, old := f.signIn(c, alice)
	oldRaw := tok.Extra("id_token").(string)
	kid := func(raw string) string {
		var h struct {
			Kid string `json:"kid"`
		}
		seg, _ := base64URL(strings.Split(raw, ".")[0])
		json.Unmarshal(seg, &h)
		return h.Kid
	}
	oldKid := kid(oldRaw)
	newKid, err := oidc.RotateSigningKey(f.ctx, f.env.Store, f.env.BlockKey, oidc.RS256, 0, f.env.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.env.Clock.Advance(11 * time.Second) // past the provider's key cache
	tok2, _ := f.signIn(c, alice)
	if kid(tok2.Extra("id_token").(string)) != newKid || newKid == oldKid {
		t.Fatalf("new tokens are not signed with the new key %s", newKid)
	}
	// A client that fetches the JWKS now still verifies the token signed before the rotation.
	rp, err := gooidc.NewProvider(f.ctx, f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Verifier(&gooidc.Config{ClientID: c.id}).Verify(f.ctx, oldRaw); err != nil {
		t.Fatalf("a token signed before the rotation no longer verifies: %v", err)
	}
	_ = old
	jwks := func() string {
		r, err := http.Get(f.issuer + "/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	if j := jwks(); !strings.Contains(j, oldKid) || !strings.Contains(j, newKid) {
		t.Fatalf("JWKS after rotation: %s", j)
	}
	f.env.Clock.Advance(oidc.DefaultIDTokenLifetime + 2*time.Minute)
	if j := jwks(); strings.Contains(j, oldKid) || !strings.Contains(j, newKid) {
		t.Fatalf("JWKS after the old tokens expired: %s", j)
	}

	t.Run("the keys in the database do not open without the session block key", func(t *testing.T) {
		_, err := oidc.RotateSigningKey(f.ctx, f.env.Store, lktest.RandomKey(32), oidc.RS256, 0, f.env.Clock.Now)
		if err != nil {
			t.Fatal(err) // adding a key needs no old key
		}
		p, err := oidc.New(oidc.Options{PublicURL: f.env.Public, Store: f.env.Store, Sessions: f.env.Auth, BlockKey: lktest.RandomKey(32)})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{header: http.Header{}}
		req, _ := http.NewRequest(http.MethodGet, f.issuer+"/keys", nil)
		p.ServeHTTP(rec, req)
		if rec.status == http.StatusOK && strings.Contains(rec.body.String(), `"kid"`) {
			t.Fatalf("a provider with another block key served the keys: %s", rec.body.String())
		}
	})
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func TestTokenEndpointRateLimit(t *testing.T) {
	f := newFixture(t, fixtureOpts{tokenRate: 1})
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})
	statuses := map[int]int{}
	for i := 0; i < 10; i++ {
		resp, err := http.PostForm(f.issuer+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
			"client_id": {c.id}, "client_secret": {c.secret}, "redirect_uri": {c.redirect}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusBadRequest] == 0 {
		t.Fatalf("statuses %v: want some 400 (bad code) and then 429", statuses)
	}
}

func TestES256(t *testing.T) {
	f := newFixture(t, fixtureOpts{alg: oidc.ES256})
	alice := f.user("alice")
	c := f.addClient(oidc.NewClient{Name: "app", Trusted: true})
	f.rp = mustProvider(t, f)
	tok, _ := f.signIn(c, alice)
	if !strings.Contains(string(must(base64URL(strings.Split(tok.Extra("id_token").(string), ".")[0]))), `"ES256"`) {
		t.Fatal("not signed with ES256")
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func mustProvider(t *testing.T, f *fixture) *gooidc.Provider {
	p, err := gooidc.NewProvider(f.ctx, f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
