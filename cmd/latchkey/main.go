// Command latchkey is a passkey-only authentication gateway: it answers forward-auth requests
// from Traefik, Nginx and Caddy, or proxies protected hosts itself.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra's RunE.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "latchkey:", err)
	return 1
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "latchkey",
		Short:         "Passkey-only authentication gateway for self-hosted dashboards",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("latchkey {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringP("config", "c", "", "config file (default: ./latchkey.yaml when present)")
	root.AddCommand(
		newServeCommand(),
		newUserCommand(),
		newPasskeyCommand(),
		newSessionCommand(),
		newAuditCommand(),
		newBackupCommand(),
		newConfigCommand(),
		newHealthcheckCommand(),
		newDoctorCommand(),
		newMigrateCommand(),
		newOIDCCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fmt.Fprintln(cmd.OutOrStdout(), "latchkey", versionLine())
				return nil
			},
		},
	)
	return root
}

// configFrom loads and validates the config named by --config.
func configFrom(cmd *cobra.Command) (Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := checkConfig(path)
	var re *readError
	switch {
	case errors.As(err, &re):
		return cfg, &exitError{code: 2, err: err}
	case err != nil:
		return cfg, &exitError{code: 2, err: fmt.Errorf("config: %w", err)}
	}
	return cfg, nil
}
