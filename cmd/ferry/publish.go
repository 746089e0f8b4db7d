package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
)

func (e *env) initCmd() *cobra.Command {
	var (
		keys, threshold int
		exp             [4]dayDuration
		pass            passphraseSource
	)
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a new signed repository in DIR",
		Long: `Create a new repository in DIR (which must not exist or be empty): a root role with
--root-keys keys of which --root-threshold must sign, and one key each for the targets, snapshot and
timestamp roles. Every private key is encrypted with the passphrase (terminal prompt, FERRY_PASSPHRASE,
or --passphrase-file). DIR/root.json is the trust anchor to ship to clients; DIR/public is what is served.`,
		Example: `  ferry init ./repo
  ferry init ./repo --root-keys 3 --root-threshold 2 --timestamp-expiry 36h
  FERRY_PASSPHRASE=... ferry init ./repo --targets-expiry 30d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := e.passphrase(pass, true)
			if err != nil {
				return err
			}
			opts := repo.InitOptions{
				RootKeys:      keys,
				RootThreshold: threshold,
				Expiries: repo.Expiries{
					Root: time.Duration(exp[0]), Targets: time.Duration(exp[1]),
					Snapshot: time.Duration(exp[2]), Timestamp: time.Duration(exp[3]),
				},
				Passphrase: p,
			}
			if opts.InsecureScryptWorkFactor, err = e.insecureWorkFactor(); err != nil {
				return err
			}
			if err := repo.Init(cmd.Context(), args[0], opts); err != nil {
				return err
			}
			full := opts.WithDefaults()
			if full.SingleKeyRoot() {
				fmt.Fprintln(e.stderr, "ferry: warning: one root key can sign alone (threshold 1); production wants more (e.g. --root-keys 3 --root-threshold 2, keys kept offline by different people)")
			}
			fmt.Fprintf(e.stdout, "created repository %s (root: %d of %d keys); ship %s/root.json to clients\n",
				args[0], full.RootThreshold, full.RootKeys, args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&keys, "root-keys", 1, "number of root keys")
	f.IntVar(&threshold, "root-threshold", 0, "number of root keys that must sign (default: a majority)")
	f.Var(&exp[0], "root-expiry", "root signature lifetime (e.g. 365d; default 1 year)")
	f.Var(&exp[1], "targets-expiry", "targets signature lifetime (default 90d)")
	f.Var(&exp[2], "snapshot-expiry", "snapshot signature lifetime (default 7d)")
	f.Var(&exp[3], "timestamp-expiry", "timestamp signature lifetime (default 1d)")
	f.StringVar(&pass.file, "passphrase-file", "", "read the key passphrase from this file")
	return cmd
}

func (e *env) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Publish and list releases",
		Example: `  ferry release publish --repo ./repo --app hello --version 1.4.2 --platform linux/amd64 ./hello
  ferry release list --repo ./repo`,
	}
	cmd.AddCommand(e.publishCmd(), e.listCmd())
	return cmd
}

func (e *env) publishCmd() *cobra.Command {
	var (
		dir  string
		rel  repo.Release
		pass passphraseSource
		rf   remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "publish (--repo DIR | --server URL --token-file F --app-key KEY) --app APP --version V --platform OS/ARCH FILE...",
		Short: "Sign and publish the files of one release",
		Long: `Add FILE... as targets APP/VERSION/OS-ARCH/FILE, sign them with the application's own key
(created on its first release) and re-sign snapshot and timestamp. Publishing is atomic, and a
published version is immutable: the same app, version and platform with other bytes is refused.

With --server URL instead of --repo, the release is published remotely, as CI should: the next
version of the application's role is signed on this machine with --app-key only, and uploaded
with the files to the server's admin API (authenticated with the token in --token-file, made by
ferry token create), which checks it against the application's delegation and signs snapshot and
timestamp with its online keys. No online key is needed here, and the server never sees the
application key.`,
		Example: `  ferry release publish --repo ./repo --app hello --version 1.4.2 --platform linux/amd64 ./hello
  ferry release publish --repo ./repo --app hello --version 1.4.2 --platform darwin/arm64 --kind tar.gz ./hello.tar.gz
  ferry release publish --server https://updates.example.com/ --token-file ./hello.token \
      --app-key ./hello.age --app hello --version 1.4.2 --platform linux/amd64 ./hello`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.check(dir); err != nil {
				return err
			}
			if rf.server != "" {
				return e.publishRemote(cmd.Context(), rf, pass, rel, args)
			}
			r, err := e.openRepo(dir, pass)
			if err != nil {
				return err
			}
			res, err := r.PublishBatch(cmd.Context(), []repo.Batch{{Release: rel, Files: args}})
			if err != nil {
				return err
			}
			if len(res.Published) == 0 {
				fmt.Fprintf(e.stdout, "%s %s for %s is already published with these files: nothing to do\n", rel.App, rel.Version, rel.Platform)
				return nil
			}
			for _, en := range res.Published {
				fmt.Fprintf(e.stdout, "published %s (%d bytes, sha256 %s)\n", en.Path, en.Length, short(en.SHA256))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (or --server)")
	f.StringVar(&rel.App, "app", "", "application name (required)")
	f.StringVar(&rel.Version, "version", "", "semantic version MAJOR.MINOR.PATCH[-PRERELEASE], no v, no +build, e.g. 1.4.2 (required)")
	f.StringVar(&rel.Platform, "platform", "", "os/arch, e.g. linux/amd64 (required)")
	f.StringVar(&rel.Kind, "kind", "", strings.Join(release.Kinds(), ", ")+" (default: from the file name)")
	f.StringVar(&pass.file, "passphrase-file", "", "read the key passphrase from this file")
	rf.add(f)
	for _, n := range []string{"app", "version", "platform"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func (e *env) listCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "list --repo DIR",
		Short:   "List every published target",
		Example: `  ferry release list --repo ./repo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := repo.Open(dir, nil)
			if err != nil {
				return err
			}
			entries, err := r.List(cmd.Context())
			if err != nil {
				return err
			}
			if len(entries) == 0 {
				fmt.Fprintln(e.stdout, "no releases published")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tVERSION\tPLATFORM\tKIND\tLENGTH\tSHA256\tPATH")
			for _, en := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", en.App, en.Version, en.Platform,
					en.Kind, en.Length, short(en.SHA256), en.Path)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	cmd.MarkFlagRequired("repo")
	return cmd
}

func (e *env) repoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "repo",
		Short:   "Maintain a repository",
		Example: `  ferry repo refresh --repo ./repo`,
	}
	var (
		dir   string
		force bool
		pass  passphraseSource
	)
	refresh := &cobra.Command{
		Use:   "refresh --repo DIR [--force]",
		Short: "Re-sign metadata before it expires",
		Long: `Re-sign snapshot and timestamp if they expire within half their lifetime, or always
with --force; targets and the applications' roles are re-signed too when they are within half
their lifetime (their keys must then be in the repository). Root is never re-signed.
ferry serve can do this on a schedule (--refresh-interval).`,
		Example: `  ferry repo refresh --repo ./repo
  ferry repo refresh --repo ./repo --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.openRepo(dir, pass)
			if err != nil {
				return err
			}
			if err := r.Refresh(cmd.Context(), force); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "refreshed %s\n", dir)
			return nil
		},
	}
	f := refresh.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (required)")
	f.BoolVar(&force, "force", false, "re-sign even if nothing expires soon")
	f.StringVar(&pass.file, "passphrase-file", "", "read the key passphrase from this file")
	refresh.MarkFlagRequired("repo")
	cmd.AddCommand(refresh)
	return cmd
}

// short abbreviates a hex digest for display.
func short(hex string) string {
	if len(hex) > 12 {
		return hex[:12] + "…"
	}
	return hex
}
