package traefiktest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// suite is what TestMain prepares once: the two binaries under test.
var suite struct {
	repo     string // the repository root
	latchkey string // built from this tree
	traefik  string // built by scripts/traefik-prepare, or LATCHKEY_TRAEFIK_BIN
	skip     string // why the tests cannot run here
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "traefik e2e:", err)
		return 1
	}
	suite.repo = filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(suite.repo, "cmd", "latchkey")); err != nil {
		fmt.Fprintln(os.Stderr, "traefik e2e: the repository root is not two levels up:", err)
		return 1
	}
	if testing.Short() {
		suite.skip = "the real-Traefik tests are skipped in -short mode"
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "latchkey-traefik-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "traefik e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	if suite.traefik, err = traefikBinary(); err != nil {
		suite.skip = err.Error()
		return m.Run()
	}
	// go test caches a passing result by the files the test opened or stat'ed; the binaries are
	// built outside its sight, so stat what goes into them.
	statSources(suite.repo)
	suite.latchkey = filepath.Join(tmp, "latchkey")
	build := exec.Command("go", "build", "-o", suite.latchkey, "./cmd/latchkey")
	build.Dir = suite.repo
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "traefik e2e: building latchkey: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// traefikBinary is LATCHKEY_TRAEFIK_BIN, or what scripts/traefik-prepare builds (or finds in its
// cache) and prints as its last line.
func traefikBinary() (string, error) {
	if bin := os.Getenv("LATCHKEY_TRAEFIK_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("LATCHKEY_TRAEFIK_BIN: %w", err)
		}
		return bin, nil
	}
	cmd := exec.Command(filepath.Join(suite.repo, "scripts", "traefik-prepare"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/traefik-prepare could not build Traefik (%v):\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	bin := lines[len(lines)-1]
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("scripts/traefik-prepare printed %q: %w", bin, err)
	}
	return bin, nil
}

// needSuite skips a test that cannot run here; under CI=true that is a failure instead.
func needSuite(t *testing.T) {
	t.Helper()
	if suite.skip == "" {
		return
	}
	if os.Getenv("CI") == "true" && !testing.Short() {
		t.Fatal(suite.skip)
	}
	t.Skip(suite.skip)
}

// statSources stats the files the two binaries and the deploy files are made of.
func statSources(root string) {
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "lego":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".html", ".js", ".css", ".svg", ".sql", ".yaml", ".yml", ".mod", ".sum":
			os.Stat(path)
		}
		return nil
	})
}

// Ports for child processes are held by a listener from the moment they are picked until the
// child is about to bind them: a port that was free "a moment ago" can otherwise be handed to
// the next listener the test opens (an upstream's), and a child that cannot bind its port leaves
// the test talking to whoever holds it.
var held struct {
	mu sync.Mutex
	ln map[int]net.Listener
}

// reservePort returns a free port on 127.0.0.1 and holds it until releasePort (or the test's end).
func reservePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	held.mu.Lock()
	if held.ln == nil {
		held.ln = map[int]net.Listener{}
	}
	held.ln[port] = ln
	held.mu.Unlock()
	t.Cleanup(func() { releasePort(port) })
	return port
}

// releasePort frees a reserved port for the child that binds it next.
func releasePort(port int) {
	held.mu.Lock()
	defer held.mu.Unlock()
	if ln, ok := held.ln[port]; ok {
		ln.Close()
		delete(held.ln, port)
	}
}

// child runs cmd until the test ends (SIGTERM, then SIGKILL), its output in out. exited is
// closed when it stops.
func child(t *testing.T, cmd *exec.Cmd, out io.Writer) (exited chan struct{}) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	exited = make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return exited
}

// waitFor polls ok until it holds, failing the test when the child exits first or after a
// generous bound (this waits for a process to come up; it asserts nothing about speed).
func waitFor(t *testing.T, what string, exited chan struct{}, logs func() string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		select {
		case <-exited:
			t.Fatalf("%s: the process exited\n%s", what, logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 60 s\n%s", what, logs())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// lastLines is the end of a log (Traefik's debug log starts with pages of configuration).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// latchkeyProc is a running `latchkey serve`.
type latchkeyProc struct {
	Addr   string // 127.0.0.1:port, what Traefik's middleware calls
	Public *url.URL
	Config string // the config file, for the CLI
	out    *lktest.SyncBuffer
	admin  string // the bootstrap enrolment token for user admin (group admins)
}

var enrolLine = regexp.MustCompile(`https?://\S+/\.latchkey/enroll\?token=(\S+)`)

// startLatchkey runs latchkey serve with deploy/traefik/latchkey.yaml, with only its addresses
// and data directory changed (public_url is the portal behind Traefik at public), and one rule
// added: a group rule for the contract's 403. Each rule host is also listed with the test's
// ports: the shipped files mean port 443, and while a rule host without a port matches any port,
// the login's rd is followed only to a rule host's exact port or a default port.
func startLatchkey(t *testing.T, public *url.URL, ports ...int) *latchkeyProc {
	t.Helper()
	return startLatchkeyWith(t, public, nil, ports...)
}

// startLatchkeyWith is startLatchkey with the shipped access rules replaced by rules (nil keeps
// them).
func startLatchkeyWith(t *testing.T, public *url.URL, rules []map[string]any, ports ...int) *latchkeyProc {
	t.Helper()
	dir := t.TempDir()
	cfg := loadYAML(t, filepath.Join(suite.repo, "deploy", "traefik", "latchkey.yaml"))
	port, metrics := reservePort(t), reservePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	mustSet(t, cfg, filepath.Join(dir, "data"), "data_dir")
	mustSet(t, cfg, addr, "server", "listen")
	mustSet(t, cfg, public.String(), "server", "public_url")
	mustSet(t, cfg, []string{"127.0.0.1/32"}, "server", "trusted_proxies") // Traefik's address here
	mustSet(t, cfg, "127.0.0.1:"+strconv.Itoa(metrics), "metrics", "listen")
	mustSet(t, cfg, "debug", "log", "level")
	if rules != nil {
		mustSet(t, cfg, rules, "access_control", "rules")
	}
	shipped := lookup(cfg, "access_control", "rules")
	if rules == nil {
		if shipped == nil || len(shipped.Content) < 2 {
			t.Fatalf("deploy/traefik/latchkey.yaml: expected access_control.rules with a bypass and a passkey rule")
		}
		// After the shipped bypass rule, before the shipped catch-all rule for the host.
		insertSeq(t, shipped, 1, map[string]any{"hosts": []string{"whoami.example.com"}, "paths": []string{"^/admin(/|$)"},
			"groups": []string{"admins"}, "policy": "passkey"})
	}
	for _, rule := range shipped.Content {
		hosts := lookup(rule, "hosts")
		if hosts == nil {
			continue
		}
		var withPorts []string
		for _, h := range hosts.Content {
			withPorts = append(withPorts, h.Value)
			for _, p := range ports {
				withPorts = append(withPorts, h.Value+":"+strconv.Itoa(p))
			}
		}
		mustSet(t, rule, withPorts, "hosts")
	}
	path := filepath.Join(dir, "latchkey.yaml")
	writeYAML(t, path, cfg)

	l := &latchkeyProc{Addr: addr, Public: public, Config: path, out: &lktest.SyncBuffer{}}
	cmd := exec.Command(suite.latchkey, "serve", "--config", path)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	releasePort(port)
	releasePort(metrics)
	exited := child(t, cmd, l.out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("latchkey output:\n%s", l.out.String())
		}
	})
	waitFor(t, "latchkey ready", exited, l.out.String, func() bool { return strings.Contains(l.out.String(), "latchkey ready") })
	m := enrolLine.FindStringSubmatch(l.out.String())
	if m == nil {
		t.Fatalf("latchkey printed no enrolment link:\n%s", l.out.String())
	}
	l.admin = m[1]
	return l
}

// cleanEnv is the environment for a child without LATCHKEY_* settings of the caller's.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_") {
			env = append(env, kv)
		}
	}
	return env
}

// addUser runs `latchkey user add` against the server's store and returns the enrolment token.
func (l *latchkeyProc) addUser(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(suite.latchkey, append([]string{"user", "add", name, "--config", l.Config}, args...)...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("latchkey user add %s: %v\n%s", name, err, out)
	}
	m := enrolLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("latchkey user add %s printed no enrolment link:\n%s", name, out)
	}
	return m[1]
}

// traefikProc is a running Traefik.
type traefikProc struct {
	Port int    // the websecure entry point (plain HTTP here), where every router listens
	URL  string // http://127.0.0.1:Port
	Dir  string
	out  *lktest.SyncBuffer
}

// Logs returns Traefik's output.
func (p *traefikProc) Logs() string { return p.out.String() }

// startTraefik runs Traefik with the static and dynamic files cfg prepared (see config.go).
func startTraefik(t *testing.T, cfg traefikConfig) *traefikProc {
	t.Helper()
	if cfg.Port == 0 {
		cfg.Port = reservePort(t)
	}
	if cfg.ReadyHost == "" {
		cfg.ReadyHost, cfg.ReadyPath = "auth.example.com", "/.latchkey/healthz"
	}
	dir := t.TempDir()
	static, ports := writeTraefikConfig(t, dir, cfg)
	p := &traefikProc{Port: cfg.Port, URL: "http://127.0.0.1:" + strconv.Itoa(cfg.Port), Dir: dir, out: &lktest.SyncBuffer{}}
	cmd := exec.Command(suite.traefik, "--configFile="+static)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "HOME="+dir)
	for _, port := range ports {
		releasePort(port)
	}
	exited := child(t, cmd, p.out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("traefik output (%s), last lines:\n%s", cfg.Name, lastLines(p.out.String(), 40))
		}
	})
	// Up when the portal router answers through it: the entry point listens before the file
	// provider's routers exist, and answers 404 until then.
	hc := &http.Client{Timeout: 5 * time.Second}
	last := "no answer"
	logs := func() string { return "last answer: " + last + "\n" + lastLines(p.Logs(), 40) }
	waitFor(t, "traefik "+cfg.Name+" routing", exited, logs, func() bool {
		req, _ := http.NewRequest(http.MethodGet, p.URL+cfg.ReadyPath, nil)
		req.Host = cfg.ReadyHost + ":" + strconv.Itoa(cfg.Port)
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		last = resp.Status + " " + string(b)
		return resp.StatusCode == http.StatusOK
	})
	if strings.Contains(p.Logs(), "address already in use") {
		t.Fatalf("traefik %s could not bind its ports\n%s", cfg.Name, lastLines(p.Logs(), 40))
	}
	return p
}

// client sends requests to a Traefik with the Host it is given and never follows redirects.
type client struct {
	p  *traefikProc
	hc *http.Client
}

func (p *traefikProc) client() *client {
	return &client{p: p, hc: &http.Client{Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// host is name:port of the entry point, as a browser would send it.
func (p *traefikProc) host(name string) string { return name + ":" + strconv.Itoa(p.Port) }

// get sends a browser navigation (Accept: text/html) for uri to host (a name without port).
// Headers in hdr are written exactly as given, non-canonical spellings included.
func (c *client) get(t *testing.T, host, uri string, hdr http.Header) *lktest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.p.URL+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = c.p.host(host)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) traefik-e2e")
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s through Traefik: %v", host, uri, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &lktest.Response{Response: resp, Body: b}
}

// wsClient is an HTTP client for WebSocket dials to any host through the Traefik: it connects
// every address to the entry point, so that a URL can carry the host Traefik routes on.
func (p *traefikProc) wsClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(p.Port))
	}}}
}
