package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/store"
)

func (e *env) installationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "installation",
		Short:   "Manage the installations enrolled with this server",
		Example: `  ferry installation revoke --repo ./repo 0123456789abcdef0123456789abcdef`,
	}
	cmd.AddCommand(e.installationRevokeCmd())
	return cmd
}

func (e *env) installationRevokeCmd() *cobra.Command {
	var dir, db string
	cmd := &cobra.Command{
		Use:   "revoke --repo DIR [--db DB] ID",
		Short: "Revoke one enrolled installation: its reports are refused and no longer count for any rollout",
		Long: `Revoke the installation with this install ID (the server's log and ferry agent status show it): a machine
that leaked its credential, or is no longer trusted. A running server refuses its reports from the next one
(403), and the rollout guard leaves out everything it reported (R68, R69). It cannot enroll again under this
install ID; a machine trusted again enrolls from a new state directory. To disown every installation a leaked
enrollment token enrolled, revoke the token instead (ferry token revoke).`,
		Example: `  ferry installation revoke --repo ./repo 0123456789abcdef0123456789abcdef`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context(), dir, db)
			if err != nil {
				return err
			}
			defer st.Close()
			err = st.RevokeInstallation(cmd.Context(), args[0], time.Now())
			if errors.Is(err, store.ErrNotFound) {
				return withHint(err, "the install ID is the one the server logged at enrollment (\"report: enrolled\") and ferry agent status shows")
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked installation %s: its reports are refused and no longer counted\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.Flags().StringVar(&db, "db", "", "the server's database (default: DIR/"+storeFile+")")
	cmd.MarkFlagRequired("repo")
	return cmd
}
