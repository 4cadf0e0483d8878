package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// traefikBinary is LATCHKEY_TRAEFIK_BIN, or, when asked for, the binary scripts/traefik-prepare
// prints as its last line (it builds Traefik when its cache has none, which takes minutes). An
// empty path and no error mean: not asked for.
func traefikBinary(asked bool) (string, error) {
	if bin := os.Getenv("LATCHKEY_TRAEFIK_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("LATCHKEY_TRAEFIK_BIN: %w", err)
		}
		return bin, nil
	}
	if !asked {
		return "", nil
	}
	log.Printf("scripts/traefik-prepare (builds Traefik when not cached)")
	cmd := exec.Command(filepath.Join("scripts", "traefik-prepare"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/traefik-prepare: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	bin := lines[len(lines)-1]
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("scripts/traefik-prepare printed %q: %w", bin, err)
	}
	return bin, nil
}

// traefikChain is Traefik with Latchkey's forwardAuth middleware on one entry point and the same
// router without it on another, both to the same upstream.
type traefikChain struct {
	url, alone string // base URLs of the protected entry point and of "Traefik alone"
	host       string // the Host both routers match
}

// startTraefik writes a minimal static and dynamic configuration into tmp/traefik, mirroring the
// middleware of deploy/traefik/dynamic/latchkey.yml and the entry point options of
// deploy/traefik/traefik.yml (plain HTTP on 127.0.0.1, no TLS, no Docker provider), and starts
// Traefik on serverCPU.
func startTraefik(bin, tmp, upAddr, lkAddr, serverCPU string, start func(cpu string, env []string, args ...string) (*exec.Cmd, error)) (traefikChain, error) {
	c := traefikChain{host: "app.example.com"}
	dir := filepath.Join(tmp, "traefik")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, err
	}
	port, alonePort := freePort(), freePort()
	dynamic := filepath.Join(dir, "dynamic.yml")
	static := fmt.Sprintf(`entryPoints:
  web:
    address: "127.0.0.1:%d"
    http:
      aliasHeadersStrategy: delete
  alone:
    address: "127.0.0.1:%d"
    http:
      aliasHeadersStrategy: delete
providers:
  file:
    filename: %q
log:
  level: ERROR
  noColor: true
global:
  checkNewVersion: false
  sendAnonymousUsage: false
`, port, alonePort, dynamic)
	dyn := fmt.Sprintf(`http:
  middlewares:
    latchkey:
      forwardAuth:
        address: http://%s/.latchkey/auth/forward
        trustForwardHeader: false
        authRequestHeaders:
          - Accept
          - Cookie
          - Authorization
        authResponseHeaders:
          - Remote-User
          - Remote-Email
          - Remote-Name
          - Remote-Groups
        maxResponseBodySize: 1048576
  routers:
    app:
      rule: Host(%[2]s)
      entryPoints: [web]
      middlewares: [latchkey]
      service: app
    alone:
      rule: Host(%[2]s)
      entryPoints: [alone]
      service: app
  services:
    app:
      loadBalancer:
        servers:
          - url: http://%[3]s
`, lkAddr, "`"+c.host+"`", upAddr)
	staticPath := filepath.Join(dir, "traefik.yml")
	if err := os.WriteFile(staticPath, []byte(static), 0o600); err != nil {
		return c, err
	}
	if err := os.WriteFile(dynamic, []byte(dyn), 0o600); err != nil {
		return c, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if _, err := start(serverCPU, env, bin, "--configFile="+staticPath); err != nil {
		return c, err
	}
	c.url, c.alone = "http://127.0.0.1:"+strconv.Itoa(port), "http://127.0.0.1:"+strconv.Itoa(alonePort)
	// Ready when both routers answer: the entry points listen before the file provider's
	// configuration is loaded.
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range []string{c.alone, c.url} {
		for {
			req, _ := http.NewRequest("GET", u+"/", nil)
			req.Host = c.host
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				// Traefik answers 404 until a router matches; then the upstream's 200, or
				// Latchkey's answer to a request without a cookie.
				if resp.StatusCode != http.StatusNotFound && resp.StatusCode < 500 {
					break
				}
			}
			if time.Now().After(deadline) {
				return c, errors.New("traefik: the routers did not answer within 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}
