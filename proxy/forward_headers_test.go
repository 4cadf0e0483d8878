package proxy_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

// TestBadForwardedHeadersNameTheHeader: a 400 for unusable forwarded headers says which header
// is wrong (issue 18), and never repeats the header's value.
func TestBadForwardedHeadersNameTheHeader(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: decisionRules})
	fwd := func(kv ...string) http.Header {
		h := http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"},
			"X-Forwarded-Uri": {"/x"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				h.Del(kv[i])
				continue
			}
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	set := func(h http.Header, k, v string) http.Header { h.Set(k, v); return h }
	orig := func(kv ...string) http.Header {
		h := http.Header{"X-Original-Url": {"https://app.example.com/x"}, "X-Original-Method": {"GET"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				h.Del(kv[i])
				continue
			}
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	origSet := func(v string) http.Header { return http.Header{"X-Original-Url": {v}} }
	tests := []struct {
		name, endpoint string
		hdr            http.Header
		want           string
	}{
		{"nginx header at forward", "forward", fwd("X-Original-Url", "https://public.example.com/public/x"), "X-Original-URL sent to /auth/forward"},
		{"no host", "forward", fwd("X-Forwarded-Host", "-"), "X-Forwarded-Host missing"},
		{"two hosts", "forward", fwd("X-Forwarded-Host", "evilhost.example.com"), "two X-Forwarded-Host headers"},
		{"empty host", "forward", set(fwd(), "X-Forwarded-Host", ""), "X-Forwarded-Host empty"},
		{"host list", "forward", set(fwd(), "X-Forwarded-Host", "app.example.com, evilhost.example.com"), "X-Forwarded-Host lists more than one host"},
		{"unusable host", "forward", set(fwd(), "X-Forwarded-Host", "evil<host>.example.com"), "X-Forwarded-Host is not a usable host name"},
		{"two schemes", "forward", fwd("X-Forwarded-Proto", "http"), "two X-Forwarded-Proto headers"},
		{"other scheme", "forward", set(fwd(), "X-Forwarded-Proto", "evilproto"), "X-Forwarded-Proto is not http, https, ws or wss"},
		{"two ports", "forward", fwd("X-Forwarded-Port", "443", "X-Forwarded-Port", "8443"), "two X-Forwarded-Port headers"},
		{"bad port", "forward", fwd("X-Forwarded-Port", "evil99"), "X-Forwarded-Port is not a port number"},
		{"two URIs", "forward", fwd("X-Forwarded-Uri", "/evil"), "two X-Forwarded-Uri headers"},
		{"encoded slash", "forward", set(fwd(), "X-Forwarded-Uri", "/evil%2Fx"), "X-Forwarded-Uri has an ambiguous path: encoded slash"},
		{"relative URI", "forward", set(fwd(), "X-Forwarded-Uri", "evil"), "X-Forwarded-Uri does not start with /"},
		{"space in URI", "forward", set(fwd(), "X-Forwarded-Uri", "/evil x"), "X-Forwarded-Uri contains a space or control character"},
		{"two methods", "forward", fwd("X-Forwarded-Method", "POST"), "two X-Forwarded-Method headers"},
		{"no URL", "request", orig("X-Original-Url", "-"), "X-Original-URL missing"},
		{"two URLs", "request", orig("X-Original-Url", "https://evilhost.example.com/"), "two X-Original-URL headers"},
		{"relative URL", "request", origSet("/evil"), "X-Original-URL is not an absolute http or https URL"},
		{"other scheme URL", "request", origSet("ftp://evilhost.example.com/"), "X-Original-URL is not an absolute http or https URL"},
		{"unusable URL host", "request", origSet("https://evil_-.example..com/"), "X-Original-URL has no usable host"},
		{"disagreeing host", "request", orig("X-Forwarded-Host", "evilhost.example.com"), "X-Forwarded-Host disagrees with X-Original-URL"},
		{"two forwarded hosts", "request", orig("X-Forwarded-Host", "app.example.com", "X-Forwarded-Host", "evilhost.example.com"), "two X-Forwarded-Host headers"},
		{"URL with encoded slash", "request", origSet("https://app.example.com/evil%2Fx"), "X-Original-URL has an ambiguous path: encoded slash"},
		{"two methods at request", "request", orig("X-Original-Method", "POST"), "two X-Original-Method headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(env, http.MethodGet, "/.latchkey/auth/"+tt.endpoint, trustedPeer, tt.hdr)
			body := w.Body.String()
			if w.Code != http.StatusBadRequest || !strings.Contains(body, tt.want) {
				t.Fatalf("%d %q, want 400 naming %q", w.Code, body, tt.want)
			}
			if strings.Contains(strings.ToLower(body), "evil") {
				t.Fatalf("the answer repeats a header's value: %q", body)
			}
			noRemote(t, tt.name, w.Header())
		})
	}
}

// TestForwardedProtoWebSocket: Traefik names the scheme of an upgrade request ws or wss
// (issue 18); Latchkey reads them as http and https, with the same rules and ports.
func TestForwardedProtoWebSocket(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"tls.example.com:443"}, Policy: "passkey"},
		{Hosts: []string{"plain.example.com:80"}, Policy: "passkey"},
	}})
	alice, _ := signIn(t, env, "alice", "staff")
	for _, tt := range []struct {
		proto, host string
		want        int
	}{
		{"wss", "tls.example.com", http.StatusOK},
		{"WSS", "tls.example.com", http.StatusOK},
		{"ws", "plain.example.com", http.StatusOK},
		{"wss", "tls.example.com:443", http.StatusOK},
		{"ws", "tls.example.com", http.StatusForbidden}, // port 80: no rule, default deny
		{"wss", "plain.example.com", http.StatusForbidden},
		{"https", "tls.example.com", http.StatusOK},
		{"http", "plain.example.com", http.StatusOK},
	} {
		t.Run(tt.proto+" "+tt.host, func(t *testing.T) {
			hdr := forwardHeaders("GET", tt.host, "/socket", "198.51.100.7", alice)
			hdr.Set("X-Forwarded-Proto", tt.proto)
			hdr.Set("Connection", "Upgrade")
			hdr.Set("Upgrade", "websocket")
			w := serve(env, http.MethodGet, "/.latchkey/auth/forward", trustedPeer, hdr)
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.want == http.StatusOK && w.Header().Get("Remote-User") != "alice" {
				t.Fatalf("Remote-User %q", w.Header().Get("Remote-User"))
			}
		})
	}
	t.Run("login redirect keeps the secure scheme", func(t *testing.T) {
		hdr := forwardHeaders("GET", "tls.example.com", "/socket", "198.51.100.7", "")
		hdr.Set("X-Forwarded-Proto", "wss")
		hdr.Set("Accept", "text/html")
		w := serve(env, http.MethodGet, "/.latchkey/auth/forward", trustedPeer, hdr)
		if w.Code != http.StatusFound || !strings.Contains(w.Header().Get("Location"), "rd=https%3A%2F%2Ftls.example.com%2Fsocket") {
			t.Fatalf("%d Location %q", w.Code, w.Header().Get("Location"))
		}
	})
}

// TestForwardedPortIsWhatTheProxyRoutedOn: X-Forwarded-Port (the port the proxy received the
// request on; the shipped Caddyfile sends it) replaces a port the client wrote into Host, so
// that a rule for another port cannot be reached by naming it (issue 16).
func TestForwardedPortIsWhatTheProxyRoutedOn(t *testing.T) {
	env := lktest.New(t, lktest.Config{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{
		{Hosts: []string{"app.example.com:1"}, Policy: "bypass"},
		{Hosts: []string{"app.example.com"}, Policy: "deny"},
	}})
	for _, tt := range []struct {
		host, port string
		want       int
	}{
		{"app.example.com:1", "", http.StatusOK}, // no X-Forwarded-Port: the host's port is all there is
		{"app.example.com:1", "8443", http.StatusForbidden},
		{"app.example.com:1", "443", http.StatusForbidden},
		{"app.example.com", "1", http.StatusOK},
		{"app.example.com:8443", "01", http.StatusOK},
	} {
		t.Run(tt.host+" port "+tt.port, func(t *testing.T) {
			hdr := forwardHeaders("GET", tt.host, "/", "198.51.100.7", "")
			if tt.port != "" {
				hdr.Set("X-Forwarded-Port", tt.port)
			}
			w := serve(env, http.MethodGet, "/.latchkey/auth/forward", trustedPeer, hdr)
			if w.Code != tt.want {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}
