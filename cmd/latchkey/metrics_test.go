package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
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
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: requestLog(a.log, a.handler), ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	msrv := httptest.NewServer(a.metrics.handler())
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

// TestGrafanaDashboardMatchesMetrics keeps deploy/grafana in step with metrics.go: every
// latchkey_ series the dashboard queries exists, and every latchkey_ family is on the dashboard.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(lktest.RepoDir(t), "deploy", "grafana", "latchkey-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(val)
			}
		case []any:
			for _, val := range x {
				walk(val)
			}
		}
	}
	walk(dash)
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no queries")
	}

	m := newMetrics()
	m.watchSessions(fixedSessions(0))
	m.watchView(fixedAge(0))
	m.Upstream("app.example.test", http.StatusOK, time.Millisecond) // families without labels known in advance
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range fams {
		known[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				known[f.GetName()+s] = true
			}
		}
	}
	used := map[string]bool{}
	ident := regexp.MustCompile(`\b(latchkey_[a-z_]+|process_[a-z_]+|go_[a-z_]+)\b`)
	for _, e := range exprs {
		for _, name := range ident.FindAllString(e, -1) {
			used[name] = true
			if !known[name] {
				t.Errorf("the dashboard queries %s, which Latchkey does not expose (expr %q)", name, e)
			}
		}
	}
	for _, f := range fams {
		name := f.GetName()
		if !strings.HasPrefix(name, "latchkey_") {
			continue
		}
		if !used[name] && !used[name+"_bucket"] && !used[name+"_count"] && !used[name+"_sum"] {
			t.Errorf("%s is not on the dashboard", name)
		}
	}
}

type fixedAge time.Duration

func (a fixedAge) ViewAge() time.Duration { return time.Duration(a) }

type fixedSessions int

func (f fixedSessions) ActiveSessions() int { return int(f) }

// TestRequestLog checks the request line: a request ID (the proxy's when usable), no query
// string, no cookies, and X-Request-Id on Latchkey's own pages only.
func TestRequestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(withRequestID(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "inside")
		if r.URL.Path == "/.latchkey/boom" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	h := requestLog(log, inner)
	cases := []struct {
		name      string
		path      string
		reqID     string
		wantID    string // "" = any generated ID
		wantHdr   bool
		wantLevel string
	}{
		{"page with proxy id", "/.latchkey/login?rd=https%3A%2F%2Fa.example.com%2F&token=s3cret", "f00d-1234", "f00d-1234", true, "DEBUG"},
		{"page with forged id", "/.latchkey/login", "x\n{\"level\":\"ERROR\"}", "", true, "DEBUG"},
		{"forward auth stays bare", "/.latchkey/auth/forward?token=s3cret", "", "", false, "DEBUG"},
		{"upstream traffic stays bare", "/dashboard?api_key=s3cret", "abc", "abc", false, "DEBUG"},
		{"server error is a warning", "/.latchkey/boom", "", "", true, "WARN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf.Reset()
			req := httptest.NewRequest(http.MethodGet, "http://localhost"+c.path, nil)
			req.Header.Set("Cookie", "latchkey_session=s3cret")
			req.Header.Set("Authorization", "Bearer s3cret")
			if c.reqID != "" {
				req.Header.Set("X-Request-Id", c.reqID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if strings.Contains(buf.String(), "s3cret") {
				t.Errorf("a secret from the query, cookie or Authorization header was logged:\n%s", buf.String())
			}
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				lines = append(lines, m)
			}
			if len(lines) != 2 {
				t.Fatalf("want 2 log lines (inside, request), got %d:\n%s", len(lines), buf.String())
			}
			reqLine := lines[1]
			id, _ := reqLine["request_id"].(string)
			if !validRequestID(id) || (c.wantID != "" && id != c.wantID) {
				t.Errorf("request_id = %q, want %q", id, c.wantID)
			}
			if reqLine["level"] != c.wantLevel {
				t.Errorf("level = %v, want %s", reqLine["level"], c.wantLevel)
			}
			if got := rec.Header().Get("X-Request-Id"); (got != "") != c.wantHdr || (got != "" && got != id) {
				t.Errorf("X-Request-Id response header = %q, want present=%v and equal to %q", got, c.wantHdr, id)
			}
			// On Latchkey's own pages the handler's own lines carry the same ID.
			if c.wantHdr && lines[0]["request_id"] != id {
				t.Errorf("the handler's log line has request_id %v, want %q", lines[0]["request_id"], id)
			}
		})
	}
}

// BenchmarkRequestLogHotPath measures what the request log adds to a forward-auth check when
// debug logging is off (the default).
func BenchmarkRequestLogHotPath(b *testing.B) {
	log := slog.New(withRequestID(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	h := requestLog(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	req := httptest.NewRequest(http.MethodGet, "http://localhost/.latchkey/auth/forward", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
