package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/latchkeyhq/latchkey/internal/lktest"
)

// TestSystemdUnit checks the sandboxing the unit promises and, where systemd-analyze exists,
// that systemd accepts the unit.
func TestSystemdUnit(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(lktest.RepoDir(t), "deploy", "systemd", "latchkey.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(src)
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=latchkey", "ProtectSystem=strict", "ProtectHome=yes",
		"NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=",
		"SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "UMask=0077",
		"ExecStart=/usr/local/bin/latchkey serve --config /etc/latchkey/latchkey.yaml", "EnvironmentFile=-/etc/latchkey/latchkey.env",
		"Environment=LATCHKEY_DATA_DIR=/var/lib/latchkey"} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}

	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (Debian package systemd); the unit was not verified")
	}
	// verify insists that ExecStart exists and is executable: point it at this test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "latchkey.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/latchkey", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", "--man=false", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		msg := "systemd-analyze verify: " + errString(err) + "\n" + string(out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		// Outside CI, a machine without a running systemd may not be able to judge the unit.
		t.Skip(msg)
	}
}

func errString(err error) string {
	if err == nil {
		return "warnings"
	}
	return err.Error()
}

// TestKubernetesManifests parses every manifest in deploy/kubernetes, checks the objects the
// docs promise, and runs the ConfigMap's latchkey.yaml through `config check`.
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(lktest.RepoDir(t), "deploy", "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	kinds := map[string]map[string]any{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", filepath.Base(f), i, err)
			}
			if doc == nil {
				continue
			}
			kind, _ := doc["kind"].(string)
			meta, _ := doc["metadata"].(map[string]any)
			if doc["apiVersion"] == nil || kind == "" || (kind != "Kustomization" && (meta == nil || meta["name"] == nil)) {
				t.Errorf("%s document %d lacks apiVersion, kind or metadata.name", filepath.Base(f), i)
				continue
			}
			name := kind
			if kind == "Ingress" {
				name += "/" + meta["name"].(string)
			}
			kinds[name] = doc
		}
	}
	for _, k := range []string{"Deployment", "Service", "PersistentVolumeClaim", "ConfigMap", "Secret", "Ingress/latchkey", "Ingress/grafana", "Kustomization"} {
		if kinds[k] == nil {
			t.Errorf("deploy/kubernetes has no %s", k)
		}
	}

	if ing := kinds["Ingress/grafana"]; ing != nil {
		ann, _ := ing["metadata"].(map[string]any)["annotations"].(map[string]any)
		authURL, _ := ann["nginx.ingress.kubernetes.io/auth-url"].(string)
		signin, _ := ann["nginx.ingress.kubernetes.io/auth-signin"].(string)
		headers, _ := ann["nginx.ingress.kubernetes.io/auth-response-headers"].(string)
		if !strings.HasSuffix(authURL, "/.latchkey/auth/request") {
			t.Errorf("auth-url = %q, want Latchkey's /.latchkey/auth/request", authURL)
		}
		if !strings.HasSuffix(signin, "/.latchkey/login") {
			t.Errorf("auth-signin = %q, want the login page (ingress-nginx appends ?rd=)", signin)
		}
		for _, h := range []string{"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups"} {
			if !strings.Contains(headers, h) {
				t.Errorf("auth-response-headers lacks %s", h)
			}
		}
	}

	if cm := kinds["ConfigMap"]; cm != nil {
		data, _ := cm["data"].(map[string]any)
		cfg, _ := data["latchkey.yaml"].(string)
		path := filepath.Join(t.TempDir(), "latchkey.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := runCLI("config", "check", "--config", path); code != 0 {
			t.Errorf("the ConfigMap's latchkey.yaml fails config check (exit %d):\n%s", code, errOut)
		}
	}

	if d := kinds["Deployment"]; d != nil {
		text, _ := yaml.Marshal(d)
		for _, want := range []string{"/.latchkey/healthz", "containerPort: 8080", "containerPort: 9191", "runAsNonRoot: true",
			"readOnlyRootFilesystem: true", "claimName: latchkey-data", "type: Recreate"} {
			if !bytes.Contains(text, []byte(want)) {
				t.Errorf("the Deployment lacks %q", want)
			}
		}
	}
}

// TestDockerfile checks what the image promises (Docker itself cannot run here): a static
// binary, a non-root distroless final stage, and a HEALTHCHECK that needs no shell or curl.
func TestDockerfile(t *testing.T) {
	root := lktest.RepoDir(t)
	src, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(src)
	var froms []string
	for _, line := range strings.Split(df, "\n") {
		if strings.HasPrefix(line, "FROM ") {
			froms = append(froms, line)
		}
	}
	if len(froms) < 2 {
		t.Errorf("want a multi-stage build, found %d FROM lines", len(froms))
	} else if last := froms[len(froms)-1]; !strings.Contains(last, "distroless/static") && !strings.Contains(last, "scratch") {
		t.Errorf("final stage %q is not distroless/static or scratch", last)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "USER 65532", "VOLUME /data",
		`HEALTHCHECK`, `CMD ["/usr/local/bin/latchkey", "healthcheck"]`, "WORKDIR /etc/latchkey", "./cmd/latchkey"} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "latchkey-data", "*.db", "*.key"} {
		if !strings.Contains(string(ignore), want) {
			t.Errorf(".dockerignore does not keep %s out of the build context", want)
		}
	}
	// The image's binary is built with CGO_ENABLED=0: every package it needs must build without cgo.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{if .CgoFiles}}{{.ImportPath}}{{end}}", "./cmd/latchkey")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 go list: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("packages that still need cgo with CGO_ENABLED=0:\n%s", s)
	}
}

// TestHealthcheck runs `latchkey healthcheck` against a live app (by --url and by the config's
// server.listen) and against a port nobody listens on.
func TestHealthcheck(t *testing.T) {
	o := startOpsApp(t, t.TempDir(), "")
	if out, errOut, code := runCLI("healthcheck", "--url", o.url+"/.latchkey/healthz"); code != 0 || strings.TrimSpace(out) != "healthy" {
		t.Errorf("healthcheck --url: exit %d, %q %q", code, out, errOut)
	}
	if out, errOut, code := o.cli("healthcheck"); code != 0 {
		t.Errorf("healthcheck from the config: exit %d, %q %q", code, out, errOut)
	}
	dead := "http://" + opsDeadAddr(t) + "/.latchkey/healthz"
	if _, errOut, code := runCLI("healthcheck", "--url", dead, "--timeout", "2s"); code != 1 || !strings.Contains(errOut, "unhealthy") {
		t.Errorf("healthcheck of a dead server: exit %d, %q; want 1 and \"unhealthy\"", code, errOut)
	}
	if _, _, code := runCLI("healthcheck", "--url", o.url+"/.latchkey/nothing-here"); code != 1 {
		t.Errorf("healthcheck of a 404: exit %d, want 1", code)
	}

	for _, c := range []struct{ listen, tls, want string }{
		{"127.0.0.1:8080", "", "http://127.0.0.1:8080/.latchkey/healthz"},
		{"0.0.0.0:8080", "", "http://127.0.0.1:8080/.latchkey/healthz"},
		{":9000", "", "http://127.0.0.1:9000/.latchkey/healthz"},
		{"[::]:8080", "", "http://127.0.0.1:8080/.latchkey/healthz"},
		{"[::1]:8080", "", "http://[::1]:8080/.latchkey/healthz"},
		{"0.0.0.0:8443", "tls.crt", "https://127.0.0.1:8443/.latchkey/healthz"},
	} {
		cfg := Default()
		cfg.Server.Listen, cfg.Server.TLS.CertFile = c.listen, c.tls
		if got := healthURL(cfg); got != c.want {
			t.Errorf("healthURL(listen %q, tls %q) = %q, want %q", c.listen, c.tls, got, c.want)
		}
	}
}

func opsDeadAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(lktest.FreePort(t))
}

// TestComposeFilesUseReadiness: every shipped compose file checks Latchkey's readiness (not
// liveness) and starts its proxy only once Latchkey is ready (issue 17).
func TestComposeFilesUseReadiness(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(lktest.RepoDir(t), "deploy", "*", "docker-compose.yml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("want the nginx, Caddy and Traefik compose files, found %v (%v)", files, err)
	}
	type service struct {
		Healthcheck struct{ Test []string } `yaml:"healthcheck"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Services map[string]service }
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		lk, ok := doc.Services["latchkey"]
		if !ok || !strings.Contains(strings.Join(lk.Healthcheck.Test, " "), "healthcheck --ready") {
			t.Errorf("%s: the latchkey service's healthcheck is %q, want `latchkey healthcheck --ready`", f, lk.Healthcheck.Test)
		}
		proxy := filepath.Base(filepath.Dir(f))
		if doc.Services[proxy].DependsOn["latchkey"].Condition != "service_healthy" {
			t.Errorf("%s: %s does not wait for latchkey to be healthy (ready)", f, proxy)
		}
	}
}
