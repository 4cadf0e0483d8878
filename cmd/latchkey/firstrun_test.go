package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestServeListenFlagAndBusyPort: --listen moves the server off a busy default port; in demo
// mode public_url follows the bound address and metrics are off; a bind error names the setting.
func TestServeListenFlagAndBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	t.Setenv("LATCHKEY_DATA_DIR", filepath.Join(t.TempDir(), "data"))
	t.Setenv("LATCHKEY_SERVER_LISTEN", busy.Addr().String())

	t.Run("busy port names the flag and the key", func(t *testing.T) {
		out, errOut, code := runCLI("serve", "--demo")
		if code == 0 {
			t.Fatalf("serve on a busy port exited 0:\n%s%s", out, errOut)
		}
		for _, want := range []string{"server.listen", busy.Addr().String(), "already in use", "--listen"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("error lacks %q:\n%s", want, errOut)
			}
		}
	})

	t.Run("bad --listen", func(t *testing.T) {
		_, errOut, code := runCLI("serve", "--listen", "8081")
		if code != 2 || !strings.Contains(errOut, "--listen") {
			t.Fatalf("exit %d, want 2 naming --listen:\n%s", code, errOut)
		}
	})

	t.Run("--listen with --demo", func(t *testing.T) {
		port := servePort(t)
		out, errOut := &serveOutput{}, &serveOutput{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"serve", "--demo", "--listen", "127.0.0.1:" + port}, out, errOut) }()
		defer func() {
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("serve exited %d:\n%s", code, errOut)
			}
		}()
		want := "http://localhost:" + port + "/.latchkey/enroll?token="
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no enrolment link on the --listen port (want %s):\n%s\n%s", want, out, errOut)
			}
			time.Sleep(20 * time.Millisecond)
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/.latchkey/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz on the --listen port: %v %v", resp, err)
		}
		resp.Body.Close()
		if !strings.Contains(errOut.String(), `metrics=""`) {
			t.Errorf("demo mode should run without a metrics listener:\n%s", errOut)
		}
	})
}

// TestMetricsOffByEmptyEnvironment: LATCHKEY_METRICS_LISTEN= (empty) turns metrics off, as the
// README says, instead of being ignored.
func TestMetricsOffByEmptyEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("LATCHKEY_METRICS_LISTEN", "")
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.Listen != "" {
		t.Fatalf("metrics.listen = %q, want empty (off)", cfg.Metrics.Listen)
	}
	os.Unsetenv("LATCHKEY_METRICS_LISTEN")
	if cfg, _ = loadConfig(""); cfg.Metrics.Listen != Default().Metrics.Listen {
		t.Fatalf("unset variable changed metrics.listen to %q", cfg.Metrics.Listen)
	}
}

// TestConfigCheckReportsEveryProblem: one run names every problem, decoding and validation
// alike, with a suggestion for a misspelt key.
func TestConfigCheckReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.yaml")
	text := `server:
  lisen: 127.0.0.1:8080
  public_url: ftp://auth.example.com
  trusted_proxies: [10.0.0.0/33]
session:
  lifetime: forever
  inactivity: 12
access_control:
  default_policy: maybe
  rules:
    - hosts: [a.example.com]
      paths: ["^/(unclosed"]
      policy: passkey
      grups: [admins]
routes:
  - host: a.example.com
    upstream: not a url
smtp:
  port: many
metrcs:
  listen: :9191
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI("config", "check", "--config", path)
	if code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, errOut)
	}
	for _, want := range []string{
		"server.lisen: unknown key; did you mean server.listen?",
		"server.public_url:",
		"server.trusted_proxies[0]",
		"session.lifetime: not a duration",
		"session.inactivity: not a duration",
		"access_control.default_policy",
		"access_control.rules[0].grups: unknown key; did you mean access_control.rules[0].groups?",
		"access_control.rules[0].paths",
		"routes[0].upstream",
		"smtp.port: not a whole number",
		"metrcs: unknown key; did you mean metrics?",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("config check output lacks %q:\n%s", want, errOut)
		}
	}
	if n := strings.Count(strings.TrimSpace(errOut), "\n") + 1; n < 11 {
		t.Errorf("%d problem lines, want at least 11:\n%s", n, errOut)
	}
}

// TestVersion: `version` and `--version` print the same line; a binary built from a git checkout
// with VCS stamping names the revision it was built from.
func TestVersion(t *testing.T) {
	out1, _, code1 := runCLI("version")
	out2, _, code2 := runCLI("--version")
	if code1 != 0 || code2 != 0 || out1 != out2 || !strings.HasPrefix(out1, "latchkey ") {
		t.Fatalf("version %q (%d), --version %q (%d)", out1, code1, out2, code2)
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := formatVersion("dev", info, true), "v1.4.0 (revision 0123456789ab, modified, 2026-11-30T10:00:00Z) go1.26.8"; got != want {
		t.Errorf("formatVersion = %q, want %q", got, want)
	}
	if got := formatVersion("v2.0.0", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true); got != "v2.0.0 (revision unknown)" {
		t.Errorf("-ldflags version with no VCS info: %q", got)
	}

	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "latchkey")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The go command stamps VCS information only where it can read the checkout (not, for
	// example, in some git worktrees); without it there is no revision to print.
	if info, err := exec.Command("go", "version", "-m", bin).Output(); err != nil || !strings.Contains(string(info), "vcs.revision=") {
		t.Skipf("the go command stamped no VCS revision into the binary here (%v)", err)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if rev := strings.TrimSpace(string(head))[:12]; !strings.Contains(string(out), "revision "+rev) {
		t.Errorf("version %q does not name the revision %s", out, rev)
	}
}

// TestHealthcheckURL: --url takes the server's base URL (the README's form) as well as a full
// health URL, and refuses anything else with exit 2.
func TestHealthcheckURL(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.latchkey/healthz":
		case "/.latchkey/readyz":
			w.WriteHeader(http.StatusServiceUnavailable) // alive, not ready
		default:
			http.NotFound(w, r)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	for _, u := range []string{base, base + "/", base + "/.latchkey/healthz"} {
		if out, errOut, code := runCLI("healthcheck", "--url", u); code != 0 {
			t.Errorf("healthcheck --url %s: exit %d\n%s%s", u, code, out, errOut)
		}
	}
	if _, errOut, code := runCLI("healthcheck", "--ready", "--url", base); code != 1 || !strings.Contains(errOut, "/.latchkey/readyz") {
		t.Errorf("healthcheck --ready --url %s: exit %d, want 1 naming readyz\n%s", base, code, errOut)
	}
	if _, errOut, code := runCLI("healthcheck", "--url", "127.0.0.1:8080"); code != 2 || !strings.Contains(errOut, "--url") {
		t.Errorf("healthcheck --url without scheme: exit %d\n%s", code, errOut)
	}
}

// TestTunnelHint: a localhost public_url on a listener that other machines reach gets the SSH
// tunnel line at start; a loopback listener or a real https address gets nothing.
func TestTunnelHint(t *testing.T) {
	local, _ := url.Parse("http://localhost:8080")
	public, _ := url.Parse("https://auth.example.com")
	for _, c := range []struct {
		ip     string
		public *url.URL
		want   bool
	}{
		{"0.0.0.0", local, true},
		{"192.0.2.10", local, true},
		{"127.0.0.1", local, false},
		{"::1", local, false},
		{"0.0.0.0", public, false},
	} {
		var b strings.Builder
		tunnelHint(&b, &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 8080}, c.public)
		if got := strings.Contains(b.String(), "ssh -L 8080:localhost:8080"); got != c.want {
			t.Errorf("listen %s, public %s: hint shown %v, want %v:\n%s", c.ip, c.public, got, c.want, b.String())
		}
	}
}
