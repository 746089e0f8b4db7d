package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/server"
)

func (e *env) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the publisher tokens of the admin API",
		Example: `  (umask 077 && ferry token create --repo ./repo --app hello > hello.token)
  ferry token list --repo ./repo
  ferry token revoke --repo ./repo 0123456789ab`,
	}
	cmd.AddCommand(e.tokenCreateCmd(), e.tokenListCmd(), e.tokenRevokeCmd())
	return cmd
}

// tokensFile is where a repository keeps its token hashes.
func tokensFile(dir string) (string, error) {
	if _, err := repo.Open(dir, nil); err != nil {
		return "", err
	}
	return filepath.Join(dir, server.TokensFile), nil
}

func (e *env) tokenCreateCmd() *cobra.Command {
	var dir, app string
	cmd := &cobra.Command{
		Use:   "create --repo DIR --app APP",
		Short: "Make a publisher token for one application",
		Long: `Make a token that lets a release pipeline publish APP through ferry serve's admin API
(ferry release publish --server). Only its SHA-256 is stored, in DIR/` + server.TokensFile + ` (mode
0600); the token itself is printed once, alone on standard output (what it is goes to standard
error), and cannot be shown again: redirect it into a file only its pipeline can read. A token publishes nothing on its own: every upload must also be signed by the
application's key.`,
		Example: `  (umask 077 && ferry token create --repo ./repo --app hello > hello.token)
  ferry token create --repo ./repo --app hello      # the token on stdout, what it is on stderr`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := tokensFile(dir)
			if err != nil {
				return err
			}
			secret, t, err := server.CreateToken(file, app, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "created token %s for application %s; it is shown only now, on standard output\n", t.ID, t.App)
			fmt.Fprintln(e.stdout, secret)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.Flags().StringVar(&app, "app", "", "the application the token may publish (required)")
	cmd.MarkFlagRequired("repo")
	cmd.MarkFlagRequired("app")
	return cmd
}

func (e *env) tokenListCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "list --repo DIR",
		Short:   "List the publisher tokens (their IDs, never the tokens)",
		Example: `  ferry token list --repo ./repo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := tokensFile(dir)
			if err != nil {
				return err
			}
			ts, err := server.ListTokens(file)
			if err != nil {
				return err
			}
			if len(ts) == 0 {
				fmt.Fprintln(e.stdout, "no tokens")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAPP\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.App, t.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.MarkFlagRequired("repo")
	return cmd
}

func (e *env) tokenRevokeCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "revoke --repo DIR ID",
		Short:   "Revoke a publisher token; a running server refuses it from its next request",
		Example: `  ferry token revoke --repo ./repo 0123456789ab`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := tokensFile(dir)
			if err != nil {
				return err
			}
			t, err := server.RevokeToken(file, args[0])
			if err != nil {
				return withHint(err, "ferry token list --repo "+dir+" shows the token IDs")
			}
			fmt.Fprintf(e.stdout, "revoked token %s of application %s\n", t.ID, t.App)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.MarkFlagRequired("repo")
	return cmd
}
