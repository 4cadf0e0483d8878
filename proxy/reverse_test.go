package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/latchkeyhq/latchkey/internal/lktest"
	"github.com/latchkeyhq/latchkey/proxy"
)

const appHost = "app.example.com"

// seen is what the recording upstream received, sent back as JSON.
type seen struct {
	Method string
	Host   string
	URI    string
	Header http.Header
	Body   string
}

// recordingUpstream is a real application on 127.0.0.1 that answers every request with what it
// received, and keeps a count for "nothing reached the upstream" checks.
type recordingUpstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header, Body: string(body)})
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// routedEnv protects appHost (policy passkey) and routes it to upstream; other hosts are denied.
func routedEnv(t *testing.T, upstream string, change ...func(*lktest.Config)) *lktest.Env {
	t.Helper()
	cfg := lktest.Config{
		DefaultPolicy: "deny",
		Rules:         []proxy.RuleConfig{{Hosts: []string{appHost}, Policy: "passkey"}},
		Routes:        map[string]string{appHost: upstream},
	}
	for _, c := range change {
		c(&cfg)
	}
	return lktest.New(t, cfg)
}

// decodeSeen parses the recording upstream's answer.
func decodeSeen(t *testing.T, r *lktest.Response) seen {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.StatusCode, r.Body)
	}
	var s seen
	if err := json.Unmarshal(r.Body, &s); err != nil {
		t.Fatalf("upstream answer: %v: %s", err, r.Body)
	}
	return s
}

func TestReverseProxyRequests(t *testing.T) {
	up := newRecordingUpstream(t)
	env := routedEnv(t, up.srv.URL)
	cookie, _ := signIn(t, env, "alice", "staff")
	c := env.Client()

	tests := []struct {
		name, method, uri, body string
	}{
		{"GET with query", http.MethodGet, "/dash/panel?x=1&y=%2F2", ""},
		{"POST with body", http.MethodPost, "/api/items", `{"name":"widget","n":3}`},
		{"PUT with empty body", http.MethodPut, "/api/items/7", ""},
		{"DELETE", http.MethodDelete, "/api/items/7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := c.Do(tt.method, appHost, tt.uri, body, http.Header{"Cookie": {cookie}, "Content-Type": {"application/json"}})
			s := decodeSeen(t, r)
			if s.Method != tt.method || s.URI != tt.uri || s.Body != tt.body {
				t.Errorf("upstream saw %s %s body %q, want %s %s body %q", s.Method, s.URI, s.Body, tt.method, tt.uri, tt.body)
			}
			if s.Host != appHost {
				t.Errorf("upstream Host %q, want %q (the one the browser asked for)", s.Host, appHost)
			}
			if got := s.Header.Get("Remote-User"); got != "alice" {
				t.Errorf("Remote-User %q, want alice", got)
			}
			if got := s.Header.Get("Remote-Groups"); got != "staff" {
				t.Errorf("Remote-Groups %q, want staff", got)
			}
			if got := s.Header.Get("X-Forwarded-Host"); got != appHost {
				t.Errorf("X-Forwarded-Host %q, want %q", got, appHost)
			}
			if got := s.Header.Get("X-Forwarded-Proto"); got != "http" {
				t.Errorf("X-Forwarded-Proto %q, want http", got)
			}
			if got := s.Header.Get("Cookie"); got != "" {
				t.Errorf("upstream got Cookie %q; the session cookie was the only one", got)
			}
		})
	}
}

// TestPUB04IdentityHeaderInjection is HOSTILE.md PUB-04 in reverse-proxy mode, with the
// X-Forwarded-* claims of a client that is not a trusted proxy and of one that is.
func TestPUB04IdentityHeaderInjection(t *testing.T) {
	spoofed := http.Header{
		"Remote-User":          {"admin"},
		"Remote-Groups":        {"admins"},
		"remote-email":         {"x@example.com"},
		"Remote_User":          {"admin"},
		"Remote_groups":        {"admins"},
		"REMOTE-NAME":          {"Admin"},
		"X-Forwarded-User":     {"admin"},
		"X-Forwarded-Email":    {"admin@example.com"},
		"X-Auth-Request-User":  {"admin"},
		"X-Forwarded-For":      {"10.0.0.1"},
		"X-Forwarded-Host":     {"admin.example.com"},
		"X-Forwarded-Proto":    {"https"},
		"Forwarded":            {"for=10.0.0.1;host=admin.example.com"},
		"X-Real-Ip":            {"10.0.0.1"},
		"Content-Type":         {"text/plain"},
		"Remote-User-Extra-Id": {"1"},
	}
	// identityKey folds a header name the way CGI-style servers do.
	identityKey := func(k string) string { return strings.ReplaceAll(strings.ToLower(k), "_", "-") }

	tests := []struct {
		name    string
		trusted []string
		wantXFF string
	}{
		{"untrusted peer", []string{"192.0.2.0/24"}, "127.0.0.1"},
		// A trusted proxy in front keeps its chain; Latchkey appends the peer it saw.
		{"trusted peer", []string{"127.0.0.0/8"}, "10.0.0.1, 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newRecordingUpstream(t)
			env := routedEnv(t, up.srv.URL, func(c *lktest.Config) { c.TrustedProxies = tt.trusted })
			cookie, _ := signIn(t, env, "alice", "staff")
			c := env.Client()

			t.Run("without a session nothing reaches the upstream", func(t *testing.T) {
				hdr := spoofed.Clone()
				hdr.Set("Cookie", "latchkey_session=forged; theme=dark")
				for _, method := range []string{http.MethodGet, http.MethodPost} {
					r := c.Do(method, appHost, "/", strings.NewReader("x"), hdr)
					if r.StatusCode != http.StatusUnauthorized && r.StatusCode != http.StatusFound {
						t.Errorf("%s: status %d, want 401 or 302", method, r.StatusCode)
					}
					noRemote(t, method+" response", r.Header)
				}
				if n := up.hits.Load(); n != 0 {
					t.Fatalf("the upstream received %d requests from a client without a session", n)
				}
			})

			t.Run("with a session only Latchkey's identity arrives", func(t *testing.T) {
				hdr := spoofed.Clone()
				hdr.Set("Cookie", "theme=dark; "+cookie+"; lang=en")
				hdr.Add("Cookie", "extra=1")
				s := decodeSeen(t, c.Do(http.MethodPost, appHost, "/submit", strings.NewReader("payload"), hdr))
				want := map[string]string{"remote-user": "alice", "remote-groups": "staff", "remote-email": "alice@example.com", "remote-name": "Alice"}
				for k, v := range s.Header {
					ik := identityKey(k)
					if strings.HasPrefix(ik, "remote-") || strings.HasPrefix(ik, "x-forwarded-user") ||
						strings.HasPrefix(ik, "x-forwarded-email") || strings.HasPrefix(ik, "x-auth-request-") {
						exp, ok := want[ik]
						if !ok || k != http.CanonicalHeaderKey(ik) || len(v) != 1 || v[0] != exp {
							t.Errorf("upstream got identity header %s: %q", k, v)
						}
						delete(want, ik)
					}
				}
				for k := range want {
					t.Errorf("upstream did not get %s", k)
				}
				if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tt.wantXFF {
					t.Errorf("X-Forwarded-For %q, want %q", got, tt.wantXFF)
				}
				if got := s.Header.Get("X-Forwarded-Host"); got != appHost {
					t.Errorf("X-Forwarded-Host %q, want %q", got, appHost)
				}
				if got := s.Header.Values("Forwarded"); len(got) != 0 {
					t.Errorf("Forwarded reached the upstream: %q", got)
				}
				cookies := s.Header.Values("Cookie")
				if strings.Contains(strings.Join(cookies, ";"), "latchkey_session") {
					t.Errorf("the session cookie reached the upstream: %q", cookies)
				}
				if len(cookies) != 1 || cookies[0] != "theme=dark; lang=en; extra=1" {
					t.Errorf("upstream cookies %q, want the other three", cookies)
				}
				if s.Body != "payload" {
					t.Errorf("body %q", s.Body)
				}
			})
		})
	}
}

func TestReverseProxyLoginRoundTrip(t *testing.T) {
	up := newRecordingUpstream(t)
	env := routedEnv(t, up.srv.URL)
	_, token := env.AddUser("alice", "staff")
	pk := lktest.NewPasskey()
	env.Client().Enrol(pk, token)

	browser := env.Client()
	nav := http.Header{"Accept": {"text/html,application/xhtml+xml"}}
	const uri = "/dash/panel?from=now-6h&to=now&var=a%20b"
	r := browser.Do(http.MethodGet, appHost, uri, nil, nav)
	if r.StatusCode != http.StatusFound {
		t.Fatalf("navigation without a session: %d, want 302", r.StatusCode)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != env.Origin()+"/.latchkey/login" {
		t.Fatalf("redirected to %q, want the login page", got)
	}
	rd := loc.Query().Get("rd")
	if want := "http://" + appHost + uri; rd != want {
		t.Fatalf("rd %q, want %q", rd, want)
	}
	if n := up.hits.Load(); n != 0 {
		t.Fatalf("the upstream was reached %d times before login", n)
	}
	if page := browser.Get(loc.RequestURI()); page.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d", page.StatusCode)
	}

	back := browser.Login(pk, rd)
	if back != rd {
		t.Fatalf("after login the browser goes to %q, want %q", back, rd)
	}
	bu, _ := url.Parse(back)
	s := decodeSeen(t, browser.Do(http.MethodGet, bu.Host, bu.RequestURI(), nil, nav))
	if s.URI != uri || s.Header.Get("Remote-User") != "alice" {
		t.Errorf("upstream saw %s as %q, want %s as alice", s.URI, s.Header.Get("Remote-User"), uri)
	}
}

func TestReverseProxyErrors(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	env := lktest.New(t, lktest.Config{
		DefaultPolicy: "deny",
		Rules:         []proxy.RuleConfig{{Hosts: []string{"dead.example.com", "slow.example.com"}, Policy: "passkey"}},
		Routes:        map[string]string{"dead.example.com": dead, "slow.example.com": slow.URL},
		// Short, so the test does not wait; the outcome does not depend on it.
		UpstreamTimeout: 300 * time.Millisecond,
	})
	cookie, _ := signIn(t, env, "alice")
	c := env.Client()
	hdr := http.Header{"Cookie": {cookie}, "Accept": {"text/html"}}

	tests := []struct {
		name, host string
		want       int
		page       string
	}{
		{"upstream down", "dead.example.com", http.StatusBadGateway, "not answering"},
		{"upstream too slow", "slow.example.com", http.StatusGatewayTimeout, "too long"},
		{"unknown host", "nowhere.example.com", http.StatusNotFound, "Nothing is served"},
		{"unknown host without a session", "nowhere.example.com", http.StatusNotFound, "Nothing is served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := hdr
			if strings.Contains(tt.name, "without") {
				h = http.Header{"Accept": {"text/html"}}
			}
			r := c.Do(http.MethodGet, tt.host, "/x", nil, h)
			if r.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, tt.want, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
			if !bytes.Contains(r.Body, []byte(tt.page)) {
				t.Errorf("page does not say %q:\n%s", tt.page, r.Body)
			}
			noRemote(t, "error page", r.Header)
		})
	}
}

// rawRequest sends a request for host straight to the env's listener, without reading the
// response: the caller reads the body as it arrives.
func rawRequest(t *testing.T, env *lktest.Env, method, host, path, cookie string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, env.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func TestReverseProxyStreamsResponses(t *testing.T) {
	const chunks = 4
	ack := make(chan struct{})
	finished := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(finished)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range chunks {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			// The next event waits until the client has seen this one, so every event must
			// have crossed the proxy while the upstream was still running.
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	env := routedEnv(t, up.URL)
	cookie, _ := signIn(t, env, "alice")

	resp := rawRequest(t, env, http.MethodGet, appHost, "/events", cookie, nil)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	for i := range chunks {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("read %q, want %q", line, want)
		}
		br.ReadString('\n')
		select {
		case <-finished:
			t.Fatalf("event %d arrived only after the upstream finished", i)
		default:
		}
		ack <- struct{}{}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("trailing data %q", rest)
	}
}

// patternReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	p.left -= int64(len(b))
	return len(b), nil
}

func TestReverseProxyStreamsLargeUploads(t *testing.T) {
	const size = 64 << 20
	var got atomic.Int64
	var sums sync.Map
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		got.Store(n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sums.Store(r.URL.Path, hex.EncodeToString(h.Sum(nil)))
		fmt.Fprint(w, n)
	}))
	t.Cleanup(up.Close)
	env := routedEnv(t, up.URL)
	cookie, _ := signIn(t, env, "alice")

	want := sha256.New()
	io.Copy(want, &patternReader{left: size})
	wantSum := hex.EncodeToString(want.Sum(nil))

	for _, chunked := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			var body io.Reader = &patternReader{left: size}
			if chunked {
				body = io.MultiReader(body) // hides the length: Transfer-Encoding: chunked
			}
			req, _ := http.NewRequest(http.MethodPut, env.Server.URL+"/upload", body)
			req.Host = appHost
			req.Header.Set("Cookie", cookie)
			if !chunked {
				req.ContentLength = size
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			runtime.ReadMemStats(&after)
			if resp.StatusCode != http.StatusOK || got.Load() != size {
				t.Fatalf("status %d, upstream counted %d bytes, want %d", resp.StatusCode, got.Load(), size)
			}
			if s, _ := sums.Load("/upload"); s != wantSum {
				t.Fatalf("upstream received different bytes")
			}
			// Everything in this process (client, Latchkey, upstream) allocated together less
			// than a fraction of the upload: nothing held it in memory.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
				t.Errorf("%d MiB allocated while streaming %d MiB", alloc>>20, size>>20)
			}
			if after.HeapInuse > before.HeapInuse && after.HeapInuse-before.HeapInuse > size/4 {
				t.Errorf("heap in use grew by %d MiB", (after.HeapInuse-before.HeapInuse)>>20)
			}
			t.Logf("allocated %d KiB, heap in use %d -> %d KiB", (after.TotalAlloc-before.TotalAlloc)>>10, before.HeapInuse>>10, after.HeapInuse>>10)
		})
	}
}

func TestReverseProxyWebSocket(t *testing.T) {
	var identity atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		identity.Store(r.Header.Get("Remote-User"))
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)
		for {
			typ, msg, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			if err := conn.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	env := routedEnv(t, up.URL)
	cookie, _ := signIn(t, env, "alice")
	wsURL := "ws" + strings.TrimPrefix(env.Server.URL, "http") + "/socket"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("without a session", func(t *testing.T) {
		_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Host: appHost})
		if err == nil {
			t.Fatal("upgrade without a session succeeded")
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("response %v, want 401", resp)
		}
	})

	t.Run("echo", func(t *testing.T) {
		conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Host: appHost, HTTPHeader: http.Header{"Cookie": {cookie}}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)
		for i, msg := range []string{"hello", strings.Repeat("x", 100<<10), "bye"} {
			if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			_, got, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
			if string(got) != "echo: "+msg {
				t.Fatalf("message %d: got %d bytes, want the echo of %d", i, len(got), len(msg))
			}
		}
		if err := conn.Close(websocket.StatusNormalClosure, ""); err != nil {
			t.Errorf("close: %v", err)
		}
		if got, _ := identity.Load().(string); got != "alice" {
			t.Errorf("upstream saw Remote-User %q on the upgrade", got)
		}
	})
}

// benchUpstream answers a small fixed page, like a dashboard's API.
func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok","series":[1,2,3,4,5,6,7,8]}`))
	}))
	b.Cleanup(up.Close)
	return up
}

// benchRequests sends GETs for host to target over keep-alive loopback TCP from parallel
// clients, the way a browser's several connections do.
func benchRequests(b *testing.B, target, host, cookie string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	do := func() error {
		req, _ := http.NewRequest(http.MethodGet, target+"/api/series?from=now-1h", nil)
		req.Host = host
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := do(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkReverseProxyValidCookie is proxy mode with a signed-in session: route by Host, the
// session check, the rule, header scrubbing, then httputil.ReverseProxy. Compare with
// BenchmarkBareReverseProxy from the same run.
func BenchmarkReverseProxyValidCookie(b *testing.B) {
	up := benchUpstream(b)
	env := lktest.New(b, lktest.Config{
		DefaultPolicy: "deny",
		Rules:         []proxy.RuleConfig{{Hosts: []string{appHost}, Policy: "passkey"}},
		Routes:        map[string]string{appHost: up.URL},
	})
	cookie, _ := signIn(b, env, "alice", "staff")
	benchRequests(b, env.Server.URL, appHost, "theme=dark; "+cookie)
}

// BenchmarkBareReverseProxy is the baseline: a plain httputil.ReverseProxy to the same kind of
// upstream, with no checks at all.
func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	u, _ := url.Parse(up.URL)
	// The same connection pool size as Latchkey's, so that only the work per request differs.
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 90 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	bare := httptest.NewServer(&httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
		pr.SetXForwarded()
	}})
	b.Cleanup(bare.Close)
	benchRequests(b, bare.URL, appHost, "theme=dark")
}
