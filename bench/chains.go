package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// step is one row of the load table: a wrk run against target, compared with the row named by
// base (its first three characters, such as "(a)") in the same repeat.
type step struct {
	name, target string
	headers      []string
	base         string
}

// chains are the proxy chains users deploy, each next to the same proxy without auth on the
// same upstream: nginx with the shipped deploy/nginx files, Caddy with the shipped Caddyfile.
type chains struct {
	nginx, nginxHost           string // URL and Host of the protected site through nginx
	nginxAlone                 string // the same nginx, a server block without auth_request
	caddy, caddyHost           string
	caddyAlone, caddyAloneHost string
}

// startChains starts nginx and two Caddy processes on serverCPU (where Latchkey runs too: the
// proxy and the auth server share one CPU, the load and the upstream get the other).
func startChains(tmp, upAddr, lkAddr, serverCPU string, start func(cpu string, env []string, args ...string) (*exec.Cmd, error)) (chains, error) {
	var c chains
	repo, err := os.Getwd()
	if err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(repo, "deploy", "nginx")); err != nil {
		return c, fmt.Errorf("run the benchmarks from the repository root: %w", err)
	}
	for _, tool := range []string{"nginx", "caddy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return c, fmt.Errorf("%s is needed (Debian package %s)", tool, tool)
		}
	}

	nginxPort, alonePort := freePort(), freePort()
	dir := filepath.Join(tmp, "nginx")
	alone := fmt.Sprintf(`    server {
        listen 127.0.0.1:%d;
        server_name app.example.com;
        location / {
            proxy_pass http://app;
            proxy_set_header Host $host;
        }
    }`, alonePort)
	args, err := lktest.WriteNginx(repo, dir, lktest.ProxyConfig{Port: nginxPort, Latchkey: lkAddr, App: upAddr},
		lktest.NginxOptions{WorkerConnections: 4096, Extra: alone})
	if err != nil {
		return c, err
	}
	if _, err := start(serverCPU, nil, append([]string{"nginx"}, args...)...); err != nil {
		return c, err
	}
	c.nginx, c.nginxHost = "http://127.0.0.1:"+strconv.Itoa(nginxPort), "app.example.com:"+strconv.Itoa(nginxPort)
	c.nginxAlone = "http://127.0.0.1:" + strconv.Itoa(alonePort)

	caddyPort, caddyAlonePort := freePort(), freePort()
	cdir := filepath.Join(tmp, "caddy")
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return c, err
	}
	caddyfile, caddyEnv, err := lktest.WriteCaddy(repo, cdir, lktest.ProxyConfig{Port: caddyPort, Latchkey: lkAddr, App: upAddr})
	if err != nil {
		return c, err
	}
	if _, err := start(serverCPU, caddyEnv, "caddy", "run", "--config", caddyfile, "--adapter", "caddyfile"); err != nil {
		return c, err
	}
	c.caddy, c.caddyHost = "http://127.0.0.1:"+strconv.Itoa(caddyPort), "app.example.com:"+strconv.Itoa(caddyPort)

	adir := filepath.Join(tmp, "caddy-alone")
	if err := os.MkdirAll(adir, 0o700); err != nil {
		return c, err
	}
	aloneFile := filepath.Join(adir, "Caddyfile")
	if err := os.WriteFile(aloneFile, []byte(fmt.Sprintf("{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\nhttp://app.example.com:%d {\n\treverse_proxy %s\n}\n",
		caddyAlonePort, upAddr)), 0o600); err != nil {
		return c, err
	}
	aloneEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + adir, "XDG_DATA_HOME=" + adir, "XDG_CONFIG_HOME=" + adir}
	if _, err := start(serverCPU, aloneEnv, "caddy", "run", "--config", aloneFile, "--adapter", "caddyfile"); err != nil {
		return c, err
	}
	c.caddyAlone, c.caddyAloneHost = "http://127.0.0.1:"+strconv.Itoa(caddyAlonePort), "app.example.com:"+strconv.Itoa(caddyAlonePort)

	for _, u := range []string{c.nginx, c.nginxAlone, c.caddy, c.caddyAlone} {
		if err := waitTCP(strings.TrimPrefix(u, "http://"), 15*time.Second); err != nil {
			return c, err
		}
	}
	return c, nil
}

func freePort() int {
	_, p, _ := strings.Cut(freeAddr(), ":")
	n, _ := strconv.Atoi(p)
	return n
}

func waitTCP(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}
