package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDoctorWellKnownProbe: with several domains, doctor fetches the RP ID's
// /.well-known/webauthn (here example.com, answered by a real TLS server on 127.0.0.1 whose
// certificate names example.com) and explains each broken setup; --offline skips the probe.
func TestDoctorWellKnownProbe(t *testing.T) {
	var answer func(w http.ResponseWriter)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "example.com" || r.URL.Path != "/.well-known/webauthn" {
			http.NotFound(w, r)
			return
		}
		answer(w)
	}))
	defer ts.Close()
	tr := ts.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ts.Listener.Addr().String())
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs}
	cfg := writeConfig(t, `data_dir: `+t.TempDir()+`
server:
  public_url: https://auth.example.com
webauthn:
  rp_id: example.com
session:
  cookies:
    - {domain: example.com, public_url: "https://auth.example.com"}
    - {domain: example.org, public_url: "https://auth.example.org"}
access_control:
  rules:
    - {hosts: [wiki.example.org, grafana.example.com], policy: passkey}
`)
	doctor := func(offline bool) string {
		var out bytes.Buffer
		runDoctor(context.Background(), &out, doctorArgs{path: cfg, offline: offline, transport: tr}, time.Now)
		return out.String()
	}
	json := func(body string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}
	}
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string
	}{
		{"served", json(`{"origins":["https://auth.example.org"]}`), "ok:      https://example.com/.well-known/webauthn lists https://auth.example.org"},
		{"not routed to Latchkey", func(w http.ResponseWriter) { http.Error(w, "nope", http.StatusNotFound) },
			"PROBLEM: https://example.com/.well-known/webauthn answers 404"},
		{"another origin list", json(`{"origins":["https://auth.example.net"]}`), "does not list https://auth.example.org"},
		{"not JSON", func(w http.ResponseWriter) { w.Header().Set("Content-Type", "text/html"); w.Write([]byte("<html>")) },
			`answers with Content-Type "text/html"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer = tc.answer
			out := doctor(false)
			if !strings.Contains(out, tc.want) {
				t.Errorf("doctor output lacks %q:\n%s", tc.want, out)
			}
			if tc.name != "served" && !strings.Contains(out, "Route /.well-known/webauthn on example.com to Latchkey") {
				t.Errorf("doctor does not say how to fix it:\n%s", out)
			}
			if strings.Contains(out, `"wiki.example.org" is outside session.cookie_domain`) || !strings.Contains(out, `"wiki.example.org" is inside session.cookies domain "example.org"`) {
				t.Errorf("doctor judges wiki.example.org with the first domain's cookie:\n%s", out)
			}
		})
	}
	answer = func(w http.ResponseWriter) { t.Error("--offline probed the well-known file") }
	if out := doctor(true); !strings.Contains(out, "/.well-known/webauthn (several domains) was not checked (--offline)") {
		t.Errorf("offline doctor output:\n%s", out)
	}
}
