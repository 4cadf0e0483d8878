package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/oidc"
	"github.com/latchkeyhq/latchkey/proxy"
	"github.com/latchkeyhq/latchkey/store"
)

// OIDCConfig is the OpenID Provider (issue 22). Its issuer is public_url + /.latchkey/oidc.
type OIDCConfig struct {
	SigningAlg           string        `mapstructure:"signing_alg"`
	AccessTokenLifetime  time.Duration `mapstructure:"access_token_lifetime"`
	IDTokenLifetime      time.Duration `mapstructure:"id_token_lifetime"`
	RefreshTokenLifetime time.Duration `mapstructure:"refresh_token_lifetime"`
	TokenRateLimit       float64       `mapstructure:"token_rate_limit"`
}

func defaultOIDC() OIDCConfig {
	return OIDCConfig{SigningAlg: oidc.RS256, AccessTokenLifetime: oidc.DefaultAccessTokenLifetime,
		IDTokenLifetime: oidc.DefaultIDTokenLifetime, RefreshTokenLifetime: oidc.DefaultRefreshTokenLifetime,
		TokenRateLimit: oidc.DefaultTokenRate}
}

// maxRefreshLifetime: a refresh token ends with the session that authorized it, and session rows
// are kept 30 days past their end, so a longer refresh lifetime could never be reached.
const maxRefreshLifetime = 30 * 24 * time.Hour

func (c OIDCConfig) validate(bad func(key, format string, args ...any)) {
	if c.SigningAlg != oidc.RS256 && c.SigningAlg != oidc.ES256 {
		bad("oidc.signing_alg", "%q: want RS256 or ES256", c.SigningAlg)
	}
	if c.AccessTokenLifetime <= 0 {
		bad("oidc.access_token_lifetime", "must be positive")
	}
	if c.IDTokenLifetime <= 0 {
		bad("oidc.id_token_lifetime", "must be positive")
	}
	if c.RefreshTokenLifetime <= 0 || c.RefreshTokenLifetime > maxRefreshLifetime {
		bad("oidc.refresh_token_lifetime", "must be positive and at most 720h")
	}
	if c.TokenRateLimit <= 0 {
		bad("oidc.token_rate_limit", "must be positive (requests a second per client address)")
	}
}

// newProvider builds the OpenID Provider for serve.
func newProvider(cfg Config, st *store.Store, svc *auth.Service, blockKey []byte, trusted proxy.TrustedProxies, log *slog.Logger) (*oidc.Provider, error) {
	return oidc.New(oidc.Options{
		PublicURL: publicURL(cfg), Store: st, Sessions: svc, BlockKey: blockKey,
		SigningAlg: cfg.OIDC.SigningAlg, AccessTokenLifetime: cfg.OIDC.AccessTokenLifetime,
		IDTokenLifetime: cfg.OIDC.IDTokenLifetime, RefreshTokenLifetime: cfg.OIDC.RefreshTokenLifetime,
		TokenRate: cfg.OIDC.TokenRateLimit,
		ClientAddr: func(r *http.Request) string {
			if a, ok := trusted.ClientAddr(r); ok {
				return a.String()
			}
			return ""
		},
		Logger: log,
	})
}

// withOIDC sends everything under /.latchkey/oidc/ to the provider and the rest to next.
func withOIDC(next http.Handler, p *oidc.Provider) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, oidc.Prefix+"/") {
			p.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func newOIDCCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "oidc", Short: "Manage the OpenID Provider: clients (apps) and signing keys",
		Long: "Latchkey is an OpenID Provider for apps that sign users in with OpenID Connect.\n" +
			"Issuer: public_url + /.latchkey/oidc; discovery under it at /.well-known/openid-configuration."}
	client := &cobra.Command{Use: "client", Short: "Manage OpenID Connect clients"}
	client.AddCommand(newOIDCClientAdd(), newOIDCClientList(), newOIDCClientRemove(), newOIDCClientRotate())
	keys := &cobra.Command{Use: "keys", Short: "Manage the ID token signing keys"}
	keys.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Sign with a new key; the previous one stays in the JWKS until its tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				_, blockKey, err := sessionKeys(cfg)
				if err != nil {
					return err
				}
				kid, err := oidc.RotateSigningKey(ctx, st, blockKey, cfg.OIDC.SigningAlg, cfg.OIDC.IDTokenLifetime, time.Now)
				if err != nil {
					return err
				}
				cliAudit(ctx, st, "oidc_key_rotated", "new key "+kid+" ("+cfg.OIDC.SigningAlg+")")
				fmt.Fprintf(cmd.OutOrStdout(), "New %s signing key %s. The previous key stays published for %s.\n",
					cfg.OIDC.SigningAlg, kid, cfg.OIDC.IDTokenLifetime)
				return nil
			})
		},
	})
	cmd.AddCommand(client, keys)
	return cmd
}

func newOIDCClientAdd() *cobra.Command {
	var redirects, logouts []string
	var public, trusted bool
	var groups, backchannel string
	add := &cobra.Command{
		Use:   "add NAME --redirect-uri URI [--redirect-uri URI...] [--public] [--trusted] [--groups a,b]",
		Short: "Register an app; prints client_id: and, for a confidential client, client_secret: (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				name := strings.TrimSpace(args[0])
				id, secret, err := oidc.AddClient(ctx, st, oidc.NewClient{Name: name, RedirectURIs: redirects,
					PostLogoutURIs: logouts, Public: public, Trusted: trusted, Groups: account.SplitGroups(groups),
					BackchannelLogoutURI: backchannel}, time.Now())
				if errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("a client named %q exists; remove it first or pick another name", name)
				}
				if err != nil {
					return err
				}
				cliAudit(ctx, st, "oidc_client_added", "client "+name)
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "issuer: %s\n", oidc.Issuer(publicURL(cfg)))
				fmt.Fprintf(out, "client_id: %s\n", id)
				if secret != "" {
					fmt.Fprintf(out, "client_secret: %s\n", secret)
					fmt.Fprintln(cmd.ErrOrStderr(), "The secret is shown once; `latchkey oidc client rotate-secret "+name+"` makes a new one.")
				}
				return nil
			})
		},
	}
	add.Flags().StringArrayVar(&redirects, "redirect-uri", nil, "an exact redirect URI (repeat for several)")
	add.Flags().StringArrayVar(&logouts, "post-logout-redirect-uri", nil, "where RP-initiated logout may return (besides the redirect URIs)")
	add.Flags().StringVar(&backchannel, "backchannel-logout-uri", "", "where to post a logout token when a user's session ends (OpenID back-channel logout)")
	add.Flags().BoolVar(&public, "public", false, "a public client (mobile or single-page app): no secret, PKCE S256 required")
	add.Flags().BoolVar(&trusted, "trusted", false, "skip the consent page")
	add.Flags().StringVar(&groups, "groups", "", "comma-separated groups whose members may use the app (default: everyone)")
	return add
}

func newOIDCClientList() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List OpenID Connect clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				clients, err := st.OIDCClients(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCLIENT ID\tTYPE\tCONSENT\tGROUPS\tREDIRECT URIS")
				for _, c := range clients {
					kind, consent, groups := "confidential", "once", strings.Join(c.Groups, ",")
					if c.Public {
						kind = "public"
					}
					if c.Trusted {
						consent = "trusted"
					}
					if groups == "" {
						groups = "(everyone)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.ID, kind, consent, groups, strings.Join(c.RedirectURIs, " "))
				}
				return tw.Flush()
			})
		},
	}
}

func newOIDCClientRemove() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a client; its refresh and access tokens stop working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				if err := st.DeleteOIDCClient(ctx, args[0]); errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no client named %q", args[0])
				} else if err != nil {
					return err
				}
				cliAudit(ctx, st, "oidc_client_removed", "client "+args[0]+": its tokens are revoked")
				fmt.Fprintf(cmd.OutOrStdout(), "Removed client %s; its tokens no longer work.\n", args[0])
				return nil
			})
		},
	}
}

func newOIDCClientRotate() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret NAME",
		Short: "Give a confidential client a new secret (printed as client_secret:); the old one stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				secret, err := oidc.RotateSecret(ctx, st, args[0])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no confidential client named %q", args[0])
				}
				if err != nil {
					return err
				}
				cliAudit(ctx, st, "oidc_client_secret_rotated", "client "+args[0])
				fmt.Fprintf(cmd.OutOrStdout(), "client_secret: %s\n", secret)
				return nil
			})
		},
	}
}

// cliAudit records an OpenID administration event made from the CLI, in the account package's
// vocabulary (the detail starts with the actor), so that the audit log reads alike whoever acted.
func cliAudit(ctx context.Context, st *store.Store, event, detail string) {
	if err := st.Audit(ctx, store.Event{Event: event, Detail: "actor=cli " + detail}); err != nil {
		fmt.Fprintf(os.Stderr, "latchkey: writing the audit event %s failed: %v\n", event, err)
	}
}
