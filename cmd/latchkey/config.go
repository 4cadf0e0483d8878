package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/viper"

	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/proxy"
)

// Secret is a configuration value that must never be printed: every fmt verb, slog (text and
// JSON) and encoding/json see "<redacted>". Code that needs the value converts it, string(s).
type Secret string

const redacted = "<redacted>"

// String redacts the secret for %v and %s.
func (Secret) String() string { return redacted }

// GoString redacts the secret for %#v.
func (Secret) GoString() string { return redacted }

// Format redacts the secret for every verb, including the ones (%d, %x, %q) for which fmt would
// otherwise print the underlying string.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue redacts the secret in slog, whatever the handler.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the secret when a config is encoded (slog's JSON handler does that).
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Config is Latchkey's whole configuration, decoded from YAML and LATCHKEY_* variables.
// Packages get plain values taken from it; only this package knows viper.
type Config struct {
	DataDir       string              `mapstructure:"data_dir"`
	Server        ServerConfig        `mapstructure:"server"`
	WebAuthn      WebAuthnConfig      `mapstructure:"webauthn"`
	Session       SessionConfig       `mapstructure:"session"`
	AccessControl AccessControlConfig `mapstructure:"access_control"`
	Routes        []RouteConfig       `mapstructure:"routes"`
	Storage       StorageConfig       `mapstructure:"storage"`
	Audit         AuditConfig         `mapstructure:"audit"`
	SMTP          SMTPConfig          `mapstructure:"smtp"`
	Metrics       MetricsConfig       `mapstructure:"metrics"`
	Log           LogConfig           `mapstructure:"log"`
	Admin         AdminConfig         `mapstructure:"admin"`
	OIDC          OIDCConfig          `mapstructure:"oidc"`
	UI            UIConfig            `mapstructure:"ui"`
}

// UIConfig is the owner's brand on the pages (issue 21).
type UIConfig struct {
	Name        string `mapstructure:"name"`
	LogoFile    string `mapstructure:"logo_file"`
	AccentColor string `mapstructure:"accent_color"`
	SupportText string `mapstructure:"support_text"`
	// DefaultLanguage is the pages' language when the browser asks for none that is shipped.
	DefaultLanguage string `mapstructure:"default_language"`
}

// ServerConfig is the HTTP listener.
type ServerConfig struct {
	Listen         string         `mapstructure:"listen"`
	PublicURL      string         `mapstructure:"public_url"`
	TrustedProxies []string       `mapstructure:"trusted_proxies"`
	TLS            TLSConfig      `mapstructure:"tls"`
	Timeouts       TimeoutsConfig `mapstructure:"timeouts"`
	MaxHeaderBytes int            `mapstructure:"max_header_bytes"`
}

// TLSConfig turns on HTTPS (and HTTP/2) on the listener.
type TLSConfig struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// TimeoutsConfig bounds slow clients and slow upstreams.
type TimeoutsConfig struct {
	ReadHeader time.Duration `mapstructure:"read_header"`
	Read       time.Duration `mapstructure:"read"`
	Write      time.Duration `mapstructure:"write"`
	Idle       time.Duration `mapstructure:"idle"`
	Upstream   time.Duration `mapstructure:"upstream"` // response headers from an upstream
	Shutdown   time.Duration `mapstructure:"shutdown"`
}

// WebAuthnConfig is the relying party.
type WebAuthnConfig struct {
	RPID             string   `mapstructure:"rp_id"`
	RPName           string   `mapstructure:"rp_name"`
	Origins          []string `mapstructure:"origins"`
	UserVerification string   `mapstructure:"user_verification"`
}

// SessionConfig is the session cookie.
type SessionConfig struct {
	CookieName   string `mapstructure:"cookie_name"`
	CookieDomain string `mapstructure:"cookie_domain"`
	// Cookies are several domains, each with its portal (issue 23); cookie_domain and
	// server.public_url are the one-domain shorthand.
	Cookies      []CookieConfig `mapstructure:"cookies"`
	Lifetime     time.Duration  `mapstructure:"lifetime"`
	Inactivity   time.Duration  `mapstructure:"inactivity"`
	HashKey      Secret         `mapstructure:"hash_key"`
	HashKeyFile  string         `mapstructure:"hash_key_file"`
	BlockKey     Secret         `mapstructure:"block_key"`
	BlockKeyFile string         `mapstructure:"block_key_file"`
}

// AccessControlConfig is the rule list.
type AccessControlConfig struct {
	DefaultPolicy string             `mapstructure:"default_policy"`
	Rules         []proxy.RuleConfig `mapstructure:"rules"`
}

// RouteConfig maps a host to an upstream in reverse-proxy mode.
type RouteConfig struct {
	Host     string `mapstructure:"host"`
	Upstream string `mapstructure:"upstream"`
}

// StorageConfig selects PostgreSQL instead of the embedded SQLite file.
type StorageConfig struct {
	Postgres PostgresConfig `mapstructure:"postgres"`
	// Timeout bounds every store call.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxStaleness is how long forward auth answers from a view it could not confirm with the
	// store; past it, sessions and tokens get 503 (fail closed).
	MaxStaleness time.Duration `mapstructure:"max_staleness"`
}

// AuditConfig is the audit log's retention.
type AuditConfig struct {
	// Retention deletes audit rows older than this; 0 keeps every row.
	Retention time.Duration `mapstructure:"retention"`
}

// PostgresConfig is the PostgreSQL connection.
type PostgresConfig struct {
	DSN     Secret `mapstructure:"dsn"`
	DSNFile string `mapstructure:"dsn_file"`
}

// SMTPConfig is the mail relay for recovery links.
type SMTPConfig struct {
	Host         string `mapstructure:"host"`
	Port         int    `mapstructure:"port"`
	Username     string `mapstructure:"username"`
	Password     Secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
	From         string `mapstructure:"from"`
	TLS          string `mapstructure:"tls"` // starttls | tls | none
}

// MetricsConfig is the Prometheus listener.
type MetricsConfig struct {
	Listen string `mapstructure:"listen"`
}

// LogConfig is the structured log.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// AdminConfig is the admin console.
type AdminConfig struct {
	Group string `mapstructure:"group"`
}

// Default is the configuration with nothing set: a first run needs no file at all.
func Default() Config {
	return Config{
		DataDir: "./latchkey-data",
		Server: ServerConfig{
			Listen:         "127.0.0.1:8080",
			PublicURL:      "http://localhost:8080",
			TrustedProxies: []string{"127.0.0.0/8", "::1/128"},
			Timeouts: TimeoutsConfig{ReadHeader: 5 * time.Second, Read: time.Minute, Write: time.Minute,
				Idle: 2 * time.Minute, Upstream: time.Minute, Shutdown: 10 * time.Second},
			MaxHeaderBytes: 64 << 10,
		},
		WebAuthn:      WebAuthnConfig{Origins: []string{}, UserVerification: "required"},
		Session:       SessionConfig{CookieName: "latchkey_session", Lifetime: 24 * time.Hour, Inactivity: 2 * time.Hour},
		AccessControl: AccessControlConfig{DefaultPolicy: "deny", Rules: []proxy.RuleConfig{}},
		Routes:        []RouteConfig{},
		Storage:       StorageConfig{Timeout: 2 * time.Second, MaxStaleness: 5 * time.Second},
		Audit:         AuditConfig{Retention: 4320 * time.Hour},
		SMTP:          SMTPConfig{Port: 587, TLS: "starttls"},
		Metrics:       MetricsConfig{Listen: "127.0.0.1:9191"},
		Log:           LogConfig{Level: "info", Format: "text"},
		Admin:         AdminConfig{Group: "admins"},
		OIDC:          defaultOIDC(),
		UI:            UIConfig{Name: "Latchkey", DefaultLanguage: "en"},
	}
}

// loadConfig reads the YAML file (explicit path, else ./latchkey.yaml when present, else none)
// over the defaults, then LATCHKEY_* variables over that. Unknown keys are errors.
func loadConfig(path string) (Config, error) {
	cfg := Default()
	v := viper.New()
	v.SetEnvPrefix("LATCHKEY")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	// An empty variable is a value: LATCHKEY_METRICS_LISTEN= turns metrics off, as documented.
	v.AllowEmptyEnv(true)
	// Viper only consults the environment for keys it knows: register every leaf of the config.
	for _, key := range configKeys() {
		v.SetDefault(key, nil)
	}
	if path == "" {
		if _, err := os.Stat("latchkey.yaml"); err == nil {
			path = "latchkey.yaml"
		}
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return cfg, &readError{fmt.Errorf("config: read %s: %w", path, err)}
		}
	}
	settings := v.AllSettings()
	pruneNil(settings)
	if errs := decodeSettings(settings, &cfg); len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	cfg.normalize()
	return cfg, nil
}

// readError is a config file that could not be read or parsed at all; there is nothing to
// validate then.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// checkConfig loads the configuration and reports every problem in one error: those found while
// decoding (unknown keys, values of the wrong kind) and those Validate finds in the rest.
func checkConfig(path string) (Config, error) {
	cfg, err := loadConfig(path)
	var re *readError
	if errors.As(err, &re) {
		return cfg, err
	}
	return cfg, errors.Join(err, cfg.Validate())
}

// pruneNil drops keys registered only for the environment lookup, so that defaults stay.
func pruneNil(m map[string]any) {
	for k, val := range m {
		switch x := val.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNil(x)
			if len(x) == 0 {
				delete(m, k)
			}
		}
	}
}

// configKeys lists every leaf key of Config ("server.public_url", ...). Slices of structs
// (rules, routes) are one key: they come from the file, not from the environment.
func configKeys() []string { return keysOf(false) }

// documentedKeys is configKeys plus the fields of list items ("routes[].upstream"): every key that
// config.example.yaml must show.
func documentedKeys() []string { return keysOf(true) }

func keysOf(items bool) []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("mapstructure")
			if name == "" {
				continue
			}
			key := prefix + name
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, key+".")
				continue
			case items && f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				keys = append(keys, key)
				walk(f.Type.Elem(), key+"[].")
				continue
			}
			keys = append(keys, key)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	sort.Strings(keys)
	return keys
}

// secretValue returns a secret given inline or, with *_file, from a file (trimmed).
func secretValue(inline Secret, file, key string) (string, error) {
	if file == "" {
		return string(inline), nil
	}
	if inline != "" {
		return "", fmt.Errorf("%s and %s_file are both set; use one", key, key)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must be set")
	}
	if _, _, err := net.SplitHostPort(c.Server.Listen); err != nil {
		bad("server.listen", "%v", err)
	}
	pub, err := url.Parse(c.Server.PublicURL)
	switch {
	case err != nil:
		bad("server.public_url", "%v", err)
		pub = nil
	case pub.Scheme != "https" && pub.Scheme != "http":
		bad("server.public_url", "scheme must be https (or http for local use), got %q", c.Server.PublicURL)
		pub = nil
	case pub.Host == "" || pub.User != nil || (pub.Path != "" && pub.Path != "/") || pub.RawQuery != "" || pub.Fragment != "":
		bad("server.public_url", "must be an origin such as https://auth.example.com, got %q", c.Server.PublicURL)
		pub = nil
	}
	if _, err := proxy.ParseTrustedProxies(c.Server.TrustedProxies); err != nil {
		// The proxy package names the item ("trusted_proxies[0]: ..."); add the section.
		for _, e := range flatten(err) {
			errs = append(errs, fmt.Errorf("server.%w", e))
		}
	}
	if (c.Server.TLS.CertFile == "") != (c.Server.TLS.KeyFile == "") {
		bad("server.tls", "cert_file and key_file go together")
	}
	t := c.Server.Timeouts
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"read_header", t.ReadHeader}, {"read", t.Read}, {"write", t.Write}, {"idle", t.Idle}, {"upstream", t.Upstream}, {"shutdown", t.Shutdown}} {
		if d.d <= 0 {
			bad("server.timeouts."+d.name, "must be a positive duration such as 30s, got %s", d.d)
		}
	}
	if c.Storage.Timeout <= 0 {
		bad("storage.timeout", "must be a positive duration such as 2s, got %s", c.Storage.Timeout)
	}
	if c.Storage.MaxStaleness <= 0 {
		bad("storage.max_staleness", "must be a positive duration such as 5s, got %s", c.Storage.MaxStaleness)
	} else if c.Storage.MaxStaleness < time.Second+c.Storage.Timeout {
		// The view polls every second and each poll may take up to storage.timeout; a smaller bound
		// would flap to 503 on an ordinary slow answer.
		bad("storage.max_staleness", "must be at least 1s more than storage.timeout (%s), got %s", c.Storage.Timeout, c.Storage.MaxStaleness)
	}
	if c.Audit.Retention < 0 {
		bad("audit.retention", "must be 0 (keep every row) or a positive duration such as 4320h, got %s", c.Audit.Retention)
	} else if c.Audit.Retention > 0 && c.Audit.Retention < time.Hour {
		bad("audit.retention", "must be 0 (keep every row) or at least 1h, got %s", c.Audit.Retention)
	}
	if c.Server.MaxHeaderBytes < 4096 || c.Server.MaxHeaderBytes > 1<<20 {
		bad("server.max_header_bytes", "must be between 4096 and 1048576, got %d", c.Server.MaxHeaderBytes)
	}
	c.validateCookies(bad)
	if pub != nil {
		host := strings.ToLower(pub.Hostname())
		if c.WebAuthn.RPID != "" && !domainCovers(strings.ToLower(c.WebAuthn.RPID), host) {
			bad("webauthn.rp_id", "%q does not cover public_url's host %q", c.WebAuthn.RPID, host)
		}
		if net.ParseIP(strings.Trim(host, "[]")) != nil && c.WebAuthn.RPID == "" {
			bad("server.public_url", "WebAuthn needs a host name, not an IP address (use localhost for local use)")
		}
		if c.Session.CookieDomain != "" && !domainCovers(strings.ToLower(strings.TrimPrefix(c.Session.CookieDomain, ".")), host) {
			bad("session.cookie_domain", "%q does not cover public_url's host %q", c.Session.CookieDomain, host)
		}
	}
	for i, o := range c.WebAuthn.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad(fmt.Sprintf("webauthn.origins[%d]", i), "must be an origin such as https://auth.example.com, got %q", o)
		}
	}
	if c.WebAuthn.UserVerification != "required" {
		bad("webauthn.user_verification", "only \"required\" is supported: a passkey login always needs a biometric or device PIN")
	}
	if c.Session.CookieName == "" || strings.ContainsAny(c.Session.CookieName, " ;=,\t\"") {
		bad("session.cookie_name", "must be a plain cookie name, got %q", c.Session.CookieName)
	}
	if c.Session.Lifetime <= 0 {
		bad("session.lifetime", "must be a positive duration")
	}
	if c.Session.Inactivity < 0 {
		bad("session.inactivity", "must not be negative")
	}
	for _, k := range []struct {
		key    string
		inline Secret
		file   string
		block  bool
	}{{"session.hash_key", c.Session.HashKey, c.Session.HashKeyFile, false}, {"session.block_key", c.Session.BlockKey, c.Session.BlockKeyFile, true}} {
		val, err := secretValue(k.inline, k.file, k.key)
		if err != nil {
			// Only the default location (data_dir, when *_file is empty) is generated on first
			// start; a file named in the config is the operator's and must exist, or serve
			// would fail after config check said yes.
			errs = append(errs, err)
			continue
		}
		if val == "" {
			continue
		}
		if err := checkKey(val, k.block); err != nil {
			bad(k.key, "%v", err)
		}
	}
	if _, err := proxy.CompileRules(c.AccessControl.Rules, c.AccessControl.DefaultPolicy); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		h, ok := proxy.CanonicalHost(r.Host, "https")
		if !ok {
			bad(key+".host", "invalid host %q", r.Host)
		} else if seen[h] {
			bad(key+".host", "%q is routed twice", r.Host)
		}
		seen[h] = true
		u, err := url.Parse(r.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(key+".upstream", "must be an http(s) URL such as http://127.0.0.1:3000, got %q", r.Upstream)
		}
	}
	if _, err := secretValue(c.Storage.Postgres.DSN, c.Storage.Postgres.DSNFile, "storage.postgres.dsn"); err != nil {
		errs = append(errs, err)
	}
	if c.SMTP.Host != "" {
		if c.SMTP.From == "" {
			bad("smtp.from", "must be set when smtp.host is")
		}
		if c.SMTP.Port <= 0 || c.SMTP.Port > 65535 {
			bad("smtp.port", "must be a port number, got %d", c.SMTP.Port)
		}
		if _, err := secretValue(c.SMTP.Password, c.SMTP.PasswordFile, "smtp.password"); err != nil {
			errs = append(errs, err)
		}
		switch c.SMTP.TLS {
		case "starttls", "tls", "none":
		default:
			bad("smtp.tls", "must be starttls, tls or none, got %q", c.SMTP.TLS)
		}
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "%v", err)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	if c.Admin.Group == "" {
		bad("admin.group", "must be set")
	}
	c.OIDC.validate(bad)
	c.UI.validate(bad)
	return errors.Join(errs...)
}

// Limits on the brand's words: the name sits in a header and every title, the support text is one
// line under the login form.
const (
	maxUINameRunes  = 40
	maxSupportRunes = 200
)

func (u UIConfig) validate(bad func(key, format string, args ...any)) {
	switch n := utf8.RuneCountInString(u.Name); {
	case strings.TrimSpace(u.Name) == "":
		bad("ui.name", "must be set, e.g. Family Cloud")
	case n > maxUINameRunes:
		bad("ui.name", "must be at most %d characters, got %d", maxUINameRunes, n)
	case strings.ContainsFunc(u.Name, unicode.IsControl):
		bad("ui.name", "must be one line of plain text")
	}
	if n := utf8.RuneCountInString(u.SupportText); n > maxSupportRunes {
		bad("ui.support_text", "must be at most %d characters, got %d", maxSupportRunes, n)
	} else if strings.ContainsFunc(u.SupportText, unicode.IsControl) {
		bad("ui.support_text", "must be one line of plain text, e.g. Ask Sam if you are locked out")
	}
	if u.LogoFile != "" {
		if _, err := readLogo(u.LogoFile); err != nil {
			bad("ui.logo_file", "%v", err)
		}
	}
	if err := auth.CheckLanguage(u.DefaultLanguage); err != nil {
		bad("ui.default_language", "%v", err)
	}
	if u.AccentColor != "" {
		if err := auth.CheckAccentColor(u.AccentColor); err != nil {
			bad("ui.accent_color", "%v", err)
		}
	}
}

// readLogo reads ui.logo_file and checks it is a PNG or SVG of at most auth.MaxLogoBytes. It
// reads at most one byte more than the limit, so that a huge file named by mistake costs nothing.
func readLogo(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, auth.MaxLogoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if _, err := auth.CheckLogo(b); err != nil {
		if len(b) > auth.MaxLogoBytes {
			return nil, fmt.Errorf("%s is larger than %d bytes (256 KiB), the most a logo may have", path, auth.MaxLogoBytes)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// flatten lists the errors inside an errors.Join, one per problem.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func checkKey(b64 string, block bool) error {
	key, err := decodeKey(b64)
	if err != nil {
		return err
	}
	hashErr, blockErr := auth.CheckKeys(key, key)
	if block {
		return blockErr
	}
	return hashErr
}

// domainCovers reports whether host is domain or a subdomain of it (dot boundary).
func domainCovers(domain, host string) bool {
	domain = strings.TrimSuffix(domain, ".")
	host = strings.TrimSuffix(host, ".")
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// dbPath is the SQLite file inside the data directory.
func (c *Config) dbPath() string { return filepath.Join(c.DataDir, "latchkey.db") }
