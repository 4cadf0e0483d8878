package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// cliLine returns the value of a "key: value" line, failing when it is missing or repeated.
func cliLine(t *testing.T, out, key string) string {
	t.Helper()
	var vals []string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+": "); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) != 1 || vals[0] == "" {
		t.Fatalf("want one %q line in:\n%s", key, out)
	}
	return vals[0]
}

// TestOIDCClientCLI drives `latchkey oidc ...` against a running serve: the server sees each
// change made by the CLI (a separate handle on the same database).
func TestOIDCClientCLI(t *testing.T) {
	r, _ := startServe(t, "http", nil)
	issuer := r.public.String() + "/.latchkey/oidc"
	tokenStatus := func(id, secret string) int {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}}
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/.latchkey/oidc/oauth/token", strings.NewReader(form.Encode()))
		req.Host = r.public.Host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	out := mustCLI(t, "oidc", "client", "add", "grafana", "--redirect-uri", "https://grafana.example.com/login/generic_oauth",
		"--redirect-uri", "https://grafana.example.com/other", "--groups", "admins,ops")
	id, secret := cliLine(t, out, "client_id"), cliLine(t, out, "client_secret")
	if cliLine(t, out, "issuer") != issuer {
		t.Fatalf("issuer line in:\n%s", out)
	}
	// A right secret gets as far as the (bogus) refresh token; a wrong one is an unknown client.
	if s := tokenStatus(id, secret); s != http.StatusBadRequest {
		t.Fatalf("token endpoint with the printed secret: %d", s)
	}
	if s := tokenStatus(id, secret+"x"); s != http.StatusUnauthorized {
		t.Fatalf("token endpoint with a wrong secret: %d", s)
	}

	pub := mustCLI(t, "oidc", "client", "add", "immich-app", "--redirect-uri", "app.immich:///oauth-callback", "--public", "--trusted")
	cliLine(t, pub, "client_id")
	if strings.Contains(pub, "client_secret") {
		t.Fatalf("a public client got a secret:\n%s", pub)
	}
	if _, errs, code := cli(t, "oidc", "client", "add", "grafana", "--redirect-uri", "https://x.example.com/cb"); code == 0 || !strings.Contains(errs, "exists") {
		t.Fatalf("duplicate name: exit %d %s", code, errs)
	}
	if _, errs, code := cli(t, "oidc", "client", "add", "nouri"); code == 0 || !strings.Contains(errs, "redirect-uri") {
		t.Fatalf("no redirect URI: exit %d %s", code, errs)
	}
	if _, _, code := cli(t, "oidc", "client", "add", "frag", "--redirect-uri", "https://x.example.com/cb#f"); code == 0 {
		t.Fatal("a redirect URI with a fragment was accepted")
	}

	list := mustCLI(t, "oidc", "client", "list")
	for _, want := range []string{"grafana", id, "confidential", "admins,ops", "immich-app", "public", "trusted", "https://grafana.example.com/other"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, secret) {
		t.Fatal("list prints the secret")
	}

	rot := mustCLI(t, "oidc", "client", "rotate-secret", "grafana")
	secret2 := cliLine(t, rot, "client_secret")
	if s := tokenStatus(id, secret); s != http.StatusUnauthorized {
		t.Fatalf("the old secret after rotation: %d", s)
	}
	if s := tokenStatus(id, secret2); s != http.StatusBadRequest {
		t.Fatalf("the new secret: %d", s)
	}
	if _, _, code := cli(t, "oidc", "client", "rotate-secret", "immich-app"); code == 0 {
		t.Fatal("rotate-secret on a public client succeeded")
	}

	mustCLI(t, "oidc", "client", "remove", "grafana")
	if s := tokenStatus(id, secret2); s != http.StatusUnauthorized {
		t.Fatalf("a removed client: %d", s)
	}
	if _, _, code := cli(t, "oidc", "client", "remove", "grafana"); code == 0 {
		t.Fatal("removing a missing client succeeded")
	}

	t.Run("keys rotate", func(t *testing.T) {
		jwks := func() []string {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, "http://"+r.addr+"/.latchkey/oidc/keys", nil)
			req.Host = r.public.Host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var set struct {
				Keys []struct {
					Kid string `json:"kid"`
				} `json:"keys"`
			}
			if err := json.Unmarshal(b, &set); err != nil {
				t.Fatalf("JWKS: %v %s", err, b)
			}
			var kids []string
			for _, k := range set.Keys {
				kids = append(kids, k.Kid)
			}
			return kids
		}
		first := jwks() // the first key is made on first use
		if len(first) != 1 {
			t.Fatalf("JWKS before rotation: %v", first)
		}
		out := mustCLI(t, "oidc", "keys", "rotate")
		if !strings.Contains(out, "signing key") {
			t.Fatalf("rotate printed:\n%s", out)
		}
		// The server notices within seconds; the bound only keeps a broken build from hanging.
		deadline := time.Now().Add(30 * time.Second)
		for {
			kids := jwks()
			if len(kids) == 2 && (kids[0] == first[0] || kids[1] == first[0]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("JWKS after rotation: %v (before %v)", kids, first)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n := strings.Count(mustCLI(t, "audit"), "oidc_key_rotated"); n != 1 {
			t.Fatalf("%d oidc_key_rotated audit rows", n)
		}
	})
}
