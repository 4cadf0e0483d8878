package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

func newServeCommand() *cobra.Command {
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: "Run the gateway. With --demo and no config, it serves http://localhost:8080 and routes that\n" +
			"host to a built-in demo page protected by a passkey, and prints the first enrolment link.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configFrom(cmd)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, serveOptions{demo: demo, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()})
		},
	}
	cmd.Flags().BoolVar(&demo, "demo", false, "route public_url's host to a built-in demo upstream that shows the identity headers")
	return cmd
}

type serveOptions struct {
	demo   bool
	out    io.Writer // the enrolment link and the ready line
	errOut io.Writer // logs
	// ready, when set, receives the bound addresses once the server is accepting connections.
	ready func(addr, metricsAddr string)
}

func newLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(withRequestID(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(withRequestID(slog.NewTextHandler(w, opts)))
}

// openStore opens the configured database: PostgreSQL when a DSN is set, else the SQLite file.
func openStore(ctx context.Context, cfg Config) (*store.Store, error) {
	dsn, err := secretValue(cfg.Storage.Postgres.DSN, cfg.Storage.Postgres.DSNFile, "storage.postgres.dsn")
	if err != nil {
		return nil, err
	}
	opts := store.Options{Timeout: cfg.Storage.Timeout, AuditRetention: cfg.Audit.Retention}
	if dsn != "" {
		return openPostgresStore(ctx, dsn, opts)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	opts.Path = cfg.dbPath()
	return store.Open(ctx, opts)
}

func decodeKey(b64 string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	return k, nil
}

// sessionKeys loads the cookie keys: inline, from the configured files, or generated into data_dir.
func sessionKeys(cfg Config) (hashKey, blockKey []byte, err error) {
	load := func(inline Secret, file, def, key string) ([]byte, error) {
		if inline != "" {
			return decodeKey(string(inline))
		}
		create := file == ""
		if create {
			file = filepath.Join(cfg.DataDir, def)
		}
		k, err := auth.LoadOrCreateKey(file, create)
		if err != nil {
			return nil, fmt.Errorf("%s_file: %w", key, err)
		}
		return k, nil
	}
	if hashKey, err = load(cfg.Session.HashKey, cfg.Session.HashKeyFile, "session-hash.key", "session.hash_key"); err != nil {
		return nil, nil, err
	}
	if blockKey, err = load(cfg.Session.BlockKey, cfg.Session.BlockKeyFile, "session-block.key", "session.block_key"); err != nil {
		return nil, nil, err
	}
	hashErr, blockErr := auth.CheckKeys(hashKey, blockKey)
	if hashErr != nil {
		return nil, nil, fmt.Errorf("session.hash_key: %w", hashErr)
	}
	if blockErr != nil {
		return nil, nil, fmt.Errorf("session.block_key: %w", blockErr)
	}
	return hashKey, blockKey, nil
}

// app is a fully wired gateway, ready to serve.
type app struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	auth    *auth.Service
	handler http.Handler
	metrics *metrics
	public  *url.URL
}

func buildApp(ctx context.Context, cfg Config, logOut io.Writer) (*app, error) {
	log := newLogger(cfg.Log, logOut)
	public, _ := url.Parse(cfg.Server.PublicURL)
	public.Path = ""
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*app, error) {
		st.Close()
		return nil, err
	}
	hashKey, blockKey, err := sessionKeys(cfg)
	if err != nil {
		return fail(err)
	}
	trusted, err := proxy.ParseTrustedProxies(cfg.Server.TrustedProxies)
	if err != nil {
		return fail(fmt.Errorf("server.trusted_proxies: %w", err))
	}
	rules, err := proxy.CompileRules(cfg.AccessControl.Rules, cfg.AccessControl.DefaultPolicy)
	if err != nil {
		return fail(err)
	}
	var routes []proxy.Route
	hosts := rules.Hosts()
	for _, rc := range cfg.Routes {
		h, _ := proxy.CanonicalHost(rc.Host, "https")
		u, _ := url.Parse(rc.Upstream)
		routes = append(routes, proxy.Route{Host: h, Upstream: u})
		hosts = append(hosts, h)
	}
	redirects := proxy.RedirectPolicy{Portal: public, Hosts: hosts, CookieDomain: strings.TrimPrefix(cfg.Session.CookieDomain, ".")}
	m := newMetrics()
	mailer, err := newMailer(cfg.SMTP)
	if err != nil {
		return fail(err)
	}
	origins := cfg.WebAuthn.Origins
	svc, err := auth.New(ctx, st, auth.Options{
		PublicURL: public, RPID: cfg.WebAuthn.RPID, RPName: cfg.WebAuthn.RPName, Origins: origins,
		CookieName: cfg.Session.CookieName, CookieDomain: cfg.Session.CookieDomain,
		Lifetime: cfg.Session.Lifetime, Inactivity: cfg.Session.Inactivity, HashKey: hashKey, BlockKey: blockKey,
		SafeRedirect: func(raw string) string { s, _ := redirects.Safe(raw); return s },
		ClientAddr: func(r *http.Request) string {
			if a, ok := trusted.ClientAddr(r); ok {
				return a.String()
			}
			return ""
		},
		Mailer: mailer, AdminGroup: cfg.Admin.Group, Metrics: m, Logger: log,
		MaxStaleness: cfg.Storage.MaxStaleness, ViewMetrics: m,
	})
	if err != nil {
		return fail(err)
	}
	h, err := proxy.New(proxy.Options{
		Auth: svc, PublicURL: public, Trusted: trusted, Rules: rules, Redirects: redirects,
		CookieName: cfg.Session.CookieName, Routes: routes, UpstreamTimeout: cfg.Server.Timeouts.Upstream,
		Logger: log, Metrics: m,
	})
	if err != nil {
		return fail(err)
	}
	m.watchSessions(svc)
	m.watchView(svc)
	return &app{cfg: cfg, log: log, store: st, auth: svc, handler: h, metrics: m, public: public}, nil
}

// bootstrap prints an enrolment link for "admin" while nobody has a passkey, so that a first run
// needs no other command.
func bootstrap(ctx context.Context, a *app, out io.Writer) error {
	has, err := a.store.HasAnyPasskey(ctx)
	if err != nil || has {
		return err
	}
	u, err := a.store.UserByName(ctx, "admin")
	if errors.Is(err, store.ErrNotFound) {
		u = store.User{ID: uuid.NewString(), Name: "admin", DisplayName: "Administrator", Groups: []string{a.cfg.Admin.Group}}
		if err := a.store.CreateUser(ctx, u); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	link, err := auth.NewEnrolmentLink(ctx, a.store, a.public, u.ID, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nNo passkey is registered yet. Open this one-time link on your own device to create the first one (user %q):\n\n    %s\n\n", u.Name, link)
	return nil
}

func serve(ctx context.Context, cfg Config, opts serveOptions) error {
	if opts.demo {
		stop, err := startDemo(&cfg)
		if err != nil {
			return err
		}
		defer stop()
	}
	a, err := buildApp(ctx, cfg, opts.errOut)
	if err != nil {
		return err
	}
	// One owner for the background work: Run returns only when the view loop (with its final
	// last-seen flush) and the sweeper have stopped, and the store closes only after that.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan struct{})
	go func() { a.auth.Run(ctx); close(ran) }()
	defer func() {
		cancel()
		<-ran
		a.store.Close()
	}()

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           requestLog(a.log, a.handler),
		ReadHeaderTimeout: cfg.Server.Timeouts.ReadHeader,
		ReadTimeout:       cfg.Server.Timeouts.Read,
		WriteTimeout:      cfg.Server.Timeouts.Write,
		IdleTimeout:       cfg.Server.Timeouts.Idle,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	if cfg.Server.TLS.CertFile != "" {
		// Loaded now, so that a bad certificate stops the start instead of every handshake.
		if srv.TLSConfig, err = serverTLS(cfg.Server.TLS, a.log); err != nil {
			ln.Close()
			return err
		}
	}
	var metricsSrv *http.Server
	metricsAddr := ""
	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen: %w", err)
		}
		metricsAddr = mln.Addr().String()
		metricsSrv = &http.Server{Handler: a.metrics.handler(), ReadHeaderTimeout: 5 * time.Second}
		metricsDone := make(chan struct{})
		go func() { metricsSrv.Serve(mln); close(metricsDone) }()
		defer func() { metricsSrv.Close(); <-metricsDone }()
	}
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // HTTPS and HTTP/2
			return
		}
		errc <- srv.Serve(ln)
	}()
	if err := bootstrap(ctx, a, opts.out); err != nil {
		a.log.Error("could not create the first enrolment link", "err", err)
	}
	if opts.demo {
		demoBanner(opts.out, a.public)
	}
	a.log.Info("latchkey ready", "listen", ln.Addr().String(), "public_url", a.public.String(), "metrics", metricsAddr,
		"store", string(a.store.Dialect()), "version", version)
	if opts.ready != nil {
		opts.ready(ln.Addr().String(), metricsAddr)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), cfg.Server.Timeouts.Shutdown)
	defer scancel()
	err = srv.Shutdown(sctx)
	if metricsSrv != nil {
		metricsSrv.Shutdown(sctx)
	}
	cancel()
	return err
}
