package proxy_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// Issue 16 item 6: a Latchkey API token never reaches the application, whether it opened the
// request, is invalid, or is valid for other hosts only; every other Authorization header
// reaches the application unchanged.

var tokenRules = []proxy.RuleConfig{
	{Hosts: []string{"app.example.com"}, Paths: []string{"^/public/"}, Policy: "bypass"},
	{Hosts: []string{"app.example.com"}, Policy: "passkey"},
}

// tokenSuite runs the cases; get sends GET uri to app.example.com through the proxy under test
// with the given headers and returns the status.
func tokenSuite(t *testing.T, env *lktest.Env, echo *lktest.Echo, get func(t *testing.T, uri string, hdr http.Header) int) {
	_, enrol := env.AddUser("alice", "staff")
	alice := env.Client()
	alice.Enrol(lktest.NewPasskey(), enrol)
	newToken := func(host string) string {
		r := alice.PostJSON("/.latchkey/api/tokens", map[string]any{"name": "ci " + host, "hosts": []string{host}})
		var tok struct{ Token string }
		if r.StatusCode != http.StatusCreated || r.JSON(&tok) != nil || tok.Token == "" {
			t.Fatalf("creating a token: %d %s", r.StatusCode, r.Body)
		}
		return tok.Token
	}
	token, otherHost := newToken("app.example.com"), newToken("other.example.com")
	cookie := "latchkey_session=" + alice.Session()

	for _, tc := range []struct {
		name, uri, auth, cookie string
		status                  int
		user                    string // Remote-User the application must see; "" for none
		upstreamAuth            string // the Authorization the application must see; "" for none
	}{
		{"token opens the request", "/x", "Bearer " + token, "", http.StatusOK, "alice", ""},
		{"token, lower-case scheme and extra spaces", "/x", "bearer   " + token, "", http.StatusOK, "alice", ""},
		{"token on a bypass path", "/public/x", "Bearer " + token, "", http.StatusOK, "alice", ""},
		{"invalid token on a bypass path", "/public/x", "Bearer lk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", http.StatusOK, "", ""},
		{"token for another host on a bypass path", "/public/x", "Bearer " + otherHost, "", http.StatusOK, "", ""},
		{"Basic passes unchanged", "/public/x", "Basic dXNlcjpwYXNz", "", http.StatusOK, "", "Basic dXNlcjpwYXNz"},
		{"foreign Bearer passes unchanged", "/public/x", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "", http.StatusOK, "", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
		{"foreign Bearer with a session", "/x", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln", cookie, http.StatusOK, "alice", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln"},
		{"lk_ under another scheme passes", "/public/x", "Token lk_notours", "", http.StatusOK, "", "Token lk_notours"},
		// Two Authorization headers: the token must not get through next to another one.
		{"token after a Basic header", "/public/x", "Basic dXNlcjpwYXNz\n" + "Bearer " + token, "", http.StatusOK, "", "any but the token"},
		{"token before a Basic header", "/public/x", "Bearer " + token + "\nBasic dXNlcjpwYXNz", "", http.StatusOK, "", "any but the token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			echo.Reset()
			hdr := http.Header{"Authorization": strings.Split(tc.auth, "\n"), "Accept": {"application/json"}}
			if tc.cookie != "" {
				hdr.Set("Cookie", tc.cookie)
			}
			status := get(t, tc.uri, hdr)
			seen := echo.Requests()
			if tc.upstreamAuth == "any but the token" && status == http.StatusBadRequest && len(seen) == 0 {
				return // nginx refuses a repeated Authorization header outright
			}
			if status != tc.status || len(seen) != 1 {
				t.Fatalf("status %d (want %d), the application saw %d requests", status, tc.status, len(seen))
			}
			if got := seen[0].Header.Values("Authorization"); tc.upstreamAuth == "any but the token" {
				for _, v := range got {
					if strings.Contains(v, "lk_") {
						t.Fatalf("the application saw Authorization %q", got)
					}
				}
			} else if tc.upstreamAuth == "" && len(got) != 0 ||
				tc.upstreamAuth != "" && (len(got) != 1 || got[0] != tc.upstreamAuth) {
				t.Fatalf("the application saw Authorization %q, want %q", got, tc.upstreamAuth)
			}
			if got := seen[0].Header.Get("Remote-User"); got != tc.user {
				t.Fatalf("the application saw Remote-User %q, want %q", got, tc.user)
			}
		})
	}
}

func proxyGet(p *lktest.Proc, host string) func(t *testing.T, uri string, hdr http.Header) int {
	return func(t *testing.T, uri string, hdr http.Header) int {
		return p.Client().Do(t, http.MethodGet, host, uri, hdr).StatusCode
	}
}

func TestTokensNeverReachTheAppNginx(t *testing.T) {
	lktest.NeedBinary(t, "nginx", "nginx")
	port := lktest.FreePort(t)
	echo := lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: tokenRules})
	p := lktest.StartNginx(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: echo.Addr()})
	tokenSuite(t, env, echo, proxyGet(p, "app.example.com:"+strconv.Itoa(port)))
}

func TestTokensNeverReachTheAppCaddy(t *testing.T) {
	lktest.NeedBinary(t, "caddy", "caddy")
	port := lktest.FreePort(t)
	echo := lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: tokenRules})
	p := lktest.StartCaddy(t, lktest.ProxyConfig{Port: port, Latchkey: env.Server.Listener.Addr().String(), App: echo.Addr()})
	tokenSuite(t, env, echo, proxyGet(p, "app.example.com:"+strconv.Itoa(port)))
}

func TestTokensNeverReachTheAppReverseProxy(t *testing.T) {
	echo := lktest.NewEcho(t)
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: tokenRules, Routes: map[string]string{"app.example.com": echo.Server.URL}})
	tokenSuite(t, env, echo, func(t *testing.T, uri string, hdr http.Header) int {
		c := env.Client()
		c.Header = hdr
		return c.Do(http.MethodGet, "app.example.com", uri, nil, nil).StatusCode
	})
}

func TestIsLatchkeyBearer(t *testing.T) {
	for v, want := range map[string]bool{
		"Bearer lk_abc": true, "bearer lk_abc": true, "BEARER  lk_abc": true, " Bearer\tlk_abc": true,
		"Bearer lk_": true, "Bearer LK_abc": false, "Bearer xlk_abc": false, "Bearerlk_abc": false,
		"Basic lk_abc": false, "Bearer eyJ.x.y": false, "": false, "Bearer": false, "lk_abc": false,
	} {
		if got := proxy.IsLatchkeyBearer(v); got != want {
			t.Errorf("IsLatchkeyBearer(%q) = %v, want %v", v, got, want)
		}
	}
}
