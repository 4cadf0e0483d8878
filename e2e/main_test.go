package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
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

	"github.com/chromedp/chromedp"
)

// suite is what TestMain prepares once for the whole test binary: the latchkey binary, the
// screenshot folder and one shared headless Chromium (starting it is most of the cost of a flow).
var suite struct {
	bin      string          // the latchkey binary built from this tree
	shots    string          // screenshot folder
	browser  context.Context // chromedp context holding the shared browser; nil when skipped
	skip     string          // why the browser tests cannot run here
	nginxApp int             // the port reserved for the Nginx flow, known to the browser's flags
	// domains is the TLS listener of the several-domains flow (issue 23): its port, reserved
	// here because the browser maps *.example.net and *.example.org to it, and the test
	// certificate the browser trusts by its public key.
	domains domainsSetup
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		suite.skip = "end-to-end browser tests are skipped in -short mode"
		return m.Run()
	}
	chrome := findChromium()
	if chrome == "" {
		suite.skip = `chromium not found in PATH; install the Debian package "chromium" (apt-get install -y chromium)`
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "latchkey-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	suite.bin = filepath.Join(tmp, "latchkey")
	statSources(repoDir())
	build := exec.Command("go", "build", "-o", suite.bin, "./cmd/latchkey")
	build.Dir = repoDir()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building latchkey: %v\n%s", err, out)
		return 1
	}

	suite.shots = os.Getenv("LATCHKEY_SCREENSHOTS")
	if suite.shots == "" {
		// Not inside tmp: the screenshots are for a person to look at after the run.
		if suite.shots, err = os.MkdirTemp("", "latchkey-screenshots-"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	if err := os.MkdirAll(suite.shots, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Printf("e2e: screenshots in %s\n", suite.shots)

	// The Nginx flow runs on example.com names that the browser resolves to 127.0.0.1; plain
	// http is a secure context (as WebAuthn requires) only for localhost, so those two origins
	// are declared secure here, which needs their port before the browser starts.
	suite.nginxApp, err = freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	port := strconv.Itoa(suite.nginxApp)
	if suite.domains, err = prepareDomains(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("password-store", "basic"),
		// *.example.net and *.example.org go to the several-domains listener whatever port a URL
		// names, so their https URLs have no port, as a browser fetches the RP ID's
		// /.well-known/webauthn on the default port.
		chromedp.Flag("host-resolver-rules", "MAP *.example.com 127.0.0.1, "+suite.domains.resolverRules()),
		// Only the test certificate of that listener is accepted: it is trusted by its key.
		chromedp.Flag("ignore-certificate-errors-spki-list", suite.domains.spki),
		chromedp.Flag("unsafely-treat-insecure-origin-as-secure",
			"http://auth.example.com:"+port+",http://app.example.com:"+port),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(filepath.Join(tmp, "profile")),
		chromedp.WindowSize(1280, 900),
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil { // starts the browser, bound to browser's life
		fmt.Fprintf(os.Stderr, "e2e: starting %s: %v\n", chrome, err)
		return 1
	}
	suite.browser = browser
	return m.Run()
}

// needBrowser skips (or, under CI=true, fails) a test that cannot run here.
func needBrowser(t *testing.T) {
	t.Helper()
	if suite.browser != nil {
		return
	}
	if os.Getenv("CI") == "true" && !testing.Short() {
		t.Fatal(suite.skip)
	}
	t.Skip(suite.skip)
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// repoDir is the module root, found upwards from the package directory.
func repoDir() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("reserving a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// server is a running latchkey process.
type server struct {
	URL      string // public_url
	EnrolURL string // the bootstrap enrolment link it printed
	DataDir  string
	out      *lockedBuffer
}

// Logs returns what the server printed so far, for failure messages.
func (s *server) Logs() string { return s.out.String() }

type serverConfig struct {
	port   int    // the listen port; 0 picks one
	public string // public_url; default http://localhost:PORT
	yaml   string // when set, a config file with this content is passed with --config
	demo   bool
}

var enrolLine = regexp.MustCompile(`^\s+(https?://\S+/\.latchkey/enroll\?token=\S+)\s*$`)

// startServer runs `latchkey serve` from the built binary with a fresh data directory and
// waits for its ready line. The process is stopped (SIGTERM) when the test ends.
func startServer(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	needBrowser(t) // the binary is built only when the browser tests can run
	if cfg.port == 0 {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg.port = p
	}
	metrics, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.public == "" {
		cfg.public = "http://localhost:" + strconv.Itoa(cfg.port)
	}
	dir := t.TempDir()
	s := &server{URL: cfg.public, DataDir: filepath.Join(dir, "data"), out: &lockedBuffer{}}
	args := []string{"serve"}
	if cfg.demo {
		args = append(args, "--demo")
	}
	if cfg.yaml != "" {
		path := filepath.Join(dir, "latchkey.yaml")
		if err := os.WriteFile(path, []byte(cfg.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	cmd := exec.Command(suite.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"LATCHKEY_DATA_DIR="+s.DataDir,
		"LATCHKEY_SERVER_LISTEN=127.0.0.1:"+strconv.Itoa(cfg.port),
		"LATCHKEY_SERVER_PUBLIC_URL="+cfg.public,
		"LATCHKEY_METRICS_LISTEN=127.0.0.1:"+strconv.Itoa(metrics),
		"LATCHKEY_LOG_LEVEL=debug",
	)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting latchkey: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.out.WriteLine(line)
			if m := enrolLine.FindStringSubmatch(line); m != nil {
				s.out.mu.Lock()
				s.EnrolURL = m[1]
				s.out.mu.Unlock()
			}
			if strings.Contains(line, "latchkey ready") {
				once.Do(func() { close(ready) })
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("latchkey output:\n%s", s.Logs())
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("latchkey exited before it was ready:\n%s", s.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("latchkey not ready after 20 s:\n%s", s.Logs())
	}
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	if s.EnrolURL == "" {
		t.Fatalf("latchkey printed no enrolment link:\n%s", s.out.b.String())
	}
	return s
}

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
	l.mu.Unlock()
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// statSources stats every source file of the module. The binary under test is built by
// `go build`, which go test's result cache cannot see; but the cache does record the files a
// test stats, so a change to any template, script or Go file now invalidates a cached pass.
func statSources(root string) {
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".html", ".js", ".css", ".svg", ".sql", ".yaml", ".mod", ".sum":
			os.Stat(path)
		}
		return nil
	})
}
