package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/repo"
)

func (e *env) repoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Maintain a repository",
		Example: `  ferry repo status --repo ./repo
  ferry repo refresh --repo ./repo --online-only
  ferry repo refresh --repo ./repo --offline-keys ./offline-keys --role targets
  ferry repo split-keys --repo ./repo --offline-keys ./offline-keys`,
	}
	cmd.AddCommand(e.refreshCmd(), e.statusCmd(), e.splitKeysCmd())
	return cmd
}

func (e *env) refreshCmd() *cobra.Command {
	var (
		dir string
		o   repo.RefreshOptions
		kf  keyFlags
		rf  remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "refresh --repo DIR [--online-only | --role ROLE...] [--force]",
		Short: "Re-sign metadata before it expires",
		Long: `Re-sign snapshot and timestamp if they expire within half their lifetime, or always with
--force. With --online-only only the online keys (DIR/keys) are used, as ferry serve does on its
schedule; offline roles that are due are named in a warning with the time left. --role targets or
--role APP (repeatable) re-signs that role now, with its keys from --offline-keys KEYDIR,
--app-key, or --signer REF (a key file or a signer URI: an HSM or a KMS); without --online-only or --role, offline roles that are due are re-signed when their
keys are here (a repository of the old layout keeps them in DIR/keys) and named in a warning when
not. Root is never re-signed here: a new root is a ceremony of its holders.

With --server URL instead of --repo, a release pipeline that holds only its application's key
re-signs its role (--role APP, same targets, a new expiry) and uploads it to the server's admin API
(--token-file, --ca as for ferry release publish --server), so the role does not expire between
releases, checked against the pipeline's publisher record (--publisher-state, as for ferry release
publish --server).`,
		Example: `  ferry repo refresh --repo ./repo --online-only
  ferry repo refresh --repo ./repo --online-only --force
  ferry repo refresh --repo ./repo --offline-keys ./offline-keys --role targets
  ferry repo refresh --repo ./repo --app-key ./hello.key --role hello
  ferry repo refresh --repo ./repo --signer 'pkcs11:token=ferry;object=targets' --role targets
  ferry repo refresh --server https://updates.example.com/ --token-file ./hello.token --app-key ./hello.key --role hello`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.check(dir, kf); err != nil {
				return err
			}
			if rf.server != "" {
				return e.refreshRemote(cmd.Context(), rf, kf, o)
			}
			if o.OnlineOnly && (len(o.Roles) > 0 || kf.offline != "" || len(kf.appKeys) > 0 || len(kf.signers) > 0) {
				return fmt.Errorf("--online-only uses no offline key: drop --role, --offline-keys, --app-key and --signer")
			}
			r, err := e.openRepo(cmd.Context(), dir, kf)
			if err != nil {
				return err
			}
			res, err := r.RefreshWith(cmd.Context(), o)
			if err != nil {
				return missingKeyHint(err)
			}
			warnDue(e.stderr, res.Due, time.Now())
			if len(res.Signed) == 0 {
				fmt.Fprintf(e.stdout, "refreshed %s: nothing was due\n", dir)
				return nil
			}
			fmt.Fprintf(e.stdout, "refreshed %s: re-signed %s\n", dir, strings.Join(res.Signed, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (or --server)")
	f.BoolVar(&o.Force, "force", false, "re-sign snapshot and timestamp even if nothing expires soon")
	f.BoolVar(&o.OnlineOnly, "online-only", false, "use only the online keys (snapshot, timestamp, rollout), as the server does")
	f.StringArrayVar(&o.Roles, "role", nil, "offline role to re-sign now: targets or an application name (repeatable)")
	kf.addOffline(f)
	kf.addApp(f, false)
	kf.addOnline(f)
	rf.add(f)
	return cmd
}

// warnDue writes one warning line per offline role that its holders must
// re-sign: the role, the time left and the command.
func warnDue(w io.Writer, due []repo.RoleStatus, now time.Time) {
	for _, s := range due {
		when := "expires in " + fmtLeft(s.Expires.Sub(now))
		if !s.Expires.After(now) {
			when = "EXPIRED " + fmtLeft(now.Sub(s.Expires)) + " ago"
		}
		fmt.Fprintf(w, "ferry: warning: role %s (%s keys) %s (%s); re-sign it: %s\n",
			s.Role, s.Custody, when, s.Expires.UTC().Format(time.RFC3339), s.ResignCmd)
	}
}

// fmtLeft prints a duration as days and hours ("12d3h", "5h", "17m").
func fmtLeft(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour); {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh", hours)
	}
	return fmt.Sprintf("%dm", int(d/time.Minute))
}

func (e *env) statusCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status --repo DIR [--json]",
		Short: "Show every role's version, expiry and who must re-sign it",
		Long: `List every role of the repository: version, expiry, time left, threshold, key IDs, who holds
its keys (online: the server re-signs it; offline: root and targets holders; app: the application's
release pipeline) and the command that re-signs it. A role marked DUE is within half its lifetime
of expiring. Reads only public metadata: no key or passphrase is needed.`,
		Example: `  ferry repo status --repo ./repo
  ferry repo status --repo ./repo --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := repo.Open(dir, nil)
			if err != nil {
				return err
			}
			st, err := r.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return printStatus(e.stdout, st)
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("repo")
	return cmd
}

func printStatus(w io.Writer, st []repo.RoleStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tVERSION\tEXPIRES\tLEFT\tTHRESHOLD\tKEY IDS\tHELD BY\tRE-SIGN WITH")
	for _, s := range st {
		left := fmtLeft(s.TimeLeft)
		switch {
		case s.TimeLeft <= 0:
			left = "EXPIRED"
		case s.Due:
			left += " DUE"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d of %d\t%s\t%s\t%s\n", s.Role, s.Version, s.Expires.UTC().Format(time.RFC3339),
			left, s.Threshold, len(s.KeyIDs), strings.Join(shortKeyIDs(s.KeyIDs), ","), s.Custody, s.ResignCmd)
	}
	return tw.Flush()
}

func shortKeyIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		if len(id) > 12 {
			out[i] = id[:12]
		}
	}
	return out
}

func (e *env) splitKeysCmd() *cobra.Command {
	var dir, offline string
	cmd := &cobra.Command{
		Use:   "split-keys --repo DIR --offline-keys KEYDIR",
		Short: "Move the offline keys of a repository out of it",
		Long: `Move every offline private key (root, targets, applications) of a repository that keeps all
its keys in DIR/keys to KEYDIR, leaving only the online keys (snapshot, timestamp, rollout) in DIR/keys.
Each key file is copied and synced before any original is removed, so a crash loses no key; run
it again to finish an interrupted move. Afterwards keep KEYDIR off the server and pass
--offline-keys KEYDIR to the commands that sign offline roles. No passphrase is needed: key files
are moved, not decrypted.`,
		Example: `  ferry repo split-keys --repo ./repo --offline-keys ./offline-keys`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			moved, err := repo.SplitKeys(cmd.Context(), dir, offline)
			if err != nil {
				return err
			}
			for _, m := range moved {
				fmt.Fprintf(e.stdout, "moved %s\n", m)
			}
			fmt.Fprintf(e.stdout, "offline keys of %s are in %s (%d files moved): keep it off the server\n", dir, offline, len(moved))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.Flags().StringVar(&offline, "offline-keys", "", "directory to move the offline keys to (required)")
	cmd.MarkFlagRequired("repo")
	cmd.MarkFlagRequired("offline-keys")
	return cmd
}
