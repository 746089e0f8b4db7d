package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
)

func (e *env) initCmd() *cobra.Command {
	var (
		nkeys, threshold int
		exp              [4]dayDuration
		kf               keyFlags
		rootPubs         []string
	)
	cmd := &cobra.Command{
		Use:   "init DIR [--offline-keys KEYDIR] [--root-key PUBFILE]...",
		Short: "Create a new signed repository in DIR",
		Long: `Create a new repository in DIR (which must not exist or be empty): a root role with
--root-keys keys of which --root-threshold must sign, and one key each for the targets, snapshot and
timestamp roles. With --offline-keys KEYDIR, the offline keys (root, targets, and the application
keys created later) are written to KEYDIR and only the online keys (snapshot, timestamp, rollout) to DIR/keys:
keep KEYDIR off the server. With --root-key PUBFILE (repeatable; each a .pub made by its holder with
ferry key generate), root is built from those keys instead: init cannot sign it, and writes the
unsigned root to DIR/proposals/1.root.json for --root-threshold holders to sign. Every private key
init makes is encrypted with the passphrase (terminal prompt, FERRY_PASSPHRASE, or
--passphrase-file); the offline keys with their own when one is given (FERRY_OFFLINE_PASSPHRASE or
--offline-passphrase-file), so that the passphrase a server holds opens none of them. With --online-key snapshot=REF and/or --online-key timestamp=REF (an
awskms:// or pkcs11: URI, see docs/signers.md) that online key stays in the KMS or HSM and no key
file is made for it; the commands that sign that role (serve, release publish, repo refresh) then
take the same --online-key. DIR/root.json is the trust anchor to ship to clients; DIR/public is what is
served.`,
		Example: `  ferry init ./repo --offline-keys ./offline-keys
  ferry init ./repo --offline-keys ./offline-keys --root-keys 3 --root-threshold 2 --timestamp-expiry 36h
  ferry init ./repo --offline-keys ./offline-keys --root-key alice.pub --root-key bob.pub --root-key carol.pub --root-threshold 2
  FERRY_PASSPHRASE=... FERRY_OFFLINE_PASSPHRASE=... ferry init ./repo --offline-keys ./offline-keys --targets-expiry 30d
  ferry init ./repo --offline-keys ./offline-keys --online-key 'timestamp=awskms://alias/ferry-timestamp?region=eu-west-1' \
      --online-key 'snapshot=awskms://alias/ferry-snapshot?region=eu-west-1'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := repo.InitOptions{
				RootKeys:      nkeys,
				RootThreshold: threshold,
				Expiries: repo.Expiries{
					Root: time.Duration(exp[0]), Targets: time.Duration(exp[1]),
					Snapshot: time.Duration(exp[2]), Timestamp: time.Duration(exp[3]),
				},
				OfflineKeys: kf.offline,
			}
			if cmd.Flags().Changed("root-keys") && len(rootPubs) > 0 {
				return errors.New("use either --root-keys (init generates them) or --root-key PUBFILE (their holders did), not both")
			}
			if len(rootPubs) > 0 {
				var err error
				if opts.RootPublic, err = keys.ReadPublicFiles(rootPubs); err != nil {
					return err
				}
				opts.RootKeys = 0 // as many as given
			}
			online, err := openOnlineKeys(cmd.Context(), kf.online, e.passphraseFunc(kf.pass))
			if err != nil {
				return err
			}
			opts.OnlineSigners = online
			return e.runInit(cmd.Context(), args[0], opts, kf)
		},
	}
	f := cmd.Flags()
	f.IntVar(&nkeys, "root-keys", 1, "number of root keys to generate")
	f.StringArrayVar(&rootPubs, "root-key", nil, "a root key made by its holder (.pub file, repeatable): root is then signed by its holders")
	f.IntVar(&threshold, "root-threshold", 0, "number of root keys that must sign (default: a majority)")
	f.Var(&exp[0], "root-expiry", "root signature lifetime (e.g. 365d; default 1 year)")
	f.Var(&exp[1], "targets-expiry", "targets signature lifetime (default 90d)")
	f.Var(&exp[2], "snapshot-expiry", "snapshot signature lifetime (default 7d)")
	f.Var(&exp[3], "timestamp-expiry", "timestamp signature lifetime (default 1d)")
	kf.addOffline(f)
	kf.addOnline(f)
	return cmd
}

func (e *env) runInit(ctx context.Context, dir string, opts repo.InitOptions, kf keyFlags) error {
	p, err := e.newPassphrase(kf.pass)
	if err != nil {
		return err
	}
	opts.Passphrase = p
	if src, ok := e.offlineSource(kf); ok && opts.OfflineKeys != "" {
		if opts.OfflinePassphrase, err = e.newPassphrase(src); err != nil {
			return err
		}
	}
	if opts.InsecureScryptWorkFactor, err = e.insecureWorkFactor(); err != nil {
		return err
	}
	if err := repo.Init(ctx, dir, opts); err != nil {
		return err
	}
	full := opts.WithDefaults()
	if full.SingleKeyRoot() {
		fmt.Fprintln(e.stderr, "ferry: warning: one root key can sign alone (threshold 1); production wants more (e.g. --root-keys 3 --root-threshold 2, keys kept offline by different people)")
	}
	if opts.OfflineKeys == "" {
		fmt.Fprintf(e.stderr, "ferry: warning: every key, offline ones included, is in %s: whoever has this directory can sign any release and a new root; keep offline keys elsewhere (--offline-keys DIR, or ferry repo split-keys)\n", filepath.Join(dir, "keys"))
	}
	if len(opts.RootPublic) > 0 {
		fmt.Fprintf(e.stdout, "created repository %s (root: %d of %d keys, held by their holders); root is not signed yet: %d holders sign %s, then it is published\n",
			dir, full.RootThreshold, full.RootKeys, full.RootThreshold, repo.RootProposalFile(dir))
	} else {
		fmt.Fprintf(e.stdout, "created repository %s (root: %d of %d keys); ship %s to clients\n",
			dir, full.RootThreshold, full.RootKeys, repo.RootFile(dir))
	}
	if opts.OfflineKeys != "" {
		fmt.Fprintf(e.stdout, "offline keys (root, targets, applications) are in %s: keep it off the server; %s holds only the online keys (snapshot, timestamp, rollout)\n",
			opts.OfflineKeys, filepath.Join(dir, "keys"))
	}
	return nil
}

func (e *env) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Publish and list releases",
		Example: `  ferry release publish --repo ./repo --app hello --version 1.4.2 --platform linux/amd64 ./hello
  ferry release publish --repo ./repo --app hello --version 1.5.0 --platform linux/amd64 --channel beta --percent 5 ./hello
  ferry release promote --repo ./repo --app hello --version 1.5.0 --to stable
  ferry release min-version --repo ./repo --offline-keys ./offline-keys --app hello 1.4.0
  ferry release list --repo ./repo`,
	}
	cmd.AddCommand(e.publishCmd(), e.listCmd(), e.promoteCmd(), e.minVersionCmd())
	return cmd
}

func (e *env) publishCmd() *cobra.Command {
	var (
		dir string
		rel repo.Release
		kf  keyFlags
		rf  remoteFlags
		ch  publishRollout
	)
	cmd := &cobra.Command{
		Use:   "publish (--repo DIR [--app-key KEY | --offline-keys KEYDIR] | --server URL --token-file F --app-key KEY) --app APP --version V --platform OS/ARCH FILE...",
		Short: "Sign and publish the files of one release",
		Long: `Add FILE... as targets APP/VERSION/OS-ARCH/FILE, sign them with the application's own key
and re-sign snapshot and timestamp. The application key is --app-key (a key file or a signer URI;
repeat it for an application with a threshold) or is found in --offline-keys KEYDIR. On an
application's first release targets delegates it to the --app-key keys, --app-threshold of which
must then sign every release, or to a key created in KEYDIR; that first release needs the targets
key (--offline-keys). Only the keys a release uses are decrypted. Publishing is atomic, and a
published version is immutable: the same app, version and platform with other bytes is refused.

With --server URL instead of --repo, the release is published remotely, as CI should: the next
version of the application's role is signed on this machine with --app-key only, and uploaded
with the files to the server's admin API (authenticated with the token in --token-file, made by
ferry token create), which checks it against the application's delegation and signs snapshot and
timestamp with its online keys. No online key is needed here, and the server never sees the
application key.

` + publisherStateHelp + `

With --channel C and/or --percent P the release starts as a staged rollout: it is offered only to
installations of channel C (default stable) and to P% of them (default 100), decided by the
rollout role in the same commit as the release, so it is never offered to more. Widen, halt or
pull it with ferry rollout; move it to stable with ferry release promote.`,
		Example: `  ferry release publish --repo ./repo --offline-keys ./offline-keys --app hello --version 1.4.2 --platform linux/amd64 ./hello
  ferry release publish --repo ./repo --app-key ./hello.key --app hello --version 1.4.3 --platform linux/amd64 ./hello
  ferry release publish --repo ./repo --offline-keys ./offline-keys --app-key a.key --app-key b.key --app-threshold 2 \
      --app tool --version 1.0.0 --platform darwin/arm64 --kind tar.gz ./tool.tar.gz
  ferry release publish --server https://updates.example.com/ --token-file ./hello.token \
      --app-key ./hello.key --app hello --version 1.4.2 --platform linux/amd64 ./hello
  ferry release publish --repo ./repo --app-key ./hello.key --app hello --version 1.5.0 --platform linux/amd64 \
      --channel beta --percent 5 ./hello`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.check(dir, kf); err != nil {
				return err
			}
			var err error
			if rel.Rollout, err = ch.entry(); err != nil {
				return err
			}
			if rf.server != "" {
				return e.publishRemote(cmd.Context(), rf, e.keyPassphrase(kf), kf.appKeys, rel, args)
			}
			r, err := e.openRepo(cmd.Context(), dir, kf)
			if err != nil {
				return err
			}
			res, err := r.PublishBatch(cmd.Context(), []repo.Batch{{Release: rel, Files: args}})
			if err != nil {
				return missingKeyHint(err)
			}
			if len(res.Published) == 0 {
				e.alreadyPublished(rel)
				return nil
			}
			for _, en := range res.Published {
				fmt.Fprintf(e.stdout, "published %s (%d bytes, sha256 %s)\n", en.Path, en.Length, short(en.SHA256))
			}
			e.printStaged(cmd.Context(), checkedRepo{r}, rel)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (or --server)")
	f.StringVar(&ch.channel, "channel", "", "publish into this channel (a staged rollout; default stable)")
	f.StringVar(&ch.percent, "percent", "", "offer the release to this share of its channel's installations, 0-100 (default 100)")
	f.StringVar(&rel.App, "app", "", "application name (required)")
	f.StringVar(&rel.Version, "version", "", "semantic version MAJOR.MINOR.PATCH[-PRERELEASE], no v, no +build, e.g. 1.4.2 (required)")
	f.StringVar(&rel.Platform, "platform", "", "os/arch, e.g. linux/amd64 (required)")
	f.StringVar(&rel.Kind, "kind", "", strings.Join(release.Kinds(), ", ")+" (default: from the file name)")
	kf.addOffline(f)
	kf.addApp(f, true)
	kf.addOnline(f)
	rf.add(f)
	for _, n := range []string{"app", "version", "platform"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func (e *env) listCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --repo DIR [--json]",
		Short: "List every published target",
		Long:  "List every published target: application, version, platform, kind, length, SHA-256 and path.\n\n" + jsonHelp,
		Example: `  ferry release list --repo ./repo
  ferry release list --repo ./repo --json | jq -r 'select(.app == "hello") | .version'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := repo.Open(dir, nil)
			if err != nil {
				return err
			}
			entries, err := r.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				for _, en := range entries {
					if err := writeJSONLine(e.stdout, releaseJSON{App: en.App, Version: en.Version, Platform: en.Platform,
						Kind: en.Kind, Length: en.Length, SHA256: en.SHA256, Path: en.Path}); err != nil {
						return err
					}
				}
				return nil
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each release as a JSON object on a line (see docs/json.md)")
	cmd.MarkFlagRequired("repo")
	return cmd
}

// short abbreviates a hex digest for display.
func short(hex string) string {
	if len(hex) > 12 {
		return hex[:12] + "…"
	}
	return hex
}
