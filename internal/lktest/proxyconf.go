package lktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
			if filepath.Base(f) == "upstreams.conf" {
				for i, site := range cfg.Sites {
					s += fmt.Sprintf("\nupstream site%d {\n    server %s;\n}\n", i, site.App)
				}
			}
			if filepath.Base(f) == "app.conf" && len(cfg.Sites) > 0 {
				if !strings.Contains(s, "server_name app.example.com;") || !strings.Contains(s, "proxy_pass http://app;") {
					return nil, errors.New("deploy/nginx/conf.d/app.conf no longer has server_name app.example.com and proxy_pass http://app")
				}
				for i, site := range cfg.Sites {
					up := fmt.Sprintf("site%d", i)
					conf := strings.ReplaceAll(s, "server_name app.example.com;", "server_name "+site.Name+";")
					conf = strings.ReplaceAll(conf, "proxy_pass http://app;", "proxy_pass http://"+up+";")
					if site.Port != 0 {
						conf = strings.ReplaceAll(conf, "listen 127.0.0.1:"+strconv.Itoa(cfg.Port)+";", "listen 127.0.0.1:"+strconv.Itoa(site.Port)+";")
					}
					if err := os.WriteFile(filepath.Join(dir, sub, up+".conf"), []byte(conf), 0o644); err != nil {
						return nil, err
					}
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

// appSiteBlock and appUpstream find the protected site of the shipped Caddyfile, so that tests can
// add copies of it (ProxyConfig.Sites) with only the host name and upstream changed.
var (
	caddySite     = regexp.MustCompile(`\{\$APP_SITE:[^}]*\}`)
	caddyUpstream = regexp.MustCompile(`\{\$APP_UPSTREAM:[^}]*\}`)
)

// WriteCaddy returns the Caddyfile that runs repo's deploy/caddy/Caddyfile on 127.0.0.1:cfg.Port
// (the shipped file itself, or a copy in dir with one more copy of its protected site per
// cfg.Sites) and the environment for it: the {$...} placeholders make the protected site
// http://app.example.com:cfg.Port and the portal http://auth.example.com:cfg.Port, and Caddy's
// state stays in dir.
func WriteCaddy(repo, dir string, cfg ProxyConfig) (caddyfile string, env []string, err error) {
	port := strconv.Itoa(cfg.Port)
	caddyfile = Caddyfile(repo)
	env = []string{
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
	if len(cfg.Sites) == 0 {
		return caddyfile, env, nil
	}
	b, err := os.ReadFile(caddyfile)
	if err != nil {
		return "", nil, err
	}
	src := string(b)
	start := strings.Index(src, "\n{$APP_SITE:")
	end := -1
	if start >= 0 {
		end = strings.Index(src[start:], "\n}\n")
	}
	if start < 0 || end < 0 {
		return "", nil, errors.New("deploy/caddy/Caddyfile no longer has a {$APP_SITE:...} { ... } block")
	}
	block := src[start : start+end+3]
	for i, site := range cfg.Sites {
		n := strconv.Itoa(i)
		c := caddySite.ReplaceAllLiteralString(block, "{$SITE_"+n+"}")
		c = caddyUpstream.ReplaceAllLiteralString(c, "{$SITE_UPSTREAM_"+n+"}")
		sitePort := port
		if site.Port != 0 {
			sitePort = strconv.Itoa(site.Port)
			c = strings.ReplaceAll(c, "{$APP_PORT:443}", sitePort)
		}
		src += c
		env = append(env, "SITE_"+n+"=http://"+site.Name+":"+sitePort, "SITE_UPSTREAM_"+n+"="+site.App)
	}
	caddyfile = filepath.Join(dir, "Caddyfile")
	return caddyfile, env, os.WriteFile(caddyfile, []byte(src), 0o644)
}

// Caddyfile is the path of the Caddyfile that repo ships.
func Caddyfile(repo string) string { return filepath.Join(repo, "deploy", "caddy", "Caddyfile") }
