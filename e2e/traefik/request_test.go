package traefiktest

import (
	"context"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var update = flag.Bool("update", false, "rewrite proxy/testdata/traefik-*.txt with the requests real Traefik sends")

// recorder stands where Latchkey stands and records what Traefik's forwardAuth sends it; it
// answers 200 with an identity, as Latchkey does for a signed-in user.
type recorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	conns int // connections accepted
}

type recorded struct {
	Method, URI, Host string
	Header            http.Header
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
		rec.mu.Unlock()
		w.Header().Set("Remote-User", "recorded")
		w.WriteHeader(http.StatusOK)
	}))
	rec.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.mu.Lock()
			rec.conns++
			rec.mu.Unlock()
		}
	}
	rec.srv.Start()
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) addr() string { return rec.srv.Listener.Addr().String() }

func (rec *recorder) take() ([]recorded, int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	reqs, conns := rec.reqs, rec.conns
	rec.reqs, rec.conns = nil, 0
	return reqs, conns
}

// spoofed are headers a client sends to confuse the check: none of them may reach Latchkey.
var spoofed = http.Header{
	"X-Forwarded-Host":   {"evil.example.com"},
	"X-Forwarded-Uri":    {"/public/x"},
	"X-Forwarded-Proto":  {"https"},
	"X-Forwarded-Method": {"OPTIONS"},
	"X-Forwarded-For":    {"203.0.113.66"},
	"X-Forwarded-Prefix": {"/public"},
	"X_Forwarded_Uri":    {"/public/y"},
	"X-Original-Url":     {"http://evil.example.com/public/"},
	"X-Real-Ip":          {"203.0.113.66"},
	"Remote-User":        {"mallory"},
	"Remote_User":        {"mallory"},
}

const recordedSession = "recorded-session-value"

// TestForwardAuthRequest records the request real Traefik's forwardAuth sends with the shipped
// middleware, and holds proxy/testdata/traefik-forwardauth*.txt to it: those files are what
// TestTraefikForwardAuthRequest in proxy/forward_test.go sends to Latchkey. Run with -update to
// rewrite them after a Traefik upgrade.
func TestForwardAuthRequest(t *testing.T) {
	needSuite(t)
	rec := newRecorder(t)
	upstream := newApp(t)
	apps := map[string]string{"latchkey": upstream.addr(), "whoami": upstream.addr(), "nas": upstream.addr()}
	address := "http://" + rec.addr() + "/.latchkey/auth/forward"
	trust := true
	shipped := startTraefik(t, traefikConfig{Name: "shipped, recorded", AuthAddress: address, Apps: apps})
	trusting := startTraefik(t, traefikConfig{Name: "trustForwardHeader, recorded", AuthAddress: address, Apps: apps, TrustForwardHeader: &trust})
	hostname, _ := os.Hostname()
	rec.take()

	render := func(p *traefikProc, r recorded) string {
		sub := strings.NewReplacer(rec.addr(), "{latchkey}", "127.0.0.1", "{client}", recordedSession, "{session}")
		port := strconv.Itoa(p.Port)
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				v = sub.Replace(v)
				switch {
				case v == port:
					v = "{port}"
				case strings.HasSuffix(v, ":"+port):
					v = strings.TrimSuffix(v, port) + "{port}"
				case v == hostname && k == "X-Forwarded-Server":
					v = "{hostname}"
				}
				lines = append(lines, k+": "+v)
			}
		}
		sort.Strings(lines)
		return r.Method + " " + r.URI + "\nHost: " + sub.Replace(r.Host) + "\n" + strings.Join(lines, "\n") + "\n"
	}
	golden := func(t *testing.T, name, header, got string) {
		t.Helper()
		path := filepath.Join(suite.repo, "proxy", "testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(header+got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to record it)", err)
		}
		var want []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "#") {
				want = append(want, l)
			}
		}
		if w := strings.Join(want, "\n"); w != got {
			t.Errorf("Traefik's forwardAuth request differs from proxy/testdata/%s (what the hand-built test sends); run with -update if Traefik changed.\ngot:\n%s\nwant:\n%s", name, got, w)
		}
	}

	t.Run("navigation with the shipped middleware", func(t *testing.T) {
		hdr := spoofed.Clone()
		hdr.Set("Cookie", "theme=dark; latchkey_session="+recordedSession)
		hdr.Set("Accept-Language", "en")
		r := shipped.client().get(t, "whoami.example.com", "/dash?x=1", hdr)
		reqs, _ := rec.take()
		if r.StatusCode != http.StatusOK || len(reqs) != 1 {
			t.Fatalf("status %d, %d checks recorded", r.StatusCode, len(reqs))
		}
		golden(t, "traefik-forwardauth.txt", `# The request real Traefik v3.7.13 sends to Latchkey with deploy/traefik's middleware
# (trustForwardHeader: false) for a browser's GET http://whoami.example.com:{port}/dash?x=1 that
# also carried forged X-Forwarded-*, X-Original-URL, X-Real-IP and Remote-User headers.
# Recorded by e2e/traefik (TestForwardAuthRequest, -update rewrites it); sent to Latchkey by
# TestTraefikForwardAuthRequest in proxy/forward_test.go. {...} are the values of one run.
`, render(shipped, reqs[0]))
	})

	t.Run("WebSocket upgrade with trustForwardHeader true", func(t *testing.T) {
		hdr := spoofed.Clone()
		hdr.Set("Cookie", "latchkey_session="+recordedSession)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+trusting.host("whoami.example.com")+"/ws", &websocket.DialOptions{HTTPClient: trusting.wsClient(), HTTPHeader: hdr})
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		c.CloseNow()
		reqs, _ := rec.take()
		if len(reqs) != 1 {
			t.Fatalf("%d checks recorded", len(reqs))
		}
		got := render(trusting, reqs[0])
		golden(t, "traefik-forwardauth-websocket-trusted.txt", `# The request real Traefik v3.7.13 sends to Latchkey with deploy/traefik's middleware changed to
# trustForwardHeader: true, for a WebSocket upgrade of ws://whoami.example.com:{port}/ws from a
# client outside the entry point's forwardedHeaders.trustedIPs that also sent forged headers.
# X-Forwarded-Proto is ws (wss over TLS). Recorded by e2e/traefik (TestForwardAuthRequest,
# -update rewrites it); sent to Latchkey by TestTraefikForwardAuthRequest in proxy/forward_test.go.
`, got)
		if !strings.Contains(got, "\nX-Forwarded-Proto: ws\n") {
			t.Errorf("expected X-Forwarded-Proto: ws on an upgrade:\n%s", got)
		}
	})

	t.Run("trustForwardHeader true believes the entry point's trusted peers", func(t *testing.T) {
		// Why README.md allows trustForwardHeader: true only when every peer in the entry point's
		// forwardedHeaders.trustedIPs overwrites X-Forwarded-Uri (and -Host, -Proto, -Method):
		// Traefik routes and serves the request it received, but Latchkey is told what the peer
		// said. Here the client itself is such a peer (127.0.0.1 trusted).
		hazard := startTraefik(t, traefikConfig{Name: "trustForwardHeader, trusted peers", AuthAddress: address, Apps: apps,
			TrustForwardHeader: &trust, TrustedIPs: []string{"127.0.0.1/32"}})
		rec.take()
		upstream.reset()
		r := hazard.client().get(t, "whoami.example.com", "/dash", http.Header{"X-Forwarded-Uri": {"/public/x"}, "X-Forwarded-Host": {"other.example.com"}})
		reqs, _ := rec.take()
		if r.StatusCode != http.StatusOK || len(reqs) != 1 {
			t.Fatalf("status %d, %d checks recorded", r.StatusCode, len(reqs))
		}
		if got := reqs[0].Header.Get("X-Forwarded-Uri"); got != "/public/x" {
			t.Errorf("X-Forwarded-Uri %q: Traefik no longer passes a trusted peer's value; revise README.md", got)
		}
		if got := reqs[0].Header.Get("X-Forwarded-Host"); got != "other.example.com" {
			t.Errorf("X-Forwarded-Host %q: Traefik no longer passes a trusted peer's value; revise README.md", got)
		}
		if seen := upstream.requests(); len(seen) != 1 || seen[0].URI != "/dash" {
			t.Errorf("the application served %+v", seen)
		}
		// The same request from an untrusted client: Traefik describes what it routed.
		trusting.client().get(t, "whoami.example.com", "/dash", http.Header{"X-Forwarded-Uri": {"/public/x"}, "X-Forwarded-Host": {"other.example.com"}})
		reqs, _ = rec.take()
		if len(reqs) != 1 || reqs[0].Header.Get("X-Forwarded-Uri") != "/dash" || reqs[0].Header.Get("X-Forwarded-Host") != trusting.host("whoami.example.com") {
			t.Errorf("untrusted client, trustForwardHeader true: Latchkey was told %+v", reqs)
		}
	})

	t.Run("keep-alive: consecutive checks reuse a connection", func(t *testing.T) {
		// See the comment at the top of dynamic/latchkey.yml: Go's default transport. Start from
		// no open connection, so that the count below cannot be zero by luck.
		rec.srv.CloseClientConnections()
		rec.take()
		const n = 20
		c := shipped.client()
		for i := 0; i < n; i++ {
			if r := c.get(t, "whoami.example.com", "/dash", nil); r.StatusCode != http.StatusOK {
				t.Fatalf("request %d: %d", i, r.StatusCode)
			}
		}
		reqs, conns := rec.take()
		t.Logf("%d checks over %d connections", len(reqs), conns)
		// One connection in the common case; a request can race its predecessor's connection back
		// into the idle pool and dial once more, so allow a few.
		if len(reqs) != n || conns < 1 || conns > n/4 {
			t.Errorf("%d checks over %d connections: forwardAuth does not keep connections to Latchkey alive", len(reqs), conns)
		}
	})
}
