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
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/internal/gateway"
	"github.com/latchkeyhq/latchkey/store"
)

func newServeCommand() *cobra.Command {
	var demo bool
	var listen string
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
			if listen != "" {
				if _, _, err := net.SplitHostPort(listen); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--listen %q: want host:port such as 127.0.0.1:8081 or :8081", listen)}
				}
				cfg.Server.Listen = listen
			}
			return serve(cmd.Context(), cfg, serveOptions{demo: demo, out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr()})
		},
	}
	cmd.Flags().BoolVar(&demo, "demo", false, "route public_url's host to a built-in demo upstream that shows the identity headers")
	cmd.Flags().StringVar(&listen, "listen", "", "listen on this address instead of server.listen (with --demo, public_url follows it unless set)")
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
		return slog.New(gateway.WithRequestID(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(gateway.WithRequestID(slog.NewTextHandler(w, opts)))
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

// app is a fully wired gateway with the config it came from.
type app struct {
	cfg     Config
	log     *slog.Logger
	gw      *gateway.Gateway
	store   *store.Store
	auth    *auth.Service
	handler http.Handler // the whole front door, request log included
	metrics *gateway.Metrics
	public  *url.URL
}

// buildApp opens the store, loads the keys and builds the gateway from the config. On error
// nothing stays open.
func buildApp(ctx context.Context, cfg Config, logOut io.Writer) (*app, error) {
	cfg.normalize()
	log := newLogger(cfg.Log, logOut)
	public, _ := url.Parse(cfg.Server.PublicURL)
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
	mailer, err := newMailer(cfg.SMTP)
	if err != nil {
		return fail(err)
	}
	routes := make([]gateway.Route, 0, len(cfg.Routes))
	for _, rc := range cfg.Routes {
		routes = append(routes, gateway.Route{Host: rc.Host, Upstream: rc.Upstream})
	}
	var logo []byte
	if cfg.UI.LogoFile != "" {
		if logo, err = readLogo(cfg.UI.LogoFile); err != nil {
			return fail(fmt.Errorf("ui.logo_file: %w", err))
		}
	}
	oo := oidcOptions(cfg)
	gw, err := gateway.New(ctx, gateway.Settings{
		Store: st, Logger: log, Version: version,
		Auth: auth.Options{
			PublicURL: public, RPID: cfg.WebAuthn.RPID, RPName: cfg.WebAuthn.RPName, Origins: cfg.WebAuthn.Origins,
			CookieName: cfg.Session.CookieName, CookieDomain: cfg.Session.CookieDomain, Domains: authDomains(cfg, public),
			Lifetime: cfg.Session.Lifetime, Inactivity: cfg.Session.Inactivity, HashKey: hashKey, BlockKey: blockKey,
			Mailer: mailer, AdminGroup: cfg.Admin.Group, MaxStaleness: cfg.Storage.MaxStaleness,
			Brand:    auth.Brand{Name: cfg.UI.Name, Logo: logo, AccentColor: cfg.UI.AccentColor, SupportText: cfg.UI.SupportText},
			Language: cfg.UI.DefaultLanguage,
		},
		TrustedProxies: cfg.Server.TrustedProxies, DefaultPolicy: cfg.AccessControl.DefaultPolicy,
		Rules: cfg.AccessControl.Rules, Routes: routes, UpstreamTimeout: cfg.Server.Timeouts.Upstream,
		OIDC: &oo,
	})
	if err != nil {
		return fail(err)
	}
	return &app{cfg: cfg, log: log, gw: gw, store: st, auth: gw.Auth, handler: gw.Handler, metrics: gw.Metrics, public: gw.Public}, nil
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

// tunnelHint helps on a headless server: a localhost public_url works only in a browser on the
// same machine, so when the listener is reachable from elsewhere, say how to get there.
func tunnelHint(out io.Writer, bound net.Addr, public *url.URL) {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || tcp.IP.IsLoopback() || !isLocalHost(public.Hostname()) {
		return
	}
	port := public.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[public.Scheme]
	}
	fmt.Fprintf(out, "server.public_url is %s: passkeys work only in a browser on this machine. From another computer, open an SSH tunnel\n"+
		"and use the same address there:\n\n    ssh -L %s:localhost:%s you@this-server\n\nor set server.public_url to an https address that your browser reaches.\n\n",
		public, port, port)
}

// listenOn binds addr and turns a bind failure into advice: which setting to change, and how.
func listenOn(addr, key, how string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s: %s is already in use by another program; %s", key, addr, how)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%s: not allowed to listen on %s (ports below 1024 need root or CAP_NET_BIND_SERVICE); %s", key, addr, how)
	}
	return nil, fmt.Errorf("%s: cannot listen on %s: %w; %s", key, addr, err, how)
}

const (
	listenHow  = "choose another address with --listen ADDR, server.listen or LATCHKEY_SERVER_LISTEN"
	metricsHow = "choose another address with metrics.listen or LATCHKEY_METRICS_LISTEN, or set it empty to turn metrics off"
)

// demoSettings adapts the defaults to --demo: public_url follows the address actually bound (so
// `serve --demo --listen :8081` works when 8080 is taken), and the metrics listener, which a
// first try does not need, is off; either stays as configured when it was set.
func demoSettings(cfg *Config, bound net.Addr) {
	def := Default()
	if cfg.Server.PublicURL == def.Server.PublicURL {
		if _, port, err := net.SplitHostPort(bound.String()); err == nil {
			cfg.Server.PublicURL = "http://localhost:" + port
		}
	}
	if cfg.Metrics.Listen == def.Metrics.Listen {
		cfg.Metrics.Listen = ""
	}
}

func serve(ctx context.Context, cfg Config, opts serveOptions) error {
	// Bind first: a busy port is the most common first-run failure, and it should be reported
	// before anything is opened or printed.
	ln, err := listenOn(cfg.Server.Listen, "server.listen", listenHow)
	if err != nil {
		return err
	}
	defer ln.Close()
	if opts.demo {
		demoSettings(&cfg, ln.Addr())
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
	go func() { a.gw.Run(ctx); close(ran) }()
	go tuneGC(ctx, gcHeadroom)
	defer func() {
		cancel()
		<-ran
		a.store.Close()
	}()

	srv := &http.Server{
		Handler:           a.handler,
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
			return err
		}
	}
	var metricsSrv *http.Server
	metricsAddr := ""
	if cfg.Metrics.Listen != "" {
		mln, err := listenOn(cfg.Metrics.Listen, "metrics.listen", metricsHow)
		if err != nil {
			return err
		}
		metricsAddr = mln.Addr().String()
		metricsSrv = &http.Server{Handler: a.metrics.Handler(), ReadHeaderTimeout: 5 * time.Second}
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
	tunnelHint(opts.out, ln.Addr(), a.public)
	if a.public.Scheme == "http" && !isLocalHost(a.public.Hostname()) {
		// Browsers hide WebAuthn on such a page: nobody can sign in. doctor calls it an error;
		// serve still starts (a TLS proxy may be on its way), but says so where it is seen first.
		a.log.Warn("server.public_url is http on an address other than localhost: browsers offer no passkeys there; serve Latchkey behind https and set public_url to that address",
			"public_url", a.public.String())
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
