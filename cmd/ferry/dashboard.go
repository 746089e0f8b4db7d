package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ferry-updates/ferry/dashboard"
	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
	"github.com/ferry-updates/ferry/store"
)

func (e *env) dashboardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Manage the credential of ferry serve's web dashboard",
		Example: `  ferry dashboard credential --out ./dashboard.cred
  ferry serve --repo ./repo --addr :443 --tls-cert cert.pem --tls-key key.pem --dashboard-credential ./dashboard.cred`,
	}
	cmd.AddCommand(e.dashboardCredentialCmd())
	return cmd
}

func (e *env) dashboardCredentialCmd() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "credential --out FILE [--force]",
		Short: "Hash a password for the dashboard's sign-in into FILE",
		Long: `Read the dashboard's password (asked twice on a terminal, or the first line of standard input)
and write its argon2id hash to FILE (mode 0600), one line in the PHC form
$argon2id$v=19$m=65536,t=3,p=1$SALT$HASH (64 MiB, three passes, a random salt). The password itself
is written nowhere. The password must have at least 12 characters. Give FILE to ferry serve
--dashboard-credential; ferry serve reads it when it starts, so run this again with --force
(an existing FILE is not replaced without it) and restart the server to change the password.
See docs/dashboard.md.`,
		Example: `  ferry dashboard credential --out ./dashboard.cred                 # asks for the password twice
  printf '%s\n' "$DASHBOARD_PASSWORD" | ferry dashboard credential --out ./dashboard.cred
  ferry dashboard credential --out ./dashboard.cred --force         # a new password; then restart ferry serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return withHint(errors.New("no --out given"), "name the file to write the credential to: --out FILE")
			}
			_, err := os.Lstat(out)
			replace := err == nil
			if replace && !force {
				return withHint(fmt.Errorf("%s exists: not replaced", out),
					"pass --force to replace the credential in it, then restart ferry serve (it reads the file when it starts)")
			}
			pw, err := e.dashboardPassword()
			if err != nil {
				return err
			}
			c, err := dashboard.HashPassword(pw, dashboard.DefaultParams)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, []byte(c.String()+"\n"), 0o600); err != nil {
				return fmt.Errorf("write the dashboard credential: %w", err)
			}
			if replace {
				fmt.Fprintf(e.stderr, "replaced the dashboard credential (argon2id) in %s: restart ferry serve for the new password to take effect\n", out)
				return nil
			}
			fmt.Fprintf(e.stderr, "wrote the dashboard credential (argon2id) to %s: pass it to ferry serve --dashboard-credential %s\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the hashed credential to this file (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists (restart ferry serve afterwards)")
	return cmd
}

// dashboardPassword asks for the password twice on a terminal, or reads
// the first line of standard input.
func (e *env) dashboardPassword() ([]byte, error) {
	if f, ok := e.terminal(); ok {
		fmt.Fprint(e.stderr, "Dashboard password: ")
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, fmt.Errorf("read the password: %w", err)
		}
		fmt.Fprint(e.stderr, "Dashboard password (again): ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return nil, fmt.Errorf("read the password: %w", err)
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("the passwords do not match: run the command again")
		}
		return p, nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the password from standard input: %w", err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return nil, withHint(errors.New("no password on standard input"), "run on a terminal to be asked, or pipe the password in as one line")
	}
	return line, nil
}

// serveDashboard is the dashboard of serve, or nil without
// --dashboard-credential.
//
// With the rollout guard g, the dashboard shows each guarded rollout's
// stage and evidence, and signs its decisions through g, as the admin API
// does: under the same lock, a guarded start records its plan, and a start
// by hand ends a release's plan.
func (e *env) serveDashboard(fl serveFlags, ko repo.Options, st store.Store, g *server.Guard) (http.Handler, error) {
	if fl.dashboardCredential == "" {
		return nil, nil
	}
	hint := "make one with: ferry dashboard credential --out " + fl.dashboardCredential
	b, err := os.ReadFile(fl.dashboardCredential)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, withHint(fmt.Errorf("--dashboard-credential: %w", err), hint)
	}
	if err != nil {
		return nil, fmt.Errorf("--dashboard-credential: %w", err)
	}
	cred, err := dashboard.ParseCredential(b)
	if err != nil {
		return nil, withHint(fmt.Errorf("--dashboard-credential %s: %w", fl.dashboardCredential, err), hint)
	}
	r, err := repo.OpenWith(fl.dir, ko)
	if err != nil {
		return nil, err
	}
	cfg := dashboard.Config{Store: st, Repo: r, Credential: cred, StaleAfter: fl.staleAfter,
		Logger: slog.New(slog.NewJSONHandler(e.stderr, nil))}
	if g != nil {
		cfg.Guard = g
		cfg.Decide = g.Decide
	}
	return dashboard.New(cfg)
}
