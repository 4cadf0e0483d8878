package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the configured certificate and picks up a renewed one (certbot, acme.sh
// and the like replace the files in place) without a restart. The files are looked at again at
// most every recheck, on a handshake; a renewal that cannot be loaded keeps the old certificate.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	recheck           time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // modification times and sizes of both files when cert was loaded
	checked time.Time
}

func newCertReloader(cfg TLSConfig, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: cfg.CertFile, keyFile: cfg.KeyFile, log: log, recheck: 30 * time.Second}
	stamp, err := c.fileStamp()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("server.tls: %w", err)
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

func (c *certReloader) load(stamp string) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("server.tls: %w", err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < c.recheck {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.fileStamp()
	if err == nil && stamp != c.stamp {
		err = c.load(stamp)
		if err == nil {
			c.log.Info("TLS certificate reloaded", "cert_file", c.certFile)
		}
	}
	if err != nil {
		c.log.Warn("TLS certificate not reloaded; serving the previous one", "err", err)
	}
	return c.cert, nil
}

// serverTLS is the listener's TLS configuration. HTTP/2 is negotiated by net/http itself
// (ServeTLS adds "h2" to NextProtos), so browsers multiplex requests to dashboards.
func serverTLS(cfg TLSConfig, log *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(cfg, log)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
}
