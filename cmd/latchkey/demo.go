package main

import (
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/latchkeyhq/latchkey/proxy"
)

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Latchkey demo</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}
code{background:rgba(127,127,127,.15);padding:.1em .3em;border-radius:4px}td,th{text-align:left;padding:.3rem .6rem}</style></head>
<body><h1>Hello, <span id="remote-user">{{.User}}</span>!</h1>
<p>This page stands for a dashboard behind Latchkey. Latchkey checked your passkey session and passed these headers:</p>
<table>{{range .Headers}}<tr><th><code>{{.Name}}</code></th><td>{{.Value}}</td></tr>{{end}}</table>
<p><a href="/.latchkey/account">Your account</a></p></body></html>`))

// demoUpstream shows the identity headers it received, like a dashboard would use them.
func demoUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type hv struct{ Name, Value string }
		var hs []hv
		for _, k := range []string{"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			hs = append(hs, hv{k, r.Header.Get(k)})
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		demoPage.Execute(w, struct {
			User    string
			Headers []hv
		}{r.Header.Get("Remote-User"), hs})
	})
}

// demoBanner tells a newcomer where the protected page is: the enrolment page ends on the account
// page, not on the demo.
func demoBanner(out io.Writer, public *url.URL) {
	fmt.Fprintf(out, "Demo: %s/ is a page protected by a passkey; it shows who you are once you have signed in.\n\n", public)
}

// startDemo starts the demo upstream on a loopback port and routes public_url's host to it with
// policy passkey. The upstream trusts the Remote-* headers it gets, as real ones do, so it is
// only reachable on loopback and only while the demo runs.
func startDemo(cfg *Config) (stop func(), err error) {
	pub, err := url.Parse(cfg.Server.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("demo: server.public_url: %w", err)
	}
	host := pub.Host
	canon, _ := proxy.CanonicalHost(host, pub.Scheme)
	for _, rc := range cfg.Routes {
		if h, _ := proxy.CanonicalHost(rc.Host, pub.Scheme); h == canon {
			return nil, fmt.Errorf("demo: %s is already routed to %s; --demo routes public_url's host to the demo page", host, rc.Upstream)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	srv := &http.Server{Handler: demoUpstream(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	cfg.Routes = append(cfg.Routes, RouteConfig{Host: host, Upstream: "http://" + ln.Addr().String()})
	cfg.AccessControl.Rules = append([]proxy.RuleConfig{{Hosts: []string{canon}, Policy: "passkey"}}, cfg.AccessControl.Rules...)
	return func() { srv.Close() }, nil
}
