package lktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RepoDir returns the module's root directory (the one holding go.mod), found upwards from the
// test's working directory, so that tests can load the files deploy/ ships.
func RepoDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// NeedBinary returns the path of a program the test needs. When it is missing the test is
// skipped, naming the Debian package, except under CI=true, where a missing tool is a failure.
func NeedBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found in PATH; install the Debian package %q (apt-get install -y %s)", name, debianPackage, debianPackage)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for a child process
// that must be told its port before it starts.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// EchoRequest is one request an Echo upstream received.
type EchoRequest struct {
	Method string
	Host   string
	URI    string
	Header http.Header
}

// Echo is a real upstream application on 127.0.0.1: it records every request and answers
// 200 with the request as JSON.
type Echo struct {
	Server *httptest.Server
	mu     sync.Mutex
	reqs   []EchoRequest
}

// NewEcho starts an Echo and stops it when the test ends.
func NewEcho(t testing.TB) *Echo {
	t.Helper()
	e := &Echo{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		er := EchoRequest{Method: r.Method, Host: r.Host, URI: r.RequestURI, Header: r.Header.Clone()}
		e.mu.Lock()
		e.reqs = append(e.reqs, er)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(er)
	}))
	t.Cleanup(e.Server.Close)
	return e
}

// Addr is the upstream's host:port.
func (e *Echo) Addr() string { return e.Server.Listener.Addr().String() }

// Requests returns what the upstream has received so far.
func (e *Echo) Requests() []EchoRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EchoRequest(nil), e.reqs...)
}

// Reset forgets the requests received so far.
func (e *Echo) Reset() {
	e.mu.Lock()
	e.reqs = nil
	e.mu.Unlock()
}

// Proc is a reverse proxy running as a child process of the test on 127.0.0.1:Port.
type Proc struct {
	Port int
	Dir  string
	// URL is http://127.0.0.1:Port.
	URL  string
	logs func() string
}

// Logs returns the proxy's own logs, for failure messages.
func (p *Proc) Logs() string { return p.logs() }

// ProxyConfig says where a test proxy finds Latchkey and the application.
type ProxyConfig struct {
	Port     int    // the proxy's port on 127.0.0.1 (FreePort)
	Latchkey string // host:port of Latchkey
	App      string // host:port of the protected application
	// Sites are more protected sites on the same port, each a copy of the shipped
	// app.example.com block (nginx conf.d/app.conf, the Caddyfile's APP_SITE block) with only
	// its host name and upstream changed, so that tests can tell which site served a request.
	Sites []ProxySite
}

// ProxySite is one more protected site of a test proxy.
type ProxySite struct {
	Name string // host name, e.g. public.example.com
	App  string // host:port of its application
	// Port, when set, is a port of its own on 127.0.0.1 for this site (FreePort). For nginx
	// the site is then the only block listening there, so it is the default server of that
	// port and serves requests for any host.
	Port int
}

// listen80 matches the listen directives of the deploy/nginx files, the one thing the tests
// change in them besides the upstream addresses.
var listen80 = regexp.MustCompile(`(?m)^(\s*)listen 80( default_server)?;`)

// StartNginx runs nginx with the server blocks and snippets that deploy/nginx ships, listening
// on 127.0.0.1:cfg.Port instead of port 80, and with its own upstreams.conf pointing at
// cfg.Latchkey and cfg.App. It is stopped when the test ends.
func StartNginx(t testing.TB, cfg ProxyConfig) *Proc {
	t.Helper()
	bin := NeedBinary(t, "nginx", "nginx")
	dir := t.TempDir()
	args, err := WriteNginx(RepoDir(t), dir, cfg, NginxOptions{AccessLog: true})
	if err != nil {
		t.Fatal(err)
	}
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return string(b)
	}
	return startProc(t, exec.Command(bin, args...), cfg.Port, dir, logs)
}

// StartCaddy runs caddy with the Caddyfile that deploy/caddy ships, its {$...} placeholders
// set so that the protected site is http://app.example.com:cfg.Port (and the portal
// http://auth.example.com:cfg.Port) on 127.0.0.1. It is stopped when the test ends.
func StartCaddy(t testing.TB, cfg ProxyConfig) *Proc {
	t.Helper()
	bin := NeedBinary(t, "caddy", "caddy")
	dir := t.TempDir()
	var out SyncBuffer
	caddyfile, env, err := WriteCaddy(RepoDir(t), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	return startProc(t, cmd, cfg.Port, dir, out.String)
}

// startProc starts cmd and waits until its port accepts connections; a process that exits
// first fails the test with its logs.
func startProc(t testing.TB, cmd *exec.Cmd, port int, dir string, logs func() string) *Proc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("%s exited before listening on %s: %v\n%s", filepath.Base(cmd.Path), addr, err, logs())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not listening on %s after 15 s\n%s", filepath.Base(cmd.Path), addr, logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &Proc{Port: port, Dir: dir, URL: "http://" + addr, logs: logs}
}

// ProxyClient is a browser talking to a test proxy: it sends requests to the proxy's port with
// the Host it is given, never follows redirects, and sends the cookies it is told to.
type ProxyClient struct {
	Proc    *Proc
	Cookies string // the Cookie header to send, "" for none
	hc      *http.Client
}

// Client returns a browser for the proxy.
func (p *Proc) Client() *ProxyClient {
	return &ProxyClient{Proc: p, hc: &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Get sends a browser navigation (Accept: text/html) for uri to host through the proxy; hdr adds
// or replaces headers.
func (c *ProxyClient) Get(t testing.TB, host, uri string, hdr http.Header) *Response {
	t.Helper()
	return c.Do(t, http.MethodGet, host, uri, hdr)
}

// Do sends a request through the proxy.
func (c *ProxyClient) Do(t testing.TB, method, host, uri string, hdr http.Header) *Response {
	t.Helper()
	req, err := http.NewRequest(method, c.Proc.URL+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) lktest")
	if c.Cookies != "" {
		req.Header.Set("Cookie", c.Cookies)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s through the proxy: %v", method, host, uri, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &Response{Response: resp, Body: b}
}
