// Package auth is Latchkey's relying party: WebAuthn ceremonies (enrolment and discoverable
// login), sessions (signed and encrypted cookies plus an in-memory revocation view), the login,
// enrolment, account and recovery pages, recovery codes and magic links, and API tokens.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
)

// Fixed lifetimes from the design: ceremonies last 5 minutes, links and codes are single use.
const (
	CeremonyTTL   = 5 * time.Minute
	EnrolTTL      = account.EnrolTTL
	MagicLinkTTL  = 15 * time.Minute
	maxJSONBody   = 64 << 10 // every JSON endpoint; WebAuthn responses are a few KiB
	maxCeremonies = 10000    // ceremonies in flight across all clients
)

// Service serves Latchkey's own pages and API and answers session checks.
type Service struct {
	opts      Options
	store     *store.Store
	log       *slog.Logger
	wa        *webauthn.WebAuthn
	domains   []*domain // cookie domains; each has its own session cookie codec (issue 23)
	ceremony  *codec    // ceremony cookie (other name, so neither decodes as the other)
	view      *session.View
	mail      sync.WaitGroup // recovery e-mails in flight; Run waits for them
	static    http.Handler
	limits    *limits
	metrics   Recorder
	ceremonyC string // ceremony cookie name
	accounts  *account.Service
	brand     *brandAssets
	locales   *locales
}

var _ http.Handler = (*Service)(nil)

// New builds a Service. It loads the in-memory view from the store before returning, so the first
// check is already answered from memory.
func New(ctx context.Context, st *store.Store, opts Options) (*Service, error) {
	if len(opts.Domains) > 0 {
		opts.PublicURL = opts.Domains[0].PublicURL
		opts.CookieDomain = opts.Domains[0].Name
	}
	if opts.PublicURL == nil {
		return nil, errors.New("auth: no public URL")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CookieName == "" {
		opts.CookieName = "latchkey_session"
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = 24 * time.Hour
	}
	if opts.RPID == "" {
		opts.RPID = opts.PublicURL.Hostname()
	}
	if opts.Brand.Name == "" {
		opts.Brand.Name = "Latchkey"
	}
	if opts.RPName == "" {
		opts.RPName = opts.Brand.Name
	}
	if len(opts.Domains) > 1 {
		// Every portal is a WebAuthn origin: a passkey of the one RP ID is used on each of them
		// through Related Origin Requests.
		for _, d := range opts.Domains {
			if o := d.PublicURL.Scheme + "://" + d.PublicURL.Host; !contains(opts.Origins, o) {
				opts.Origins = append(opts.Origins, o)
			}
		}
	}
	if len(opts.Origins) == 0 {
		opts.Origins = []string{opts.PublicURL.Scheme + "://" + opts.PublicURL.Host}
	}
	if opts.AdminGroup == "" {
		opts.AdminGroup = "admins"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = nopRecorder{}
	}
	if hashErr, blockErr := CheckKeys(opts.HashKey, opts.BlockKey); hashErr != nil || blockErr != nil {
		return nil, fmt.Errorf("auth: %w", errors.Join(hashErr, blockErr))
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          opts.RPID,
		RPDisplayName: opts.RPName,
		RPOrigins:     opts.Origins,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationRequired,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("auth: webauthn: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	brand, err := newBrandAssets(opts.Brand)
	if err != nil {
		return nil, err
	}
	locales, err := newLocales(pages, opts.Language)
	if err != nil {
		return nil, err
	}
	staticFS, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("auth: static files: %w", err)
	}
	s := &Service{
		opts:    opts,
		store:   st,
		log:     opts.Logger,
		wa:      wa,
		domains: newDomains(opts),
		// The ceremony codec derives its own keys so that even a mistake in naming could not make
		// one cookie pass for the other.
		ceremony: newCodec("latchkey_ceremony", subKey(opts.HashKey, "ceremony-hash"), subKey(opts.BlockKey, "ceremony-block")[:len(opts.BlockKey)], CeremonyTTL),
		view: session.New(st, session.Options{Logger: opts.Logger, Now: opts.Now, Inactivity: opts.Inactivity,
			PollInterval: opts.PollInterval, MaxStaleness: opts.MaxStaleness, Metrics: opts.ViewMetrics}),
		static:    http.StripPrefix("/.latchkey/static/", http.FileServer(http.FS(staticFS))),
		limits:    newLimits(opts.Now),
		metrics:   opts.Metrics,
		ceremonyC: "latchkey_ceremony",
		accounts:  account.New(st, account.Options{PublicURL: opts.PublicURL, Now: opts.Now, Logger: opts.Logger}),
		brand:     brand,
		locales:   locales,
	}
	if s.secure() {
		// __Host- cookies are bound to this exact origin: no Domain, Path=/, Secure.
		s.ceremonyC = "__Host-latchkey_ceremony"
	}
	if err := s.view.Load(ctx); err != nil {
		return nil, fmt.Errorf("auth: load sessions: %w", err)
	}
	return s, nil
}

// Run keeps the in-memory view in step with the store and sweeps expired state until ctx ends.
// It returns only when its goroutines have stopped: the view's final last-seen flush is written
// and recovery e-mails in flight are drained (or abandoned, with a log line, after MailDrain).
// Close the store only after Run returned.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.view.Run(ctx) })
	wg.Go(func() { s.sweep(ctx) })
	wg.Wait()
	drain := s.opts.MailDrain
	if drain <= 0 {
		drain = 10 * time.Second
	}
	done := make(chan struct{})
	go func() { s.mail.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		s.log.Warn("shutdown: abandoning recovery e-mails still in flight", "waited", drain.String())
	}
}

// Refresh brings the in-memory view up to date now, after a change this process wrote: it
// applies the changes logged since the view's revision, at a cost proportional to them.
func (s *Service) Refresh(ctx context.Context) {
	if err := s.view.CatchUp(context.WithoutCancel(ctx)); err != nil {
		s.log.Warn("session view catch-up failed", "err", err)
	}
}

// ActiveSessions reports how many live sessions the in-memory view holds.
func (s *Service) ActiveSessions() int { return s.view.Sessions() }

// ViewAge is how long ago the in-memory view last confirmed itself with the store.
func (s *Service) ViewAge() time.Duration { return s.view.Age() }

func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			res, err := s.store.Sweep(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.storeError("sweep")
					s.log.Warn("sweeping expired state failed", "err", err)
				}
			} else if res.Audit > 0 || res.Sessions > 0 {
				s.log.Debug("swept expired state", "sessions", res.Sessions, "tokens", res.Tokens, "invites", res.Invites,
					"ceremonies", res.Ceremonies, "changes", res.Changes, "audit", res.Audit)
			}
			s.limits.sweep()
		}
	}
}

func (s *Service) now() time.Time { return s.opts.Now() }

func (s *Service) storeError(op string) {
	if s.opts.ViewMetrics != nil {
		s.opts.ViewMetrics.StoreError(op)
	}
}

// Routes lists every path that auth serves, with its method.
func (s *Service) Routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /.latchkey/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		if name := strings.TrimPrefix(r.URL.Path, "/.latchkey/static/"); name == "" || !fs.ValidPath(name) || !s.hasStatic(name) {
			s.ErrorPage(w, r, http.StatusNotFound, "There is no such file.")
			return
		}
		s.static.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /.latchkey/static/brand/{file}", s.brandFile)
	// Everything else under /.latchkey/ gets Latchkey's own answer, never the mux's plain text:
	// a page for browsers, JSON for the API.
	mux.Handle("/.latchkey/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.fallback(mux, w, r) }))
	mux.HandleFunc("GET /.latchkey/login", s.page(s.loginPage))
	mux.HandleFunc("GET /.latchkey/enroll", s.page(s.enrolPage))
	mux.HandleFunc("GET /.latchkey/account", s.page(s.accountPage))
	mux.HandleFunc("GET /.latchkey/recover", s.page(s.recoverPage))
	mux.HandleFunc("GET /.latchkey/healthz", s.healthz)
	mux.HandleFunc("GET /.latchkey/logout", s.page(s.logoutPage))
	mux.HandleFunc("GET /.latchkey/readyz", s.readyz)
	mux.HandleFunc("POST /.latchkey/logout", s.api(s.logout))

	mux.HandleFunc("POST /.latchkey/api/register/begin", s.api(s.registerBegin))
	mux.HandleFunc("POST /.latchkey/api/register/finish", s.api(s.registerFinish))
	mux.HandleFunc("POST /.latchkey/api/login/begin", s.api(s.loginBegin))
	mux.HandleFunc("POST /.latchkey/api/login/finish", s.api(s.loginFinish))

	mux.HandleFunc("POST /.latchkey/api/recover", s.api(s.recoverWithCode))
	mux.HandleFunc("POST /.latchkey/api/recover/email", s.api(s.recoverByEmail))
	mux.HandleFunc("POST /.latchkey/api/recover/link", s.api(s.openMagicLink))
	mux.HandleFunc("POST /.latchkey/api/passkeys/rename", s.api(s.renamePasskey))
	mux.HandleFunc("POST /.latchkey/api/passkeys/remove", s.api(s.removePasskey))
	mux.HandleFunc("POST /.latchkey/api/recovery-codes", s.api(s.regenerateCodes))
	mux.HandleFunc("POST /.latchkey/api/account/email", s.api(s.setEmail))
	mux.HandleFunc("POST /.latchkey/api/sessions/revoke", s.api(s.revokeSession))
	mux.HandleFunc("POST /.latchkey/api/sessions/revoke-all", s.api(s.revokeAllSessions))

	// Several domains (issue 23): the continue step.
	mux.HandleFunc("GET /.latchkey/continue", s.page(s.continuePage))
	mux.HandleFunc("POST /.latchkey/api/domains/continue", s.api(s.continueBegin))
	mux.HandleFunc("POST /.latchkey/api/domains/redeem", s.api(s.continueFinish))

	mux.HandleFunc("GET /.latchkey/tokens", s.page(s.tokensPage))
	mux.HandleFunc("GET /.latchkey/api/tokens", s.api(s.listTokens))
	mux.HandleFunc("POST /.latchkey/api/tokens", s.api(s.createToken))
	mux.HandleFunc("DELETE /.latchkey/api/tokens/{id}", s.api(s.revokeToken))
	s.adminRoutes(mux)
	return mux
}

// fallback answers a /.latchkey/ request that no route took: 405 (with Allow) when the path
// exists for another method, else 404.
func (s *Service) fallback(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/.latchkey/" {
			allowed = append(allowed, m)
		}
	}
	status, msg := http.StatusNotFound, N("There is no such page.")
	if len(allowed) > 0 {
		status, msg = http.StatusMethodNotAllowed, N("This address does not take that kind of request.")
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
	if strings.HasPrefix(r.URL.Path, "/.latchkey/api/") {
		SecurityHeaders(w.Header())
		writeJSON(w, status, map[string]string{"error": strings.ToLower(http.StatusText(status))})
		return
	}
	s.ErrorPage(w, r, status, msg)
}

func (s *Service) hasStatic(name string) bool {
	st, err := fs.Stat(assets, "static/"+name)
	return err == nil && !st.IsDir()
}

// ServeHTTP serves Routes; unknown paths under /.latchkey/ get a 404 page.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Routes().ServeHTTP(w, r) }

// healthz is liveness: 200 while the process serves. It asks nothing of the store, so that an
// orchestrator does not restart healthy replicas during a database outage (issue 17).
func (s *Service) healthz(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz is readiness: the view is fresh within storage.max_staleness and the store answers and
// accepts a write (a full disk or a lock held elsewhere is not ready).
func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.view.Fresh() {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: session view not confirmed with the store for %s\n", s.view.Age().Round(time.Millisecond))
		return
	}
	if err := s.store.Heartbeat(r.Context()); err != nil {
		s.storeError("heartbeat")
		s.log.Error("readiness: the store does not accept writes", "err", err)
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		msg := "not ready: the store does not accept writes\n"
		if errors.Is(err, store.ErrDiskFull) {
			msg = "not ready: the store's disk is full\n"
		}
		w.Write([]byte(msg))
		return
	}
	w.Write([]byte("ok\n"))
}

// apiError is an error with a status and a client-safe message; the cause goes to the log only.
type apiError struct {
	status int
	msg    string // a catalogue key, shown in the reader's language with args
	args   []any
	field  string // a catalogue key too: "field: msg" (an account.InvalidError)
	cause  error
	stepUp bool // the action needs a fresh passkey verification (stepup.go)
	// unknownCredential marks a login with a credential ID the store does not hold, so that the
	// page can signal it to the password manager (ceremony.go errUnknownCredential).
	unknownCredential bool
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.cause)
	}
	return fmt.Sprintf("%d %s", e.status, e.msg)
}

func (e *apiError) Unwrap() error { return e.cause }

func fail(status int, msg string, cause error) error {
	return &apiError{status: status, msg: msg, cause: cause}
}

// failf is fail with a message whose verbs args fill, after translation.
func failf(status int, msg string, args []any, cause error) error {
	return &apiError{status: status, msg: msg, args: args, cause: cause}
}

// message is the client-safe text of e in a language.
func (e *apiError) message(l *locale) string {
	msg := l.text(e.msg, e.args...)
	if e.field != "" {
		msg = l.text(N("%s: %s"), l.text(e.field), msg) // French puts a space before the colon
	}
	return msg
}

// api adapts a handler that returns an error: it enforces the CSRF rules on state-changing
// requests, caps the body, and writes errors as short JSON.
func (s *Service) api(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		SecurityHeaders(w.Header())
		err := s.sameOrigin(r)
		if err == nil && r.ContentLength > maxJSONBody {
			// Refuse a declared oversized body before any parser sees a byte of it; bodies of
			// unknown length are cut off at the same cap by MaxBytesReader.
			err = fail(http.StatusRequestEntityTooLarge, N("request body too large"), fmt.Errorf("content length %d", r.ContentLength))
		}
		if err == nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
			err = h(w, r)
		}
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{status: http.StatusInternalServerError, msg: "internal error", cause: err}
		}
		level := slog.LevelDebug
		if ae.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "request refused", "path", r.URL.Path, "status", ae.status, "err", redactErr(ae.cause))
		if ae.status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "60")
		}
		// The page script shows the message as it is: in the page's language (issue 21).
		msg := ae.message(s.lang(r))
		if ae.stepUp {
			writeJSON(w, ae.status, map[string]any{"error": msg, "step_up": true})
			return
		}
		if ae.unknownCredential {
			writeJSON(w, ae.status, map[string]any{"error": msg, "unknown_credential": true})
			return
		}
		writeJSON(w, ae.status, map[string]string{"error": msg})
	}
}

// redactErr keeps go-webauthn's developer detail (safe to log) and drops nothing else.
func redactErr(err error) string {
	if err == nil {
		return ""
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Details + ": " + pe.DevInfo
	}
	return err.Error()
}

// sameOrigin is the CSRF guard: state-changing requests must come from our own pages, as JSON.
// Browsers always send Origin on cross-origin POSTs and on same-origin fetch POSTs; a form or a
// text/plain "simple request" cannot set Content-Type: application/json without a preflight.
func (s *Service) sameOrigin(r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fail(http.StatusForbidden, N("cross-site request refused"), fmt.Errorf("Sec-Fetch-Site %q", site))
	}
	origin := r.Header.Get("Origin")
	if origin == "" || !s.originAllowed(r, origin) {
		return fail(http.StatusForbidden, N("cross-site request refused"), fmt.Errorf("origin %q", origin))
	}
	if r.Method == http.MethodDelete && r.ContentLength <= 0 {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
		return fail(http.StatusUnsupportedMediaType, N("content type must be application/json"), fmt.Errorf("content type %q", ct))
	}
	return nil
}

func (s *Service) originAllowed(r *http.Request, origin string) bool {
	if !contains(s.opts.Origins, origin) {
		return false
	}
	if len(s.domains) == 1 {
		return true
	}
	// With several domains, every portal is a WebAuthn origin, but a state-changing request must
	// still come from a page of the domain it acts on: auth.example.org's pages cannot post to
	// auth.example.com (issue 23).
	u, err := url.Parse(origin)
	return err == nil && s.domainForHost(u.Host) == s.domainOf(r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeJSON reads one JSON object into v; trailing data and oversized bodies are errors.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, N("request body too large"), err)
		}
		return fail(http.StatusBadRequest, N("malformed JSON body"), err)
	}
	if dec.More() {
		return fail(http.StatusBadRequest, N("malformed JSON body"), errors.New("trailing data"))
	}
	return nil
}

func (s *Service) clientAddr(r *http.Request) string {
	if s.opts.ClientAddr != nil {
		return s.opts.ClientAddr(r)
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit records a security event in the store and the log. detail must hold no secret.
func (s *Service) audit(ctx context.Context, r *http.Request, userID, event, detail string) {
	ip := ""
	if r != nil {
		ip = s.clientAddr(r)
	}
	s.log.InfoContext(ctx, "audit", "event", event, "user_id", userID, "detail", detail, "ip", ip)
	if err := s.store.Audit(context.WithoutCancel(ctx), store.Event{UserID: userID, Event: event, Detail: detail, IP: ip}); err != nil {
		s.log.ErrorContext(ctx, "writing audit event failed", "event", event, "err", err)
	}
}

// subKey derives an independent key for another purpose from a configured key.
func subKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("latchkey " + purpose))
	return m.Sum(nil)
}
