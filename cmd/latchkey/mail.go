package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/latchkeyhq/latchkey/auth"
)

// smtpTimeout bounds one delivery: connecting, the SMTP dialogue and the upload.
const smtpTimeout = 30 * time.Second

// smtpMailer sends recovery links through the configured relay. It builds a client per message:
// messages are rare, and a fresh client keeps concurrent sends from sharing a connection.
type smtpMailer struct {
	cfg      SMTPConfig
	password string
	tls      *tls.Config // nil: the system roots, verifying cfg.Host
}

var _ auth.Mailer = (*smtpMailer)(nil)

// newMailer returns the SMTP mailer for recovery links, or nil when smtp.host is empty (which
// turns the e-mail recovery path off).
func newMailer(cfg SMTPConfig) (auth.Mailer, error) {
	if cfg.Host == "" {
		return nil, nil
	}
	m, err := newSMTPMailer(cfg, nil)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// newSMTPMailer is newMailer with a TLS configuration of the caller's (tests trust their own CA).
func newSMTPMailer(cfg SMTPConfig, tlsConf *tls.Config) (*smtpMailer, error) {
	password, err := secretValue(cfg.Password, cfg.PasswordFile, "smtp.password")
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	switch cfg.TLS {
	case "", "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("smtp.tls: must be starttls, tls or none, got %q", cfg.TLS)
	}
	if tlsConf == nil {
		tlsConf = &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	}
	return &smtpMailer{cfg: cfg, password: password, tls: tlsConf}, nil
}

func (m *smtpMailer) client() (*mail.Client, error) {
	opts := []mail.Option{mail.WithPort(m.cfg.Port), mail.WithTimeout(smtpTimeout), mail.WithTLSConfig(m.tls)}
	switch m.cfg.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default: // starttls: refuse to send when the relay does not offer it
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if m.cfg.Username != "" {
		// The library picks the strongest mechanism the relay offers and refuses plain-text
		// mechanisms over an unencrypted connection.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(m.cfg.Username), mail.WithPassword(m.password))
	}
	c, err := mail.NewClient(m.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: client for %s: %w", m.cfg.Host, err)
	}
	return c, nil
}

// Send delivers one plain-text message.
func (m *smtpMailer) Send(ctx context.Context, to, subject, body string) error {
	msg := mail.NewMsg()
	if err := msg.From(m.cfg.From); err != nil {
		return fmt.Errorf("smtp: from address: %w", err)
	}
	if err := msg.To(to); err != nil {
		return fmt.Errorf("smtp: recipient: %w", err)
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageID()
	// RFC 3834: an automatic message; well-behaved vacation responders do not answer it.
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, body)
	c, err := m.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp: send through %s:%d: %w", m.cfg.Host, m.cfg.Port, err)
	}
	return nil
}
