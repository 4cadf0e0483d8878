package traefiktest

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The tests run the files deploy/traefik ships. They change them structurally (YAML, not text)
// and only where a test machine differs from a server: addresses and ports, no TLS or ACME, and
// no Docker (the compose file's labels become file-provider routers, see composeRouters).

// traefikConfig says how one Traefik of a test differs from the shipped files.
type traefikConfig struct {
	Name        string            // for logs
	Port        int               // the websecure entry point; 0 picks one
	Latchkey    string            // host:port that the forwardAuth address points at instead
	AuthAddress string            // when set, the whole forwardAuth address (a recording server)
	Apps        map[string]string // service name (compose or file provider) → host:port of a test server
	// TrustForwardHeader, when set, replaces the middleware's trustForwardHeader.
	TrustForwardHeader *bool
	// TrustedIPs, when set, is the websecure entry point's forwardedHeaders.trustedIPs.
	TrustedIPs []string
	// NoAuthRequestHeaders removes the middleware's authRequestHeaders (Traefik then copies every
	// client header to Latchkey).
	NoAuthRequestHeaders bool
	// A route that answers 200 once the dynamic configuration is loaded (default: the portal's
	// health check).
	ReadyHost, ReadyPath string
}

// writeTraefikConfig writes the static file and the dynamic directory into dir and returns the
// static file's path and the (reserved) ports of its entry points.
func writeTraefikConfig(t *testing.T, dir string, cfg traefikConfig) (string, []int) {
	t.Helper()
	src := filepath.Join(suite.repo, "deploy", "traefik")
	dyn := filepath.Join(dir, "dynamic")
	if err := os.MkdirAll(dyn, 0o755); err != nil {
		t.Fatal(err)
	}

	static := loadYAML(t, filepath.Join(src, "traefik.yml"))
	eps := lookup(static, "entryPoints")
	if eps == nil || lookup(eps, "websecure") == nil {
		t.Fatal("deploy/traefik/traefik.yml: no entryPoints.websecure (the routers' entry point)")
	}
	var ports []int
	for _, kv := range entries(eps) {
		port := cfg.Port
		if kv[0].Value != "websecure" {
			port = reservePort(t)
		}
		ports = append(ports, port)
		mustSet(t, kv[1], "127.0.0.1:"+strconv.Itoa(port), "address")
		del(kv[1], "http", "tls") // plain HTTP on the test machine
	}
	if cfg.TrustedIPs != nil {
		mustSet(t, eps, cfg.TrustedIPs, "websecure", "forwardedHeaders", "trustedIPs")
	}
	if lookup(static, "providers", "file") == nil {
		t.Fatal("deploy/traefik/traefik.yml: no file provider (the middleware lives in dynamic/)")
	}
	del(static, "providers", "docker")
	mustSet(t, static, dyn, "providers", "file", "directory")
	del(static, "certificatesResolvers")
	mustSet(t, static, "DEBUG", "log", "level")
	mustSet(t, static, true, "log", "noColor")
	mustSet(t, static, false, "global", "checkNewVersion") // no network here
	mustSet(t, static, false, "global", "sendAnonymousUsage")
	path := filepath.Join(dir, "traefik.yml")
	writeYAML(t, path, static)

	files, err := filepath.Glob(filepath.Join(src, "dynamic", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no deploy/traefik/dynamic/*.yml: %v", err)
	}
	for _, f := range files {
		d := loadYAML(t, f)
		for _, kv := range entries(lookup(d, "http", "middlewares")) {
			fa := lookup(kv[1], "forwardAuth")
			if fa == nil {
				continue
			}
			addr := cfg.AuthAddress
			if addr == "" {
				u, err := url.Parse(lookup(fa, "address").Value)
				if err != nil {
					t.Fatalf("%s: middleware %s: address: %v", f, kv[0].Value, err)
				}
				u.Host = cfg.Latchkey
				addr = u.String()
			}
			mustSet(t, fa, addr, "address")
			if cfg.TrustForwardHeader != nil {
				mustSet(t, fa, *cfg.TrustForwardHeader, "trustForwardHeader")
			}
			if cfg.NoAuthRequestHeaders {
				del(fa, "authRequestHeaders")
			}
		}
		for _, kv := range entries(lookup(d, "http", "services")) {
			servers := lookup(kv[1], "loadBalancer", "servers")
			if servers == nil {
				continue
			}
			for _, s := range servers.Content {
				mustSet(t, s, "http://"+appAddr(t, cfg, kv[0].Value), "url")
			}
		}
		writeYAML(t, filepath.Join(dyn, filepath.Base(f)), d)
	}
	writeYAML(t, filepath.Join(dyn, "compose-labels.yml"), composeRouters(t, cfg))
	return path, ports
}

func appAddr(t *testing.T, cfg traefikConfig, service string) string {
	t.Helper()
	a, ok := cfg.Apps[service]
	if !ok {
		t.Fatalf("the shipped files name a service %q that the test gives no address", service)
	}
	return a
}

// composeRouters turns the Traefik labels of deploy/traefik/docker-compose.yml into the same
// routers and services for the file provider: what Traefik's Docker provider would make of them,
// with each container's port replaced by a test server. A label it does not know fails the test,
// so that the compose file cannot gain a setting the tests do not run.
func composeRouters(t *testing.T, cfg traefikConfig) *yaml.Node {
	t.Helper()
	compose := loadYAML(t, filepath.Join(suite.repo, "deploy", "traefik", "docker-compose.yml"))
	routers := map[string]map[string]any{}
	services := map[string]any{}
	for _, kv := range entries(lookup(compose, "services")) {
		container := kv[0].Value
		labels := lookup(kv[1], "labels")
		if labels == nil {
			continue
		}
		var own []string // routers declared on this container
		svc := container // the Docker provider names a container's one service after it
		for _, l := range labels.Content {
			k, v, ok := strings.Cut(l.Value, "=")
			if !ok || !strings.HasPrefix(k, "traefik.") {
				t.Fatalf("docker-compose.yml: %s: label %q is not key=value", container, l.Value)
			}
			parts := strings.Split(k, ".")
			switch {
			case k == "traefik.enable":
				if v != "true" {
					t.Fatalf("docker-compose.yml: %s: %s", container, l.Value)
				}
			case len(parts) == 5 && parts[1] == "http" && parts[2] == "routers":
				r := routers[parts[3]]
				if r == nil {
					r = map[string]any{}
					routers[parts[3]] = r
					own = append(own, parts[3])
				}
				switch parts[4] {
				case "rule", "service":
					r[parts[4]] = v
				case "entrypoints":
					r["entryPoints"] = strings.Split(v, ",")
				case "middlewares":
					r["middlewares"] = strings.Split(v, ",")
				default:
					t.Fatalf("docker-compose.yml: %s: the test does not know the router label %q", container, k)
				}
			case len(parts) == 7 && parts[1] == "http" && parts[2] == "services" && strings.Join(parts[4:], ".") == "loadbalancer.server.port":
				svc = parts[3]
			default:
				t.Fatalf("docker-compose.yml: %s: the test does not know the label %q", container, k)
			}
		}
		if len(own) == 0 {
			continue
		}
		services[svc] = map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]string{"url": "http://" + appAddr(t, cfg, container)}}}}
		for _, name := range own {
			if _, ok := routers[name]["service"]; !ok {
				routers[name]["service"] = svc
			}
		}
	}
	var n yaml.Node
	if err := n.Encode(map[string]any{"http": map[string]any{"routers": routers, "services": services}}); err != nil {
		t.Fatal(err)
	}
	return &n
}

// YAML helpers over yaml.v3 nodes, so that everything the tests do not change stays as shipped.

func loadYAML(t *testing.T, path string) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: not a YAML mapping", path)
	}
	return doc.Content[0]
}

func writeYAML(t *testing.T, path string, n *yaml.Node) {
	t.Helper()
	b, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// entries returns a mapping's key and value nodes in order (none for nil or a non-mapping).
func entries(n *yaml.Node) [][2]*yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

// lookup follows a path of mapping keys; nil when any is missing.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	for _, k := range path {
		var next *yaml.Node
		for _, kv := range entries(n) {
			if kv[0].Value == k {
				next = kv[1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// mustSet sets the value at a path of mapping keys, making the mappings that are missing.
func mustSet(t *testing.T, n *yaml.Node, value any, path ...string) {
	t.Helper()
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		t.Fatal(err)
	}
	for i, k := range path {
		if n.Kind != yaml.MappingNode {
			t.Fatalf("setting %s: %q is not a mapping", strings.Join(path, "."), strings.Join(path[:i], "."))
		}
		next := lookup(n, k)
		if next == nil {
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, next)
		}
		if i == len(path)-1 {
			*next = v
		}
		n = next
	}
}

// del removes the key at a path, if it is there, and the mappings that it leaves empty (Traefik
// refuses an empty section such as "http: {}").
func del(n *yaml.Node, path ...string) {
	parent := lookup(n, path[:len(path)-1]...)
	if parent == nil || parent.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i].Value == path[len(path)-1] {
			parent.Content = append(parent.Content[:i], parent.Content[i+2:]...)
			break
		}
	}
	if len(parent.Content) == 0 && len(path) > 1 {
		del(n, path[:len(path)-1]...)
	}
}

// insertSeq inserts value into a sequence at index i.
func insertSeq(t *testing.T, seq *yaml.Node, i int, value any) {
	t.Helper()
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		t.Fatal(err)
	}
	seq.Content = append(seq.Content[:i], append([]*yaml.Node{&v}, seq.Content[i:]...)...)
}
