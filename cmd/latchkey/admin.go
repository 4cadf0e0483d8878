package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/latchkeyhq/latchkey/account"
	"github.com/latchkeyhq/latchkey/auth"
	"github.com/latchkeyhq/latchkey/store"
)

// withStore loads the config, opens the store, and runs fn. The CLI and a running server are
// separate processes on one store; the server picks up changes within seconds.
func withStore(cmd *cobra.Command, fn func(ctx context.Context, cfg Config, st *store.Store) error) error {
	cfg, err := configFrom(cmd)
	if err != nil {
		return err
	}
	st, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(cmd.Context(), cfg, st)
}

func userByName(ctx context.Context, st *store.Store, name string) (store.User, error) {
	u, err := st.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return u, fmt.Errorf("no user named %q", name)
	}
	return u, err
}

func publicURL(cfg Config) *url.URL {
	u, _ := url.Parse(cfg.Server.PublicURL)
	u.Path = ""
	return u
}

// accounts is the one implementation of account operations (package account) that the admin
// console uses too, acting as "cli".
func accounts(cfg Config, st *store.Store) *account.Service {
	return account.New(st, account.Options{PublicURL: publicURL(cfg)})
}

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users"}
	var email, display, groups string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user and print a one-time enrolment link (last line)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				u, link, err := accounts(cfg, st).AddUser(ctx, account.CLI, account.NewUser{Name: args[0], DisplayName: display,
					Email: email, Groups: account.SplitGroups(groups)})
				if errors.Is(err, account.ErrUserExists) {
					return fmt.Errorf("a user named %q exists; use `latchkey user invite %s` for a new enrolment link", u.Name, clean(u.Name))
				} else if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Created user %s. Send them this one-time enrolment link (valid %s):\n%s\n", u.Name, enrolValidity(), link)
				return nil
			})
		},
	}
	add.Flags().StringVar(&email, "email", "", "e-mail address (for recovery links)")
	add.Flags().StringVar(&display, "display-name", "", "display name")
	add.Flags().StringVar(&groups, "groups", "", "comma-separated groups")
	invite := &cobra.Command{
		Use:   "invite NAME",
		Short: "Print a new one-time enrolment link for an existing user (last line)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				u, err := userByName(ctx, st, args[0])
				if err != nil {
					return err
				}
				link, err := accounts(cfg, st).Invite(ctx, account.CLI, u)
				if errors.Is(err, account.ErrDisabled) {
					return fmt.Errorf("user %q is disabled; enable them first", u.Name)
				} else if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "New enrolment link for %s (valid %s; earlier links no longer work):\n%s\n", u.Name, enrolValidity(), link)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				users, err := st.Users(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDISPLAY NAME\tEMAIL\tGROUPS\tPASSKEYS\tSTATUS")
				for _, u := range users {
					creds, err := st.Credentials(ctx, u.ID)
					if err != nil {
						return err
					}
					status := "active"
					if u.Disabled {
						status = "disabled"
					} else if len(creds) == 0 {
						status = "not enrolled"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", clean(u.Name), clean(u.DisplayName), clean(u.Email), clean(strings.Join(u.Groups, ",")), len(creds), status)
				}
				return tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Delete a user with their passkeys and sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				u, err := userByName(ctx, st, args[0])
				if err != nil {
					return err
				}
				if err := accounts(cfg, st).Remove(ctx, account.CLI, u); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Removed user %s.\n", u.Name)
				return nil
			})
		},
	}
	setDisabled := func(use, short string, disabled bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
					u, err := userByName(ctx, st, args[0])
					if err != nil {
						return err
					}
					if !disabled {
						if err := accounts(cfg, st).Enable(ctx, account.CLI, u); err != nil {
							return err
						}
						fmt.Fprintf(cmd.OutOrStdout(), "Enabled %s.\n", u.Name)
						return nil
					}
					rv, err := accounts(cfg, st).Disable(ctx, account.CLI, u)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Disabled %s. %s; %s.\n", u.Name, account.Summary(rv, true), links(rv.Links))
					return nil
				})
			},
		}
	}
	cmd.AddCommand(add, invite, list, remove,
		setDisabled("disable", "Disable a user and end their sessions, API tokens and links for good", true),
		setDisabled("enable", "Enable a disabled user", false))
	return cmd
}

// links says how many unused links a revocation expired.
func links(n int64) string {
	if n == 1 {
		return "expired 1 unused link"
	}
	return fmt.Sprintf("expired %d unused links", n)
}

func newPasskeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "passkey", Short: "Manage passkeys"}
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "List a user's passkeys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				u, err := userByName(ctx, st, args[0])
				if err != nil {
					return err
				}
				creds, err := st.Credentials(ctx, u.ID)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				// The same ID (base64url, whole) and name as the admin console's user page.
				fmt.Fprintln(tw, "ID\tNAME\tPROVIDER\tKIND\tCREATED\tLAST USED")
				for _, c := range creds {
					kind := "device-bound"
					if c.BackupEligible {
						kind = "synced"
					}
					provider := auth.AuthenticatorName(c.AAGUID)
					if provider == "" {
						provider = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", base64.RawURLEncoding.EncodeToString(c.ID), clean(c.Name), provider, kind,
						fmtTime(c.CreatedAt), fmtTime(c.LastUsedAt))
				}
				return tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a passkey (by the ID that passkey list prints) and end the sessions it made",
		// A base64url ID can begin with "-", which flag parsing would take for a flag: this
		// command reads its own arguments (see idArgs) so that the printed ID always works.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			args, help, err := idArgs(cmd, raw, 1, 1, "latchkey passkey remove ID (the ID that `latchkey passkey list` prints)")
			if err != nil || help {
				if help {
					return cmd.Help()
				}
				return err
			}
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				id, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(args[0], "="))
				if err != nil || len(id) == 0 {
					return fmt.Errorf("%q is not a passkey ID as `latchkey passkey list` prints it", args[0])
				}
				c, err := st.Credential(ctx, id)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no passkey with ID %s", args[0])
				} else if err != nil {
					return err
				}
				owner, err := st.UserByID(ctx, c.UserID)
				if err != nil {
					return err
				}
				if err := accounts(cfg, st).RemovePasskey(ctx, account.CLI, owner, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Removed passkey %q.\n", clean(c.Name))
				// An admin may remove anyone's last passkey (a stolen device); say what is left.
				if left, err := st.Credentials(ctx, c.UserID); err == nil && len(left) == 0 {
					if u, err := st.UserByID(ctx, c.UserID); err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%s has no passkey left; `latchkey user invite %s` makes a new enrolment link.\n", clean(u.Name), clean(u.Name))
					}
				}
				return nil
			})
		},
	}
	cmd.AddCommand(list, remove)
	return cmd
}

// clean makes a stored, partly user-chosen value (a passkey name, a user agent, an audit detail)
// safe to print on an admin's terminal: control characters, which could move the cursor or
// rewrite what is shown, become U+FFFD.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func newSessionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "session", Short: "Manage sessions"}
	list := &cobra.Command{
		Use:   "list NAME",
		Short: "List a user's live sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				u, err := userByName(ctx, st, args[0])
				if err != nil {
					return err
				}
				ss, err := st.Sessions(ctx, u.ID)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tMETHOD\tIP\tCREATED\tLAST SEEN\tDEVICE")
				for _, s := range ss {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Method, clean(s.IP), fmtTime(s.CreatedAt), fmtTime(s.LastSeenAt), clean(s.UserAgent))
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME [ID] [--tokens]",
		Short: "End every session of a user (with --tokens, revoke their API tokens too), or the one whose ID session list prints",
		// Session IDs are base64url and may begin with "-": see idArgs.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, raw []string) error {
			// --tokens is read here, before idArgs: a session ID (22 characters) is never that word.
			tokens := false
			rest := make([]string, 0, len(raw))
			for i, a := range raw {
				if a == "--" {
					rest = append(rest, raw[i:]...)
					break
				}
				if a == "--tokens" {
					tokens = true
					continue
				}
				rest = append(rest, a)
			}
			args, help, err := idArgs(cmd, rest, 1, 2, "latchkey session revoke NAME [ID] [--tokens]")
			if err == nil && tokens && len(args) == 2 {
				err = &exitError{code: 2, err: errors.New("--tokens goes with revoking every session, not one")}
			}
			if err != nil || help {
				if help {
					return cmd.Help()
				}
				return err
			}
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				u, err := userByName(ctx, st, args[0])
				if err != nil {
					return err
				}
				acc := accounts(cfg, st)
				if len(args) == 2 {
					if err := acc.RevokeSession(ctx, account.CLI, u, args[1], false); err != nil {
						if errors.Is(err, store.ErrNotFound) {
							return fmt.Errorf("%s has no live session with ID %q", u.Name, args[1])
						}
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Ended session %s of %s.\n", args[1], u.Name)
					return nil
				}
				rv, err := acc.RevokeSessions(ctx, account.CLI, u, tokens)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s of %s.\n", account.Summary(rv, tokens), u.Name)
				return nil
			})
		},
	}
	cmd.AddCommand(list, revoke)
	return cmd
}

func newAuditCommand() *cobra.Command {
	var user string
	var since time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show security events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				f := store.AuditFilter{Limit: limit}
				names := map[string]string{}
				users, err := st.Users(ctx)
				if err != nil {
					return err
				}
				for _, u := range users {
					names[u.ID] = u.Name
				}
				if user != "" {
					u, err := userByName(ctx, st, user)
					if err != nil {
						return err
					}
					f.UserID = u.ID
				}
				if since > 0 {
					f.Since = time.Now().Add(-since)
				}
				events, err := st.AuditEvents(ctx, f)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tUSER\tEVENT\tIP\tDETAIL")
				for _, e := range events {
					name := names[e.UserID]
					if name == "" {
						name = e.UserID
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), clean(name), clean(e.Event), clean(e.IP), clean(e.Detail))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "only this user's events")
	cmd.Flags().DurationVar(&since, "since", 0, "only events this recent (e.g. 24h)")
	cmd.Flags().IntVar(&limit, "limit", 200, "at most this many events")
	return cmd
}

func newBackupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database to FILE (safe while serving)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, func(ctx context.Context, cfg Config, st *store.Store) error {
				if err := st.Backup(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Wrote backup to %s.\n", args[0])
				return nil
			})
		},
	}
}

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with the configuration"}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration: exit 0 when valid, else one line per problem and exit 2",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, _ := cmd.Flags().GetString("config")
			if _, err := checkConfig(path); err != nil {
				for _, line := range problemLines(err) {
					fmt.Fprintln(cmd.ErrOrStderr(), line)
				}
				return &exitError{code: 2, err: errors.New("")}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "config OK")
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

// problemLines flattens joined and multi-line errors into one line per problem.
func problemLines(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		if line == "" || strings.HasPrefix(line, "decoding failed due to") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// enrolValidity says how long an enrolment link works, in words.
func enrolValidity() string { return fmt.Sprintf("%d days", int(auth.EnrolTTL/(24*time.Hour))) }

// idArgs parses the arguments of a command whose positional arguments may begin with "-" (IDs
// in base64url): --config FILE, --config=FILE, -c FILE and --help are recognised, "--" ends the
// options, and anything else is positional (between min and max of them).
func idArgs(cmd *cobra.Command, raw []string, min, max int, usage string) (args []string, help bool, err error) {
	for i := 0; i < len(raw); i++ {
		a := raw[i]
		switch {
		case a == "--":
			args = append(args, raw[i+1:]...)
			i = len(raw)
		case a == "--help" || a == "-h":
			return nil, true, nil
		case a == "--config" || a == "-c":
			if i+1 == len(raw) {
				return nil, false, &exitError{code: 2, err: fmt.Errorf("%s needs a file name", a)}
			}
			i++
			if err := cmd.Flags().Set("config", raw[i]); err != nil {
				return nil, false, err
			}
		case strings.HasPrefix(a, "--config="):
			if err := cmd.Flags().Set("config", strings.TrimPrefix(a, "--config=")); err != nil {
				return nil, false, err
			}
		default:
			args = append(args, a)
		}
	}
	if len(args) < min || len(args) > max {
		return nil, false, &exitError{code: 2, err: fmt.Errorf("usage: %s", usage)}
	}
	return args, false, nil
}
