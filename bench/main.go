// Command bench measures Latchkey on loopback against bare Go baselines in the same run: the
// forward-auth check against a bare net/http handler, and reverse-proxy mode against a bare
// httputil.ReverseProxy, with the servers pinned to one CPU and wrk to another. It also measures
// login ceremonies per second, start-to-ready time, and resident memory, and writes the table to
// BENCHMARKS.md. Run it from the repository root: go run ./bench
//
// -traefik adds the Traefik chain (the binary from scripts/traefik-prepare, or LATCHKEY_TRAEFIK_BIN);
// -scale adds the session state at scale (see scale.go), a second table. Both: about 10 more minutes.
//
//	go run ./bench -scale -traefik -repeats 3
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

func main() {
	var (
		duration    = flag.Duration("duration", 5*time.Second, "length of each load run")
		repeats     = flag.Int("repeats", 3, "interleaved repeats of the whole table; ratios are taken within a repeat")
		connections = flag.Int("connections", 32, "concurrent connections")
		out         = flag.String("out", "BENCHMARKS.md", "where to write the results table (empty: stdout only)")
		serverCPU   = flag.String("server-cpu", "0", "CPU list for the servers under test (taskset -c)")
		loadCPU     = flag.String("load-cpu", "1", "CPU list for wrk and the upstream")
		serveBare   = flag.String("serve-bare", "", "internal: serve a bare 200 handler on this address")
		serveBareT  = flag.String("serve-bare-timeouts", "", "internal: the same handler on a server with Latchkey's default timeouts")
		serveUp     = flag.String("serve-upstream", "", "internal: serve the upstream on this address")
		serveProxy  = flag.String("serve-bare-proxy", "", "internal: serve a bare reverse proxy on this address")
		upstreamURL = flag.String("upstream", "", "internal: upstream for -serve-bare-proxy")
		scale       = flag.Bool("scale", false, "also measure session state at scale (issue 17): many live sessions with logouts during the load, start to ready with 100k sessions, the session package's Go benchmarks")
		sessions    = flag.Int("sessions", 10000, "live sessions made by real logins for -scale")
		logoutRate  = flag.Int("logout-rate", 10, "logouts per second during the -scale load")
		traefik     = flag.Bool("traefik", false, "also measure the Traefik chain (scripts/traefik-prepare builds Traefik when not cached; LATCHKEY_TRAEFIK_BIN names a binary and implies this)")
	)
	flag.Parse()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	switch {
	case *serveBareT != "":
		// Latchkey's defaults (cmd/latchkey Default()): the hardening every public server needs.
		srv := &http.Server{Addr: *serveBareT, Handler: bare, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Minute,
			WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
		log.Fatal(srv.ListenAndServe())
	case *serveBare != "":
		log.Fatal(http.ListenAndServe(*serveBare, bare))
	case *serveUp != "":
		body := bytes.Repeat([]byte("x"), 512)
		log.Fatal(http.ListenAndServe(*serveUp, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		})))
	case *serveProxy != "":
		u, err := url.Parse(*upstreamURL)
		if err != nil {
			log.Fatal(err)
		}
		// Tuned like Latchkey's own transport (proxy/reverse.go): Go's default of 2 idle
		// connections per host would make a baseline that is no ceiling.
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
			Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}}
		log.Fatal(http.ListenAndServe(*serveProxy, rp))
	}
	opts := options{d: *duration, repeats: *repeats, conns: *connections, serverCPU: *serverCPU, loadCPU: *loadCPU, out: *out,
		scale: *scale, sessions: *sessions, logoutRate: *logoutRate, traefik: *traefik}
	if err := run(opts); err != nil {
		log.Fatal(err)
	}
}

type result struct {
	name     string
	rps      float64
	p50, p99 time.Duration
	non2xx   int
	fivexx   int // counted by a script's done (the -scale rows)
}

type options struct {
	d                  time.Duration
	repeats, conns     int
	serverCPU, loadCPU string
	out                string
	scale              bool
	sessions           int
	logoutRate         int
	traefik            bool
}

func run(o options) error {
	d, repeats, conns, serverCPU, loadCPU, out := o.d, o.repeats, o.conns, o.serverCPU, o.loadCPU, o.out
	if o.scale && (o.sessions < 2 || o.logoutRate < 1) {
		return errors.New("-scale needs -sessions of at least 2 and a -logout-rate of at least 1")
	}
	traefikBin, err := traefikBinary(o.traefik)
	if err != nil {
		return err
	}
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (Debian packages wrk and util-linux)", tool)
		}
	}
	tmp, err := os.MkdirTemp("", "latchkey-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin := filepath.Join(tmp, "latchkey")
	log.Printf("building latchkey")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/latchkey").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, out)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	// startEnv starts a process pinned to cpu; env nil means this process's environment.
	startEnv := func(cpu string, env []string, args ...string) (*exec.Cmd, error) {
		cmd := exec.Command("taskset", append([]string{"-c", cpu}, args...)...)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
		return cmd, nil
	}
	start := func(cpu string, args ...string) (*exec.Cmd, error) { return startEnv(cpu, nil, args...) }
	// stop ends a process started above (SIGINT, as an operator would) and forgets it.
	stop := func(cmd *exec.Cmd) {
		for i, p := range procs {
			if p == cmd {
				cmd.Process.Signal(os.Interrupt)
				cmd.Wait()
				procs = append(procs[:i], procs[i+1:]...)
				return
			}
		}
	}
	upAddr, bareAddr, bareProxyAddr, lkAddr, metricsAddr := freeAddr(), freeAddr(), freeAddr(), freeAddr(), freeAddr()
	bareTAddr := freeAddr()
	if _, err := start(loadCPU, self, "-serve-upstream", upAddr); err != nil {
		return err
	}
	if _, err := start(serverCPU, self, "-serve-bare", bareAddr); err != nil {
		return err
	}
	if _, err := start(serverCPU, self, "-serve-bare-timeouts", bareTAddr); err != nil {
		return err
	}
	if _, err := start(serverCPU, self, "-serve-bare-proxy", bareProxyAddr, "-upstream", "http://"+upAddr); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(lkAddr)
	public := "http://localhost:" + port
	cfgPath, err := writeConfig(tmp, "", lkAddr, metricsAddr, upAddr, "")
	if err != nil {
		return err
	}
	for _, addr := range []string{upAddr, bareAddr, bareTAddr, bareProxyAddr} {
		if err := waitHTTP("http://"+addr+"/", 10*time.Second); err != nil {
			return err
		}
	}
	// Create the user and the database first, so that start-to-ready is measured on an existing one.
	add := exec.Command(bin, "user", "add", "bench", "--config", cfgPath)
	addOut, err := add.CombinedOutput()
	if err != nil {
		return fmt.Errorf("user add: %v\n%s", err, addOut)
	}
	lines := strings.Split(strings.TrimSpace(string(addOut)), "\n")
	link, _ := url.Parse(lines[len(lines)-1])
	var readies []time.Duration
	var lk *exec.Cmd
	for i := range 5 {
		t0 := time.Now()
		lk, err = start(serverCPU, bin, "serve", "--config", cfgPath)
		if err != nil {
			return err
		}
		if err := waitHTTP(public+"/.latchkey/healthz", 10*time.Second); err != nil {
			return err
		}
		readies = append(readies, time.Since(t0))
		if i < 4 {
			stop(lk)
		}
	}
	sort.Slice(readies, func(i, j int) bool { return readies[i] < readies[j] })

	pk := lktest.NewPasskey()
	cookie, err := enrol(public, link.Query().Get("token"), pk)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	idleRSS := procStatus(lk.Process.Pid, "VmRSS")

	// wrkScript runs wrk on loadCPU; script, when set, is its Lua script and scriptArgs what
	// follows "--" on its command line.
	wrkScript := func(name, target, script string, scriptArgs []string, headers ...string) (result, error) {
		args := []string{"-c", loadCPU, "wrk", "-t1", "-c", strconv.Itoa(conns), "-d", d.String(), "--latency"}
		for _, h := range headers {
			args = append(args, "-H", h)
		}
		if script != "" {
			args = append(args, "-s", script)
		}
		args = append(args, target)
		if len(scriptArgs) > 0 {
			args = append(append(args, "--"), scriptArgs...)
		}
		log.Printf("wrk: %s", name)
		outb, err := exec.Command("taskset", args...).CombinedOutput()
		if err != nil {
			return result{}, fmt.Errorf("wrk %s: %v\n%s", name, err, outb)
		}
		return parseWrk(name, string(outb))
	}
	wrk := func(name, target string, headers ...string) (result, error) {
		return wrkScript(name, target, "", nil, headers...)
	}
	chains, err := startChains(tmp, upAddr, lkAddr, serverCPU, startEnv)
	if err != nil {
		return err
	}
	fwd := []string{"X-Forwarded-Method: GET", "X-Forwarded-Proto: https", "X-Forwarded-Host: app.localhost",
		"X-Forwarded-Uri: /d/dashboard?orgId=1", "X-Forwarded-For: 198.51.100.7"}
	ck := "Cookie: latchkey_session=" + cookie
	// What a browser sends on its first navigation: the 302 to the login page is what it gets.
	browser := []string{"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
		"Accept-Language: en-GB,en;q=0.9", "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"}
	steps := []step{
		{name: "(a) bare net/http handler", target: "http://" + bareAddr + "/"},
		{name: "(b) /auth/forward, valid cookie", target: "http://" + lkAddr + "/.latchkey/auth/forward", headers: append([]string{ck}, fwd...), base: "(a)"},
		{name: "(c) /auth/forward, no cookie, browser navigation (302)", target: "http://" + lkAddr + "/.latchkey/auth/forward", headers: append(append([]string{}, browser...), fwd...), base: "(a)"},
		{name: "(d) /auth/request, valid cookie", target: "http://" + lkAddr + "/.latchkey/auth/request", headers: []string{ck, "X-Original-URL: https://app.localhost/d/dashboard?orgId=1", "X-Original-Method: GET"}, base: "(a)"},
		{name: "(a') bare handler, Latchkey's server timeouts", target: "http://" + bareTAddr + "/", base: "(a)"},
		{name: "(f) bare httputil.ReverseProxy, tuned transport", target: "http://" + bareProxyAddr + "/d/dashboard"},
		{name: "(e) Latchkey reverse proxy, valid cookie", target: "http://" + lkAddr + "/d/dashboard", headers: []string{ck, "Host: app.localhost:" + port}, base: "(f)"},
		{name: "(h) nginx alone", target: chains.nginxAlone + "/d/dashboard", headers: []string{"Host: app.example.com"}},
		{name: "(g) nginx -> Latchkey (auth_request, shipped files)", target: chains.nginx + "/d/dashboard", headers: []string{ck, "Host: " + chains.nginxHost}, base: "(h)"},
		{name: "(j) Caddy alone", target: chains.caddyAlone + "/d/dashboard", headers: []string{"Host: " + chains.caddyAloneHost}},
		{name: "(i) Caddy -> Latchkey (forward_auth, shipped Caddyfile)", target: chains.caddy + "/d/dashboard", headers: []string{ck, "Host: " + chains.caddyHost}, base: "(j)"},
	}
	if traefikBin != "" {
		tc, err := startTraefik(traefikBin, tmp, upAddr, lkAddr, serverCPU, startEnv)
		if err != nil {
			return err
		}
		steps = append(steps,
			step{name: "(l) Traefik alone", target: tc.alone + "/d/dashboard", headers: []string{"Host: " + tc.host}},
			step{name: "(k) Traefik -> Latchkey (forwardAuth as shipped)", target: tc.url + "/d/dashboard", headers: []string{ck, "Host: " + tc.host}, base: "(l)"})
	}
	// Every repeat runs the whole list, so that a case and its baseline are measured minutes
	// apart at most and a noisy neighbour shows as a spread between repeats, not as a ratio.
	runs := make([][]result, len(steps))
	for rep := range repeats {
		log.Printf("repeat %d of %d", rep+1, repeats)
		for i, st := range steps {
			r, err := wrk(st.name, st.target, st.headers...)
			if err != nil {
				return err
			}
			if r.non2xx > 0 && !strings.Contains(st.name, "(302)") {
				log.Printf("%s: %d responses that were not 2xx/3xx", st.name, r.non2xx)
			}
			runs[i] = append(runs[i], r)
		}
	}
	log.Printf("login ceremonies")
	cps, err := ceremonies(public, pk, d, 8)
	if err != nil {
		return err
	}
	peakRSS := procStatus(lk.Process.Pid, "VmHWM")
	table := render(steps, runs, cps, readies[len(readies)/2], idleRSS, peakRSS, d, conns, traefikBin != "")
	if o.scale {
		stop(lk) // the scale part's servers take the server CPU alone
		sr, err := runScale(scaleEnv{bin: bin, tmp: tmp, upAddr: upAddr, bareAddr: bareAddr, serverCPU: serverCPU,
			sessions: o.sessions, logoutsPS: o.logoutRate, repeats: repeats, start: start, stop: stop, wrk: wrkScript})
		if err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString(table)
		renderScale(&b, sr, d, conns, o.logoutRate)
		table = b.String()
	} else {
		table += "\nThe session state at scale (issue 17) is measured with `go run ./bench -scale`.\n"
	}
	fmt.Print(table)
	if out != "" {
		return os.WriteFile(out, []byte(table), 0o644)
	}
	return nil
}

// writeConfig writes a Latchkey configuration for a server on lkAddr with its data in
// dir/data+suffix, extra appended (top-level YAML sections), and returns its path.
func writeConfig(dir, suffix, lkAddr, metricsAddr, upAddr, extra string) (string, error) {
	_, port, _ := net.SplitHostPort(lkAddr)
	cfgPath := filepath.Join(dir, "latchkey"+suffix+".yaml")
	cfg := fmt.Sprintf(`data_dir: %s
server:
  listen: %s
  public_url: http://localhost:%s
access_control:
  default_policy: deny
  rules:
    - hosts: ["app.localhost", "app.localhost:%s", "app.example.com"]
      policy: passkey
routes:
  - host: app.localhost:%s
    upstream: http://%s
metrics:
  listen: %s
log:
  level: warn
`, filepath.Join(dir, "data"+suffix), lkAddr, port, port, port, upAddr, metricsAddr) + extra
	return cfgPath, os.WriteFile(cfgPath, []byte(cfg), 0o600)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(u string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within %s", u, limit)
}

// client talks to a running latchkey as a browser on its public origin.
type client struct {
	public  string
	cookies map[string]string
	xff     string
}

func (c *client) post(path string, body []byte) ([]byte, int, error) {
	req, _ := http.NewRequest("POST", c.public+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.public)
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	var parts []string
	for k, v := range c.cookies {
		parts = append(parts, k+"="+v)
	}
	req.Header.Set("Cookie", strings.Join(parts, "; "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return b, resp.StatusCode, nil
}

func enrol(public, token string, pk *lktest.Passkey) (string, error) {
	c := &client{public: public, cookies: map[string]string{}}
	body, _ := json.Marshal(map[string]string{"token": token})
	b, status, err := c.post("/.latchkey/api/register/begin", body)
	if err != nil || status != 200 {
		return "", fmt.Errorf("register/begin: %d %v %s", status, err, b)
	}
	opts, err := lktest.ParseOptions(b)
	if err != nil {
		return "", err
	}
	b, status, err = c.post("/.latchkey/api/register/finish", pk.Attest(opts, public, lktest.Ceremony{}))
	if err != nil || status != 200 {
		return "", fmt.Errorf("register/finish: %d %v %s", status, err, b)
	}
	return c.cookies["latchkey_session"], nil
}

// login runs one passkey login (begin + finish) as a client at address xff (claimed through the
// trusted loopback proxy) and returns the new session cookie. The assertion uses a zero counter,
// as synced passkeys do, so that concurrent logins with one passkey do not trip clone detection.
func login(public string, pk *lktest.Passkey, xff string) (string, error) {
	c := &client{public: public, cookies: map[string]string{}, xff: xff}
	b, status, err := c.post("/.latchkey/api/login/begin", []byte("{}"))
	if err != nil || status != 200 {
		return "", fmt.Errorf("login/begin: %d %v %s", status, err, b)
	}
	opts, err := lktest.ParseOptions(b)
	if err != nil {
		return "", fmt.Errorf("login/begin: %v", err)
	}
	zero := uint32(0)
	b, status, err = c.post("/.latchkey/api/login/finish", pk.Assert(opts, public, lktest.Ceremony{Counter: &zero}))
	if err != nil || status != 200 {
		return "", fmt.Errorf("login/finish: %d %v %s", status, err, b)
	}
	if c.cookies["latchkey_session"] == "" {
		return "", errors.New("login/finish: no session cookie")
	}
	return c.cookies["latchkey_session"], nil
}

// ceremonies runs begin+finish logins from several goroutines for d and returns successes per
// second (see login); each iteration claims a random client address, so that per-address rate
// limits do not cap the measurement.
func ceremonies(public string, pk *lktest.Passkey, d time.Duration, workers int) (float64, error) {
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				xff := fmt.Sprintf("10.%d.%d.%d", rand.IntN(256), rand.IntN(256), rand.IntN(256))
				if _, err := login(public, pk, xff); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		return 0, fmt.Errorf("no login succeeded: %v", firstErr.Load())
	}
	if f := failed.Load(); f > 0 {
		log.Printf("%d logins failed (first: %v)", f, firstErr.Load())
	}
	return float64(ok.Load()) / time.Since(t0).Seconds(), nil
}

var latencyRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)

func parseWrk(name, out string) (result, error) {
	r := result{name: name}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Requests/sec:"); ok {
			r.rps, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if v, ok := strings.CutPrefix(line, "Non-2xx or 3xx responses:"); ok {
			r.non2xx, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if v, ok := strings.CutPrefix(line, "5xx:"); ok {
			r.fivexx, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	for _, m := range latencyRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		if m[1] == "50" {
			r.p50 = time.Duration(v * float64(unit))
		} else {
			r.p99 = time.Duration(v * float64(unit))
		}
	}
	if r.rps == 0 {
		return r, errors.New("wrk output without Requests/sec:\n" + out)
	}
	return r, nil
}

func procStatus(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "n/a"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return fmt.Sprintf("%.1f MB", float64(kb)/1024)
		}
	}
	return "n/a"
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s", runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version())
}

func median(xs []float64) float64 {
	ys := append([]float64(nil), xs...)
	sort.Float64s(ys)
	if len(ys) == 0 {
		return 0
	}
	return ys[len(ys)/2]
}

func render(steps []step, runs [][]result, cps float64, ready time.Duration, idle, peak string, d time.Duration, conns int, traefik bool) string {
	var b strings.Builder
	repeats := len(runs[0])
	fmt.Fprintf(&b, "# Benchmarks\n\nMeasured by `go run ./bench` on %s, %s.\n", machine(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Each row is %d wrk runs of %s at %d connections on 127.0.0.1, one per repeat, the repeats interleaved (the whole\n", repeats, d, conns)
	fmt.Fprintf(&b, "table once, then again). Latchkey, the bare baselines, nginx and Caddy run pinned to one CPU; wrk and the upstream to the\n")
	fmt.Fprintf(&b, "other. A ratio compares a row with its baseline in the same repeat: the median, and the range over the repeats. Absolute\n")
	fmt.Fprintf(&b, "figures depend on the machine and its load; p50 and p99 are medians over the repeats. `latchkey serve` runs with its\n")
	fmt.Fprintf(&b, "own garbage-collector pacing (at least 16 MB of heap growth between collections; README, \"Metrics, health and\n")
	fmt.Fprintf(&b, "logs\"), the bare Go baselines with Go's default.\n\n")
	fmt.Fprintln(&b, "| case | requests/s | ratio to baseline | p50 | p99 | p99 / baseline p99 | non-2xx/3xx |")
	fmt.Fprintln(&b, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	index := map[string]int{}
	for i, st := range steps {
		index[st.name[:strings.IndexByte(st.name, ')')+1]] = i
	}
	for i, st := range steps {
		var rps, p50, p99, ratios, p99s []float64
		non := 0
		for k, r := range runs[i] {
			rps, p50, p99 = append(rps, r.rps), append(p50, float64(r.p50)), append(p99, float64(r.p99))
			non += r.non2xx
			if bi, ok := index[st.base]; ok && st.base != "" {
				base := runs[bi][k]
				ratios = append(ratios, r.rps/base.rps)
				p99s = append(p99s, float64(r.p99)/float64(base.p99))
			}
		}
		ratio, p99ratio := "baseline", ""
		if len(ratios) > 0 {
			lo, hi := ratios[0], ratios[0]
			for _, x := range ratios {
				lo, hi = min(lo, x), max(hi, x)
			}
			ratio = fmt.Sprintf("%.2fx of %s (%.2f–%.2f)", median(ratios), st.base, lo, hi)
			p99ratio = fmt.Sprintf("%.2fx", median(p99s))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %d |\n", st.name, median(rps), ratio,
			time.Duration(median(p50)).Round(10*time.Microsecond), time.Duration(median(p99)).Round(10*time.Microsecond), p99ratio, non)
	}
	if e, j := index["(e)"], index["(j)"]; len(steps) > max(e, j) && e != j {
		var rs []float64
		for k := range runs[e] {
			rs = append(rs, runs[e][k].rps/runs[j][k].rps)
		}
		fmt.Fprintf(&b, "\nLatchkey's reverse proxy (e) against Caddy alone (j) on the same upstream: %.2fx.\n", median(rs))
	}
	fmt.Fprintf(&b, "(c) answers 302, which wrk counts with 2xx: its last column is 0 when every answer was the login redirect.\n")
	if traefik {
		fmt.Fprintf(&b, "Traefik (k, l) runs the shipped middleware's forwardAuth settings and entry point options on plain HTTP; its\n")
		fmt.Fprintf(&b, "forwardAuth client keeps at most 2 idle connections to Latchkey (see deploy/traefik/dynamic/latchkey.yml).\n")
	} else {
		fmt.Fprintf(&b, "The Traefik chain is measured with `-traefik` (or LATCHKEY_TRAEFIK_BIN set).\n")
	}
	fmt.Fprintf(&b, "\n| other | value |\n| --- | ---: |\n")
	fmt.Fprintf(&b, "| login ceremonies per second (begin + finish, 8 clients, ES256) | %.0f |\n", cps)
	fmt.Fprintf(&b, "| start to ready on an existing database (median of 5) | %s |\n", ready.Round(time.Millisecond))
	fmt.Fprintf(&b, "| resident memory after start and one login | %s |\n", idle)
	fmt.Fprintf(&b, "| peak resident memory over the whole run | %s |\n", peak)
	return b.String()
}
