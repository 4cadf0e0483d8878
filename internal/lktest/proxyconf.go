package lktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// NginxOptions tune the nginx.conf around the shipped files; the zero value is the tests' own.
type NginxOptions struct {
	WorkerConnections int  // default 64
	AccessLog         bool // write access.log (the tests keep it, benchmarks turn it off)
	// Extra is more http-level configuration, such as a baseline server block without auth.
	Extra string
}

// upstreamServer matches the one server line of each upstream block in deploy/nginx's
// upstreams.conf; the tests swap in their addresses and keep everything else (keepalive).
var upstreamServer = regexp.MustCompile(`(?s)(upstream (latchkey|app) \{.*?\n\s*server )[^;\s]+;`)

// WriteNginx fills dir with a runnable nginx prefix made of the server blocks and snippets that
// repo's deploy/nginx ships, listening on 127.0.0.1:cfg.Port instead of port 80, with the
// upstream addresses of cfg and nothing else changed. It returns nginx's command-line arguments.
func WriteNginx(repo, dir string, cfg ProxyConfig, opts NginxOptions) ([]string, error) {
	src := filepath.Join(repo, "deploy", "nginx")
	for _, sub := range []string{"conf.d", "snippets", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	listen := "${1}listen 127.0.0.1:" + strconv.Itoa(cfg.Port) + "${2};"
	addrs := map[string]string{"latchkey": cfg.Latchkey, "app": cfg.App}
	for _, sub := range []string{"conf.d", "snippets"} {
		files, err := filepath.Glob(filepath.Join(src, sub, "*.conf"))
		if err != nil || len(files) == 0 {
			return nil, fmt.Errorf("no %s/*.conf in deploy/nginx: %v", sub, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			s := listen80.ReplaceAllString(string(b), listen)
			if filepath.Base(f) == "upstreams.conf" {
				n := 0
				s = upstreamServer.ReplaceAllStringFunc(s, func(m string) string {
					n++
					g := upstreamServer.FindStringSubmatch(m)
					return g[1] + addrs[g[2]] + ";"
				})
				if n != 2 {
					return nil, errors.New("deploy/nginx/conf.d/upstreams.conf: want one server line in upstream latchkey and one in upstream app")
				}
			}
			if err := os.WriteFile(filepath.Join(dir, sub, filepath.Base(f)), []byte(s), 0o644); err != nil {
				return nil, err
			}
		}
	}
	if opts.WorkerConnections == 0 {
		opts.WorkerConnections = 64
	}
	accessLog := "off"
	if opts.AccessLog {
		accessLog = filepath.Join(dir, "access.log")
	}
	tmp := filepath.Join(dir, "tmp")
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections %[3]d; }
http {
    access_log %[4]s;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include conf.d/*.conf;
%[5]s
}
`, dir, tmp, opts.WorkerConnections, accessLog, opts.Extra)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	// -e sends start-up errors to the file too, instead of the packaged /var/log path.
	return []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")}, nil
}

// CaddyEnv is the environment that runs repo's deploy/caddy/Caddyfile on 127.0.0.1:cfg.Port:
// its {$...} placeholders make the protected site http://app.example.com:cfg.Port and the
// portal http://auth.example.com:cfg.Port, and Caddy's state stays in dir.
func CaddyEnv(dir string, cfg ProxyConfig) []string {
	port := strconv.Itoa(cfg.Port)
	return []string{
		"PATH=" + os.Getenv("PATH"),
		// Caddy keeps its state under HOME/XDG directories; keep it inside dir.
		"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir,
		"CADDY_ADMIN=off",
		"CADDY_BIND=127.0.0.1",
		"LATCHKEY_SITE=http://auth.example.com:" + port,
		"LATCHKEY_UPSTREAM=" + cfg.Latchkey,
		"APP_SITE=http://app.example.com:" + port,
		"APP_PORT=" + port,
		"APP_UPSTREAM=" + cfg.App,
	}
}

// Caddyfile is the path of the Caddyfile that repo ships.
func Caddyfile(repo string) string { return filepath.Join(repo, "deploy", "caddy", "Caddyfile") }
