package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// opsApp is the command's real wiring (loadConfig, buildApp, requestLog, the metrics handler)
// served over HTTP on 127.0.0.1, as `latchkey serve` would, but inside the test process.
type opsApp struct {
	*app
	t          *testing.T
	cfgPath    string
	url        string // http://127.0.0.1:PORT
	metricsURL string
	logs       *lktest.SyncBuffer
	remote     *lktest.Env // for lktest clients
}

// startOpsApp writes a config file for dataDir (plus extra YAML appended at the top level),
// loads it as the command does, and serves the app until the test ends.
func startOpsApp(t *testing.T, dataDir, extra string) *opsApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	yaml := fmt.Sprintf("data_dir: %s\nserver:\n  listen: %s\n  public_url: http://localhost:%s\nlog:\n  level: debug\n%s",
		dataDir, ln.Addr(), port, extra)
	cfgPath := filepath.Join(t.TempDir(), "latchkey.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgPath)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	logs := &lktest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := buildApp(ctx, cfg, logs)
	if err != nil {
		cancel()
		t.Fatalf("buildApp: %v", err)
	}
	go a.auth.Run(ctx)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	msrv := httptest.NewServer(a.metrics.Handler())
	t.Cleanup(func() {
		srv.Close()
		msrv.Close()
		cancel()
		a.store.Close()
	})
	return &opsApp{app: a, t: t, cfgPath: cfgPath, url: srv.URL, metricsURL: msrv.URL, logs: logs,
		remote: lktest.Remote(t, srv.URL, a.public)}
}

// cli runs one command line against the app's config file, as an operator would.
func (o *opsApp) cli(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(context.Background(), append(args, "--config", o.cfgPath), &out, &errb)
	return out.String(), errb.String(), code
}

// addUser creates a user with `latchkey user add` and returns the enrolment token from the link
// printed on the last line.
func (o *opsApp) addUser(name string) string {
	o.t.Helper()
	out, errOut, code := o.cli("user", "add", name, "--groups", "admins")
	if code != 0 {
		o.t.Fatalf("user add: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	link, err := url.Parse(lines[len(lines)-1])
	if err != nil || link.Query().Get("token") == "" {
		o.t.Fatalf("user add: last line is not an enrolment link: %q", out)
	}
	return link.Query().Get("token")
}

// scrape fetches and parses /metrics.
func (o *opsApp) scrape() map[string]*dto.MetricFamily {
	o.t.Helper()
	resp, err := http.Get(o.metricsURL + "/metrics")
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		o.t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the counter, gauge or histogram count of the series with exactly these labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// total sums every series of a counter family.
func total(fams map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	if f := fams[name]; f != nil {
		for _, m := range f.Metric {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestMetricsAfterLoginAndForwardAuth drives the real app over HTTP: enrol a passkey (which signs
// in), sign in again from a second browser, make one forward-auth check and one proxied request,
// then reads /metrics and checks every named series and its count.
func TestMetricsAfterLoginAndForwardAuth(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "dashboard for "+r.Header.Get("Remote-User"))
	}))
	defer upstream.Close()
	o := startOpsApp(t, t.TempDir(), fmt.Sprintf(`access_control:
  default_policy: deny
  rules:
    - hosts: [app.example.test]
      policy: passkey
routes:
  - host: app.example.test
    upstream: %s
`, upstream.URL))

	before := o.scrape()
	for _, name := range []string{"latchkey_authz_requests_total", "latchkey_ceremonies_total", "latchkey_rate_limited_total",
		"latchkey_sessions_active", "latchkey_build_info", "go_goroutines", "process_resident_memory_bytes"} {
		if before[name] == nil {
			t.Errorf("%s is missing from the first scrape", name)
		}
	}
	if n := total(before, "latchkey_authz_requests_total") + total(before, "latchkey_ceremonies_total"); n != 0 {
		t.Errorf("counters start at %v, want 0", n)
	}

	token := o.addUser("alice")
	pk := lktest.NewPasskey()
	enrol := o.remote.Client()
	codes := enrol.Enrol(pk, token)
	browser := o.remote.Client()
	browser.Login(pk, "")
	if browser.Session() == "" {
		t.Fatal("login set no session cookie")
	}
	if r := browser.Forward("app.example.test", "/d/home", nil); r.StatusCode != http.StatusOK || r.Header.Get("Remote-User") != "alice" {
		t.Fatalf("forward auth: %d Remote-User=%q, want 200 alice", r.StatusCode, r.Header.Get("Remote-User"))
	}
	if r := browser.Do(http.MethodGet, "app.example.test", "/d/home", nil, nil); r.StatusCode != http.StatusOK || string(r.Body) != "dashboard for alice" {
		t.Fatalf("proxied request: %d %q", r.StatusCode, r.Body)
	}

	fams := o.scrape()
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"latchkey_ceremonies_total", map[string]string{"kind": "register", "result": "ok"}, 1},
		{"latchkey_ceremonies_total", map[string]string{"kind": "login", "result": "ok"}, 1},
		{"latchkey_ceremonies_total", map[string]string{"kind": "login", "result": "failed"}, 0},
		{"latchkey_authz_requests_total", map[string]string{"endpoint": "forward", "result": "allowed"}, 1},
		{"latchkey_authz_requests_total", map[string]string{"endpoint": "forward", "result": "unauthenticated"}, 0},
		{"latchkey_authz_requests_total", map[string]string{"endpoint": "proxy", "result": "allowed"}, 1},
		{"latchkey_authz_duration_seconds", map[string]string{"endpoint": "forward"}, 1},
		{"latchkey_authz_duration_seconds", map[string]string{"endpoint": "proxy"}, 1},
		{"latchkey_proxy_upstream_duration_seconds", map[string]string{"route": "app.example.test"}, 1},
		{"latchkey_rate_limited_total", map[string]string{"scope": "login"}, 0},
		// The enrolment signed the first browser in, the login the second one.
		{"latchkey_sessions_active", map[string]string{}, 2},
		{"latchkey_build_info", map[string]string{"version": version, "goversion": goVersion(fams)}, 1},
	}
	for _, w := range want {
		t.Run(w.name+labelString(w.labels), func(t *testing.T) {
			got, ok := value(fams, w.name, w.labels)
			if !ok {
				t.Fatalf("series not exposed")
			}
			if got != w.value {
				t.Errorf("= %v, want %v", got, w.value)
			}
		})
	}
	if n := total(fams, "latchkey_authz_requests_total"); n != 2 {
		t.Errorf("latchkey_authz_requests_total sums to %v over all series, want 2", n)
	}
	if n := total(fams, "latchkey_ceremonies_total"); n != 2 {
		t.Errorf("latchkey_ceremonies_total sums to %v over all series, want 2", n)
	}

	// PUB-32: a full flow at debug level logs none of the secrets it handled.
	logs := o.logs.String()
	if !strings.Contains(logs, "request_id=") {
		t.Errorf("no request line with a request ID was logged:\n%s", logs)
	}
	secrets := map[string]string{"session cookie": browser.Session(), "enrolment session cookie": enrol.Session(), "enrolment token": token}
	for i, c := range codes {
		secrets[fmt.Sprintf("recovery code %d", i)] = c
	}
	for what, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("the log contains the %s", what)
		}
	}
	if strings.Contains(logs, "token=") || strings.Contains(logs, "rd=") {
		t.Errorf("the log contains a query string:\n%s", logs)
	}
}

func goVersion(fams map[string]*dto.MetricFamily) string {
	if f := fams["latchkey_build_info"]; f != nil && len(f.Metric) == 1 {
		for _, l := range f.Metric[0].Label {
			if l.GetName() == "goversion" {
				return l.GetValue()
			}
		}
	}
	return "?"
}

func labelString(labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
