package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// doctorSetup is a configuration that passes the doctor; each case changes one thing.
type doctorSetup struct {
	PublicURL, RPID, CookieDomain, DataDir string
	Trusted                                string
	RuleHosts                              string // YAML list of the passkey rule
	RouteHost, Upstream                    string
}

func (s doctorSetup) yaml() string {
	routes := "routes: []"
	if s.RouteHost != "" {
		routes = fmt.Sprintf("routes:\n  - host: %s\n    upstream: %s", s.RouteHost, s.Upstream)
	}
	return fmt.Sprintf(`data_dir: %q
server:
  public_url: %s
  trusted_proxies: [%s]
webauthn:
  rp_id: %q
session:
  cookie_domain: %q
access_control:
  default_policy: deny
  rules:
    - hosts: ["public.example.com"]
      policy: bypass
    - hosts: %s
      policy: passkey
      max_age: 10m
      authenticators: ["fbfc3007-154e-4ecc-8c0b-6e020557d7bd"]
%s
`, s.DataDir, s.PublicURL, s.Trusted, s.RPID, s.CookieDomain, s.RuleHosts, routes)
}

func runDoctorCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"doctor"}, args...), &out, &errOut)
	return code, out.String() + errOut.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "latchkey.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoctorFindsMisconfigurations(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer upstream.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o600)

	good := doctorSetup{PublicURL: "https://auth.example.com", RPID: "example.com", CookieDomain: "example.com",
		DataDir: filepath.Join(t.TempDir(), "data"), Trusted: "172.30.0.0/24", RuleHosts: `["app.example.com", "*.apps.example.com"]`,
		RouteHost: "app.example.com", Upstream: upstream.URL}
	t.Run("good configuration", func(t *testing.T) {
		code, out := runDoctorCLI(t, "--config", writeConfig(t, good.yaml()), "--proxy-addr", "172.30.0.5",
			"--url", "https://app.example.com/dash")
		if code != 0 || strings.Contains(out, "PROBLEM") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{"access_control.rules[1], policy passkey", "redirected (302) to https://auth.example.com/.latchkey/login",
			"older than 10m0s", "fbfc3007-154e-4ecc-8c0b-6e020557d7bd (iCloud Keychain)", "clock agrees with"} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q:\n%s", want, out)
			}
		}
	})

	for _, tc := range []struct {
		name  string
		edit  func(*doctorSetup)
		args  []string
		wants string
	}{
		{"public_url not https", func(s *doctorSetup) { s.PublicURL = "http://auth.example.com" }, nil, "is not https"},
		{"rp_id does not cover public_url", func(s *doctorSetup) { s.RPID = "example.org" }, nil, `webauthn.rp_id: "example.org" does not cover`},
		{"cookie_domain empty, protected host elsewhere", func(s *doctorSetup) { s.CookieDomain = "" }, nil, "gets no session cookie"},
		{"cookie_domain does not cover a rule host", func(s *doctorSetup) { s.RuleHosts = `["app.example.com", "grafana.example.net"]` }, nil, `"grafana.example.net" is outside session.cookie_domain`},
		{"cookie_domain does not cover a route host", func(s *doctorSetup) { s.RouteHost = "app.example.net" }, []string{"--offline"}, `routes[0].host "app.example.net" is outside session.cookie_domain`},
		{"proxy address not trusted", func(*doctorSetup) {}, []string{"--proxy-addr", "10.9.9.9"}, "10.9.9.9 is not in server.trusted_proxies"},
		{"no rule matches a route host", func(s *doctorSetup) { s.RouteHost = "other.example.com" }, []string{"--offline"}, `host "other.example.com" matches no access rule`},
		{"unreachable upstream", func(s *doctorSetup) { s.Upstream = "http://" + deadAddr }, nil, "cannot be reached"},
		{"data_dir not writable", func(s *doctorSetup) { s.DataDir = filepath.Join(notDir, "data") }, nil, "is not a directory"},
		{"url host without the cookie", func(s *doctorSetup) { s.RuleHosts = `["app.example.com", "grafana.example.net"]` }, []string{"--url", "https://grafana.example.net/"}, "does not receive the session cookie"},
		{"url path ambiguous", func(*doctorSetup) {}, []string{"--url", "https://app.example.com/a%2Fb"}, "refused as ambiguous"},
		{"unreadable config", nil, nil, "cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "server: [\n"
			if tc.edit != nil {
				s := good
				tc.edit(&s)
				text = s.yaml()
			}
			code, out := runDoctorCLI(t, append([]string{"--config", writeConfig(t, text)}, tc.args...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, out)
			}
			if !strings.Contains(out, tc.wants) {
				t.Fatalf("report lacks %q:\n%s", tc.wants, out)
			}
		})
	}

	t.Run("clock skew is a warning", func(t *testing.T) {
		skewed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Date", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
		}))
		defer skewed.Close()
		s := good
		s.Upstream = skewed.URL
		code, out := runDoctorCLI(t, "--config", writeConfig(t, s.yaml()))
		if code != 0 || !strings.Contains(out, "differ by 1h0m") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}

// The shipped configurations must pass, so that the doctor can gate their deployment.
func TestDoctorPassesShippedConfigs(t *testing.T) {
	files := []string{"../../config.example.yaml"}
	deploy, _ := filepath.Glob("../../deploy/*/latchkey.yaml")
	files = append(files, deploy...)
	if len(deploy) == 0 {
		t.Log("no deploy/*/latchkey.yaml yet")
	}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../../"), func(t *testing.T) {
			// data_dir names a path inside the container (/data); check a writable stand-in here.
			t.Setenv("LATCHKEY_DATA_DIR", t.TempDir())
			// --offline: the upstreams they name do not run here.
			if code, out := runDoctorCLI(t, "--config", f, "--offline"); code != 0 {
				t.Fatalf("exit %d\n%s", code, out)
			}
		})
	}
}
