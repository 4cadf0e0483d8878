package auth

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// Options configure a Service. cmd/latchkey fills them from the config file.
type Options struct {
	// PublicURL is the portal's URL; its origin is the default WebAuthn origin.
	PublicURL *url.URL
	RPID      string
	RPName    string
	// Origins is the exact list of accepted WebAuthn origins (default: PublicURL's origin).
	Origins []string

	CookieName   string
	CookieDomain string
	// Domains are the cookie domains with their portals (issue 23); the first one's portal is
	// PublicURL. Empty means one domain: CookieDomain with PublicURL. With more than one, the
	// WebAuthn origins always include every portal, and the RP ID's portal serves
	// /.well-known/webauthn listing the others (Related Origin Requests).
	Domains    []Domain
	Lifetime   time.Duration // absolute session lifetime
	Inactivity time.Duration // idle limit; slides on allowed checks only
	HashKey    []byte        // HMAC key for cookies (>= 32 bytes)
	BlockKey   []byte        // AES key for cookies (16, 24 or 32 bytes)

	// SafeRedirect maps an rd value to where the browser may go (the account page when rd is not
	// acceptable). Nil allows only the account page.
	SafeRedirect func(raw string) string
	// ClientAddr returns the client's address as text for audit rows and rate limits (the proxy
	// package knows which peers may speak for others). Nil uses the TCP peer.
	ClientAddr func(r *http.Request) string
	// Mailer sends recovery links; nil disables the e-mail recovery path.
	Mailer Mailer
	// AdminGroup names the group whose members may use the admin area.
	AdminGroup string
	// Metrics receives ceremony and session events; nil records nothing.
	Metrics Recorder

	Logger *slog.Logger
	Now    func() time.Time
	// PollInterval is how often the in-memory view checks the store for changes made elsewhere.
	PollInterval time.Duration
	// MaxStaleness bounds how long the view answers without confirming itself with the store
	// (storage.max_staleness, default 5 s); past it, session and token checks fail closed.
	MaxStaleness time.Duration
	// ViewMetrics receives the view's events (deltas, full loads, store errors); nil records nothing.
	ViewMetrics session.Recorder
	// Brand is the owner's name, logo, accent colour and support line on every page (issue 21).
	Brand Brand
	// Language is the pages' language when neither the person's choice nor the browser's
	// Accept-Language names a shipped one (ui.default_language, default "en").
	Language string
	// MailDrain bounds how long Run waits for recovery e-mails in flight at shutdown (default 10 s).
	MailDrain time.Duration
}

// Mailer sends one message. It is satisfied by the SMTP mailer in cmd/latchkey and by tests.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Recorder is the slice of metrics that auth reports.
type Recorder interface {
	Ceremony(kind, result string)
	RateLimited(scope string)
}

type nopRecorder struct{}

func (nopRecorder) Ceremony(string, string) {}
func (nopRecorder) RateLimited(string)      {}
