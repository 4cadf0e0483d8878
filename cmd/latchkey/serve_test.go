package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// serveOutput collects what a running serve prints while the test reads it.
type serveOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *serveOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *serveOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// servePort returns a loopback port that was free a moment ago.
func servePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

var demoLink = regexp.MustCompile(`(https?://\S+)/\.latchkey/enroll\?token=(\S+)`)

// running is a `latchkey serve` started through run, as main does, inside the test process.
type running struct {
	addr   string   // where it listens
	public *url.URL // what browsers see
	stdout *serveOutput
	stderr *serveOutput
}

// startServe runs `latchkey serve args...` with no config file: everything the test needs comes
// from LATCHKEY_* variables (a temp data_dir, free ports). scheme is the public URL's. It waits
// for the first enrolment link and stops the server when the test ends.
func startServe(t *testing.T, scheme string, env map[string]string, args ...string) (*running, string) {
	t.Helper()
	port := servePort(t)
	r := &running{addr: "127.0.0.1:" + port, stdout: &serveOutput{}, stderr: &serveOutput{}}
	r.public, _ = url.Parse(scheme + "://localhost:" + port)
	vars := map[string]string{
		"LATCHKEY_DATA_DIR":          filepath.Join(t.TempDir(), "data"),
		"LATCHKEY_SERVER_LISTEN":     r.addr,
		"LATCHKEY_SERVER_PUBLIC_URL": r.public.String(),
		"LATCHKEY_METRICS_LISTEN":    "127.0.0.1:" + servePort(t),
	}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), r.stdout, r.stderr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited with %d:\n%s", code, r.stderr.String())
		}
	})

	// Waiting for the server to come up is not part of what is measured; the bound only keeps
	// a broken start from hanging the test.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := demoLink.FindStringSubmatch(r.stdout.String()); m != nil {
			if m[1] != r.public.String() {
				t.Fatalf("enrolment link on %s, want %s", m[1], r.public)
			}
			token, err := url.QueryUnescape(m[2])
			if err != nil {
				t.Fatal(err)
			}
			return r, token
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited with %d before printing an enrolment link:\n%s%s", code, r.stdout.String(), r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no enrolment link printed:\n%s%s", r.stdout.String(), r.stderr.String())
		}
	}
}

// client is a browser for the running server; rt, when set, is its transport.
func (r *running) client(t *testing.T, rt http.RoundTripper) *lktest.Client {
	c := lktest.Remote(t, "http://"+r.addr, r.public).Client()
	if rt != nil {
		c.WithTransport(rt)
	}
	return c
}

var navigation = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

// demoRoundTrip is the newcomer's path through `serve --demo`: the protected page sends them
// to the login page, the printed link enrols a passkey, the page greets them by name, and a
// later login on another browser returns to the page they asked for.
func demoRoundTrip(t *testing.T, r *running, token string, rt http.RoundTripper) {
	t.Helper()
	c := r.client(t, rt)
	resp := c.Do(http.MethodGet, "", "/", nil, navigation)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("demo page without a session: %d, want 302", resp.StatusCode)
	}
	wantLogin := r.public.String() + "/.latchkey/login?" + url.Values{"rd": {r.public.String() + "/"}}.Encode()
	if got := resp.Header.Get("Location"); got != wantLogin {
		t.Fatalf("redirect to %q, want %q", got, wantLogin)
	}

	pk := lktest.NewPasskey()
	c.Enrol(pk, token)
	page := c.Do(http.MethodGet, "", "/", nil, navigation)
	if page.StatusCode != http.StatusOK || !bytes.Contains(page.Body, []byte(`<span id="remote-user">admin</span>`)) {
		t.Fatalf("demo page after enrolment: %d\n%s", page.StatusCode, page.Body)
	}
	if bytes.Contains(page.Body, []byte("latchkey_session")) {
		t.Errorf("the demo upstream was shown the session cookie:\n%s", page.Body)
	}

	other := r.client(t, rt)
	rd := r.public.String() + "/reports?range=7d&sort=name"
	if back := other.Login(pk, rd); back != rd {
		t.Fatalf("login returns to %q, want %q", back, rd)
	}
	if page := other.Do(http.MethodGet, "", "/reports?range=7d&sort=name", nil, navigation); page.StatusCode != http.StatusOK ||
		!bytes.Contains(page.Body, []byte(`<span id="remote-user">admin</span>`)) {
		t.Fatalf("demo page after login: %d\n%s", page.StatusCode, page.Body)
	}
}

func TestServeDemo(t *testing.T) {
	r, token := startServe(t, "http", nil, "--demo")
	if want := "Demo: " + r.public.String() + "/ "; !strings.Contains(r.stdout.String(), want) {
		t.Errorf("serve --demo does not say where the demo page is (%q):\n%s", want, r.stdout.String())
	}
	demoRoundTrip(t, r, token, nil)
	if c := r.client(t, nil); c.Do(http.MethodGet, "other.example.com", "/", nil, navigation).StatusCode != http.StatusNotFound {
		t.Error("a host that is not routed was served")
	}
}

// selfSigned writes a certificate for localhost and 127.0.0.1 and returns its files and a pool
// that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// tlsTransport dials addr whatever the URL says, trusts pool, and speaks HTTP/2 when h2 is set.
func tlsTransport(addr string, pool *x509.CertPool, h2 bool) *http.Transport {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	}
	return tr
}

// protoRecorder remembers the protocol of the responses it carried.
type protoRecorder struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	protos map[string]bool
}

func (p *protoRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	// The lktest client addresses the listener by IP; TLS needs the public name.
	req.URL.Scheme = "https"
	resp, err := p.rt.RoundTrip(req)
	if err == nil {
		p.mu.Lock()
		p.protos[resp.Proto] = true
		p.mu.Unlock()
	}
	return resp, err
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	r, token := startServe(t, "https", map[string]string{
		"LATCHKEY_SERVER_TLS_CERT_FILE": certFile,
		"LATCHKEY_SERVER_TLS_KEY_FILE":  keyFile,
	}, "--demo")

	for _, tt := range []struct {
		name  string
		h2    bool
		proto string
	}{{"HTTP/2", true, "HTTP/2.0"}, {"HTTP/1.1", false, "HTTP/1.1"}} {
		t.Run(tt.name, func(t *testing.T) {
			tr := tlsTransport(r.addr, pool, tt.h2)
			defer tr.CloseIdleConnections()
			resp, err := tr.RoundTrip(mustRequest(t, r.public.String()+"/.latchkey/login"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Proto != tt.proto || resp.TLS == nil {
				t.Fatalf("login page: %d over %s (TLS %v), want 200 over %s", resp.StatusCode, resp.Proto, resp.TLS != nil, tt.proto)
			}
			if sts := resp.Header.Get("Set-Cookie"); sts != "" && !strings.Contains(sts, "Secure") {
				t.Errorf("cookie without Secure over https: %s", sts)
			}
		})
	}

	t.Run("plain HTTP is refused", func(t *testing.T) {
		resp, err := http.Get("http://" + r.addr + "/.latchkey/login")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("the TLS listener served plain HTTP")
			}
		}
	})

	t.Run("demo over HTTP/2", func(t *testing.T) {
		tr := tlsTransport(r.addr, pool, true)
		defer tr.CloseIdleConnections()
		rec := &protoRecorder{rt: tr, protos: map[string]bool{}}
		demoRoundTrip(t, r, token, rec)
		if len(rec.protos) != 1 || !rec.protos["HTTP/2.0"] {
			t.Errorf("protocols used: %v, want HTTP/2.0 only", rec.protos)
		}
	})
}

func TestServeTLSBadCertificate(t *testing.T) {
	certFile, _, _ := selfSigned(t)
	dir := t.TempDir()
	port := servePort(t)
	t.Setenv("LATCHKEY_DATA_DIR", filepath.Join(dir, "data"))
	t.Setenv("LATCHKEY_SERVER_LISTEN", "127.0.0.1:"+port)
	t.Setenv("LATCHKEY_SERVER_PUBLIC_URL", "https://localhost:"+port)
	t.Setenv("LATCHKEY_METRICS_LISTEN", "127.0.0.1:"+servePort(t))
	t.Setenv("LATCHKEY_SERVER_TLS_CERT_FILE", certFile)
	t.Setenv("LATCHKEY_SERVER_TLS_KEY_FILE", certFile) // a certificate is not a key
	var out, errOut serveOutput
	if code := run(context.Background(), []string{"serve"}, &out, &errOut); code == 0 {
		t.Fatal("serve started with an unusable key")
	}
	if !strings.Contains(errOut.String(), "server.tls") {
		t.Errorf("error does not name server.tls:\n%s", errOut.String())
	}
	if strings.Contains(out.String(), "/.latchkey/enroll") {
		t.Errorf("an enrolment link was printed for a server that did not start:\n%s", out.String())
	}
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestServeLongRequestsOutliveServerTimeouts: server.timeouts.read and write bound each read and
// write of a proxied request, not its whole life, so an event stream or a slow upload that lasts
// longer than them, with no gap as long, goes through.
func TestServeLongRequestsOutliveServerTimeouts(t *testing.T) {
	const (
		timeout = 600 * time.Millisecond
		pieces  = 8
		gap     = timeout / 4 // pieces*gap is well over the timeout
	)
	type result struct {
		n   int64
		err error
	}
	uploaded := make(chan result, 1)
	up := http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, err := io.Copy(io.Discard, r.Body)
			uploaded <- result{n, err}
			fmt.Fprint(w, n)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range pieces {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(gap)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })

	cfg := filepath.Join(t.TempDir(), "latchkey.yaml")
	yaml := fmt.Sprintf("access_control:\n  rules:\n    - hosts: [stream.example.test]\n      policy: bypass\nroutes:\n  - host: stream.example.test\n    upstream: http://%s\n", ln.Addr())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := startServe(t, "http", map[string]string{
		"LATCHKEY_SERVER_TIMEOUTS_READ":  timeout.String(),
		"LATCHKEY_SERVER_TIMEOUTS_WRITE": timeout.String(),
	}, "--config", cfg)
	c := &http.Client{Timeout: 20 * timeout}

	t.Run("event stream", func(t *testing.T) {
		req := mustRequest(t, "http://"+r.addr+"/events")
		req.Host = "stream.example.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, err %v, after %q", resp.StatusCode, err, body)
		}
		if got := strings.Count(string(body), "data: "); got != pieces {
			t.Fatalf("%d of %d events arrived: %q", got, pieces, body)
		}
	})

	t.Run("slow upload", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for range pieces {
				pw.Write(bytes.Repeat([]byte("x"), 1000))
				time.Sleep(gap)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/upload", pr)
		req.Host = "stream.example.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := <-uploaded
		if resp.StatusCode != http.StatusOK || got.err != nil || got.n != pieces*1000 {
			t.Fatalf("status %d %q; upstream read %d bytes, err %v", resp.StatusCode, body, got.n, got.err)
		}
	})

	t.Run("stalled upload is cut off", func(t *testing.T) {
		pr, pw := io.Pipe()
		go pw.Write(bytes.Repeat([]byte("x"), 1000)) // then nothing
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/upload", pr)
		req.Host = "stream.example.test"
		status := make(chan int, 1)
		go func() {
			resp, err := c.Do(req)
			if err != nil {
				status <- 0
				return
			}
			resp.Body.Close()
			status <- resp.StatusCode
		}()
		select {
		case got := <-uploaded:
			if got.err == nil {
				t.Errorf("the upstream read a complete body of %d bytes from a stalled upload", got.n)
			}
		case <-time.After(20 * timeout):
			t.Error("a stalled upload is still open long after server.timeouts.read")
		}
		// net/http's client finishes writing the body before it returns; let it.
		pw.CloseWithError(errors.New("test over"))
		if code := <-status; code == http.StatusOK {
			t.Errorf("a stalled upload was answered 200")
		}
	})
}

func TestServeDemoKeepsConfiguredRoute(t *testing.T) {
	port := servePort(t)
	cfg := filepath.Join(t.TempDir(), "latchkey.yaml")
	yaml := fmt.Sprintf("data_dir: %s\nserver:\n  listen: 127.0.0.1:%s\n  public_url: http://localhost:%s\nmetrics:\n  listen: \"\"\n"+
		"routes:\n  - host: localhost:%s\n    upstream: http://127.0.0.1:9\n", filepath.Join(t.TempDir(), "data"), port, port, port)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut serveOutput
	if code := run(context.Background(), []string{"serve", "--demo", "--config", cfg}, &out, &errOut); code == 0 {
		t.Fatal("--demo replaced a configured route")
	}
	if !strings.Contains(errOut.String(), "already routed") {
		t.Errorf("error does not explain the clash:\n%s", errOut.String())
	}
}

func TestCertificateReload(t *testing.T) {
	certA, keyA, _ := selfSigned(t)
	certB, keyB, _ := selfSigned(t)
	r, err := newCertReloader(TLSConfig{CertFile: certA, KeyFile: keyA}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	r.recheck = 0 // look at the files on every handshake
	current := func() []byte {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	replace := func(from, to string, stamp time.Time) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(to, stamp, stamp)
	}
	first := current()
	if again := current(); !bytes.Equal(first, again) {
		t.Fatal("certificate changed without a renewal")
	}

	later := time.Now().Add(time.Minute)
	replace(certB, certA, later)
	replace(keyB, keyA, later)
	renewed := current()
	if bytes.Equal(first, renewed) {
		t.Fatal("the renewed certificate was not picked up")
	}

	os.WriteFile(keyA, []byte("not a key"), 0o600)
	os.Chtimes(keyA, later.Add(time.Minute), later.Add(time.Minute))
	if kept := current(); !bytes.Equal(kept, renewed) {
		t.Fatal("a broken renewal replaced the working certificate")
	}
}
