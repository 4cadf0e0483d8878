package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCommand asks a running server for /.latchkey/healthz, so that a container image
// without curl or a shell can still have a HEALTHCHECK (`latchkey healthcheck`).
func newHealthcheckCommand() *cobra.Command {
	var target string
	var timeout time.Duration
	var ready bool
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the running server answers /.latchkey/healthz (for container HEALTHCHECK)",
		Long: "Ask the server that the same config describes (server.listen) for /.latchkey/healthz, which\n" +
			"answers 200 while the process serves (liveness), or with --ready for /.latchkey/readyz, which\n" +
			"answers 200 only while the session view is fresh and the store answers and accepts writes.\n" +
			"Exit 0 when healthy, 1 when not, 2 on a bad config.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := &http.Client{Timeout: timeout}
			if target == "" {
				cfg, err := configFrom(cmd)
				if err != nil {
					return err
				}
				target = healthURL(cfg)
				if ready {
					target = strings.TrimSuffix(target, "/healthz") + "/readyz"
				}
				if cfg.Server.TLS.CertFile != "" {
					// The certificate names the public host, not the loopback address dialled here;
					// the probe sends nothing secret and only reads a status code.
					client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec
				}
			}
			u, err := healthTarget(target, ready)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			target = u
			resp, err := client.Get(target)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("unhealthy: %w", err)}
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: 1, err: fmt.Errorf("unhealthy: %s answered %s", target, resp.Status)}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "healthy")
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "the server's base URL, such as http://127.0.0.1:8080 (default: server.listen)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	cmd.Flags().BoolVar(&ready, "ready", false, "ask /.latchkey/readyz (readiness) instead of /.latchkey/healthz (liveness)")
	return cmd
}

// healthURL is the health endpoint on the configured listener. A wildcard listen address
// (0.0.0.0:8080, :8080, [::]:8080, as in containers) is asked on loopback.
func healthURL(cfg Config) string {
	scheme := "http"
	if cfg.Server.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// Go's wildcard listeners are dual-stack, and IPv4 loopback exists even in containers
		// that have IPv6 turned off.
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/.latchkey/healthz"
}

// healthTarget turns --url into the health endpoint: a base URL (http://host:port, with or without
// a trailing slash) gets /.latchkey/healthz, or /.latchkey/readyz with --ready; a URL that already
// names a path is used as it is.
func healthTarget(raw string, ready bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--url %q: want the server's base URL, such as http://127.0.0.1:8080", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/.latchkey/healthz"
		if ready {
			u.Path = "/.latchkey/readyz"
		}
	}
	return u.String(), nil
}
