package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
)

const rootExamplesCeremony = `  # Anyone with the repository: propose adding a key and a threshold of 2
  ferry root propose --repo ./repo --add-key ./carol.pub --threshold 2 --out ./root-change.json

  # Each holder, on their own machine, with only their own key
  ferry root sign --key ./alice/root.key ./root-change.json

  # Anyone, once enough holders signed: check and publish
  ferry root publish --repo ./repo ./root-change.json`

func (e *env) rootCeremonyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root",
		Short: "Change the root role through an offline k-of-n ceremony",
		Long: `A change to root (keys added or removed, a new threshold, a rotated timestamp, snapshot or
targets key, or only a later expiry) is a proposal file that root key holders sign one by one,
each with only their own key. publish refuses it until it carries the current root's threshold
and the new root's, counting each key once. See docs/keys.md.`,
		Example: rootExamplesCeremony,
	}
	var (
		dir, out  string
		add, rm   []string
		rotate    []string
		threshold int
		kf        keyFlags
	)
	propose := &cobra.Command{
		Use:   "propose --repo DIR [--add-key PUB] [--remove-key ID] [--threshold K] [--rotate ROLE] --out FILE",
		Short: "Write a proposal for the next root version",
		Long: `Write FILE, a proposal for the next root: the current root with the changes given, and a
fresh expiry (with no change, only the expiry moves). --rotate timestamp|snapshot|targets makes a
new key for that role, kept as a pending key in the repository (it needs the passphrase) until
the proposal is published. Nothing else in the repository changes.`,
		Example: `  ferry root propose --repo ./repo --add-key ./carol.pub --threshold 2 --out ./root-change.json
  ferry root propose --repo ./repo --remove-key 5f1c... --out ./root-change.json
  ferry root propose --repo ./repo --rotate timestamp --out ./root-change.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ch := repo.RootChange{RemoveKeys: rm, Threshold: threshold, Rotate: rotate}
			var err error
			if ch.AddKeys, err = keys.ReadPublicFiles(add); err != nil {
				return err
			}
			r, err := e.openForProposal(cmd.Context(), dir, kf)
			if err != nil {
				return err
			}
			p, err := r.ProposeRoot(cmd.Context(), ch)
			if err != nil {
				return err
			}
			return e.writeProposal(out, p, "root")
		},
	}
	f := propose.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (required)")
	f.StringArrayVar(&add, "add-key", nil, "public key file of a new root key (repeatable)")
	f.StringArrayVar(&rm, "remove-key", nil, "key ID of a root key to remove (repeatable)")
	f.IntVar(&threshold, "threshold", 0, "new root threshold (default: unchanged)")
	f.StringArrayVar(&rotate, "rotate", nil, "replace the key of timestamp, snapshot or targets (repeatable)")
	f.StringVar(&out, "out", "", "proposal file to write (required)")
	kf.addOffline(f)
	propose.MarkFlagRequired("repo")
	propose.MarkFlagRequired("out")
	cmd.AddCommand(propose, e.signCmd(metadata.ROOT), e.publishProposalCmd(metadata.ROOT))
	return cmd
}

func (e *env) targetsCeremonyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "targets",
		Short: "Change an application's delegation through an offline ceremony",
		Long: `A change to targets (an application's keys or threshold, or a new key that revokes a
compromised one) is a proposal file that the targets key holders sign; publish re-signs the
application's role with its new key where the change requires it. See docs/keys.md.`,
		Example: `  ferry targets propose --repo ./repo --offline-keys ./offline-keys --app hello --rotate --out ./targets-change.json
  ferry targets sign --key ./offline-keys/targets.age ./targets-change.json
  ferry targets publish --repo ./repo --offline-keys ./offline-keys ./targets-change.json`,
	}
	var (
		dir, out  string
		ch        repo.TargetsChange
		add       []string
		threshold int
		kf        keyFlags
	)
	propose := &cobra.Command{
		Use:   "propose --repo DIR --app APP [--add-key PUB] [--remove-key ID] [--threshold K] [--rotate] --out FILE",
		Short: "Write a proposal for the next targets version",
		Long: `Write FILE, a proposal for the next targets: the current one with APP's delegation changed
and a fresh expiry. --rotate replaces every key of APP by a new one (kept as a pending key until the
proposal is published): this is how a compromised application key is revoked. For an application
that has no delegation yet, --add-key (repeatable) and --threshold delegate it to keys its release
pipeline made (ferry key generate); its first release is then signed with them (--app-key).`,
		Example: `  ferry targets propose --repo ./repo --offline-keys ./offline-keys --app hello --rotate --out ./targets-change.json
  ferry targets propose --repo ./repo --app hello --add-key ./ci.pub --threshold 2 --out ./targets-change.json
  ferry targets propose --repo ./repo --app tool --add-key ./tool-ci.key.pub --out ./new-app.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ch.Threshold = threshold
			var err error
			if ch.AddKeys, err = keys.ReadPublicFiles(add); err != nil {
				return err
			}
			r, err := e.openForProposal(cmd.Context(), dir, kf)
			if err != nil {
				return err
			}
			p, err := r.ProposeTargets(cmd.Context(), ch)
			if err != nil {
				return newKeyHint(err, kf)
			}
			return e.writeProposal(out, p, "targets")
		},
	}
	f := propose.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (required)")
	f.StringVar(&ch.App, "app", "", "application whose delegation changes (required)")
	f.StringArrayVar(&add, "add-key", nil, "public key file of a new key for APP (repeatable)")
	f.StringArrayVar(&ch.RemoveKeys, "remove-key", nil, "key ID to remove from APP (repeatable)")
	f.IntVar(&threshold, "threshold", 0, "APP's new threshold (default: unchanged)")
	f.BoolVar(&ch.Rotate, "rotate", false, "replace APP's keys by a new key (revokes the old ones)")
	f.StringVar(&out, "out", "", "proposal file to write (required)")
	kf.addOffline(f)
	for _, n := range []string{"repo", "app", "out"} {
		propose.MarkFlagRequired(n)
	}
	cmd.AddCommand(propose, e.signCmd(metadata.TARGETS), e.publishProposalCmd(metadata.TARGETS))
	return cmd
}

// openForProposal opens a repository for propose and publish: keys
// (and their passphrase) are opened only when a rotation makes a new key
// or a publish re-signs a role.
func (e *env) openForProposal(ctx context.Context, dir string, kf keyFlags) (*repo.Repo, error) {
	return e.openRepo(ctx, dir, kf)
}

func (e *env) writeProposal(out string, p *repo.Proposal, verb string) error {
	if _, err := os.Stat(out); err == nil {
		return withHint(fmt.Errorf("%s already exists", out), "remove it or choose another --out; a proposal is never overwritten by propose")
	}
	if err := repo.WriteProposal(out, p); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s:\n", out)
	for _, l := range p.Summary() {
		fmt.Fprintln(e.stdout, l)
	}
	e.printStatus(p)
	fmt.Fprintf(e.stdout, "next: each holder runs 'ferry %s sign --key KEY %s', then 'ferry %s publish --repo DIR %s'\n", verb, out, verb, out)
	return nil
}

func (e *env) printStatus(p *repo.Proposal) {
	for _, t := range p.Status() {
		line := fmt.Sprintf("needs %d of %s: %d signed", t.Threshold, t.Name, len(t.Signed))
		if len(t.Missing) > 0 && !t.Met() {
			line += "; not yet signed by " + strings.Join(shortIDs(t.Missing), ", ")
		}
		fmt.Fprintln(e.stdout, line)
	}
}

func (e *env) signCmd(role string) *cobra.Command {
	var (
		keyRef string
		pass   passphraseSource
	)
	cmd := &cobra.Command{
		Use:   "sign --key KEY FILE",
		Short: "Add your signature to a " + role + " proposal, in place",
		Long: `Show what FILE would publish, then add one signature with KEY (an encrypted key file, or a
signer URI) and rewrite FILE atomically. Needs nothing but FILE and the key: no repository, no
network. Signing again with the same key replaces its signature.`,
		Example: fmt.Sprintf("  ferry %s sign --key %s ./%s-change.json\n  ferry %s sign --key 'pkcs11:token=ferry;object=%s?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/ferry/pin' ./%s-change.json",
			role, map[string]string{"root": "./alice/root.key", "targets": "./offline-keys/targets.age"}[role], role, role, role, role),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repo.ReadProposal(args[0])
			if err != nil {
				return err
			}
			if p.Role != role {
				return withHint(fmt.Errorf("%s is a %s proposal", args[0], p.Role), "sign it with 'ferry "+p.Role+" sign'")
			}
			s, err := keys.Open(cmd.Context(), keyRef, e.passphraseFunc(pass))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "signing %s:\n", args[0])
			for _, l := range p.Summary() {
				fmt.Fprintln(e.stdout, l)
			}
			if err := p.Sign(cmd.Context(), s); err != nil {
				return err
			}
			if err := repo.WriteProposal(args[0], p); err != nil {
				return err
			}
			id, _ := s.Key().ID()
			fmt.Fprintf(e.stdout, "signed with key %s\n", id)
			e.printStatus(p)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyRef, "key", "", "your key: an encrypted key file or a signer URI (required)")
	cmd.Flags().StringVar(&pass.file, "passphrase-file", "", "read the key's passphrase from this file")
	cmd.MarkFlagRequired("key")
	return cmd
}

func (e *env) publishProposalCmd(role string) *cobra.Command {
	var (
		dir  string
		kf   keyFlags
		drop []string
	)
	cmd := &cobra.Command{
		Use:   "publish --repo DIR FILE",
		Short: "Check a signed " + role + " proposal and publish it",
		Long: `Count FILE's signatures against the repository's current keys, as clients will (each key
once, however often or under however many IDs it signed; a new root needs the current root's
threshold and its own), and publish the new ` + role + `, then re-sign snapshot and timestamp with
the online keys. Below a threshold nothing changes and the missing key IDs are named.`,
		Example: fmt.Sprintf("  ferry %s publish --repo ./repo ./%s-change.json", role, role),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := repo.ReadProposal(args[0])
			if err != nil {
				return err
			}
			if p.Role != role {
				return withHint(fmt.Errorf("%s is a %s proposal", args[0], p.Role), "publish it with 'ferry "+p.Role+" publish'")
			}
			r, err := e.openForProposal(cmd.Context(), dir, kf)
			if err != nil {
				return err
			}
			opts := repo.PublishOptions{Drop: drop, Resigned: func(app, path string, dropped bool) {
				if dropped {
					fmt.Fprintf(e.stdout, "dropped from %s: %s\n", app, path)
				} else {
					fmt.Fprintf(e.stdout, "re-signed under %s's new key: %s\n", app, path)
				}
			}}
			err = r.PublishProposalWith(cmd.Context(), p, opts)
			var te *repo.ThresholdError
			if errors.As(err, &te) {
				return withHint(err, "each missing holder runs 'ferry "+role+" sign --key KEY "+args[0]+"'")
			}
			if errors.Is(err, repo.ErrStale) {
				return withHint(err, "make a new proposal with 'ferry "+role+" propose' and sign that one")
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "published %s version %d\n", role, p.Base.Version+1)
			if role == metadata.ROOT {
				fmt.Fprintf(e.stdout, "clients move to it on their next refresh; %s/root.json is the new trust anchor for new installs\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "repo", "", "repository directory (required)")
	if role == metadata.TARGETS {
		cmd.Flags().StringArrayVar(&drop, "drop", nil, "APP@VERSION: leave this release out when APP's role is re-signed under its new key (a revoked key's releases; repeatable)")
	}
	kf.addOffline(cmd.Flags())
	cmd.MarkFlagRequired("repo")
	return cmd
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		if len(id) > 16 {
			out[i] = id[:16]
		}
	}
	return out
}

func (e *env) keyRotateCmd() *cobra.Command {
	var (
		dir, role, out string
		add, rm        []string
		kf             keyFlags
	)
	cmd := &cobra.Command{
		Use:   "rotate --repo DIR --role ROLE --out FILE",
		Short: "Replace a role's key: writes the proposal that does it",
		Long: `Replace the key of ROLE. Every rotation is a ceremony, because every key is listed by an
offline role: timestamp, snapshot and targets keys are listed in root (this writes a root
proposal with a new key for ROLE), an application's key in targets (this writes a targets
proposal that re-delegates the application to a new key, which revokes the old one). For root
itself, name the holder's new public key and the old key ID (--add-key, --remove-key). Sign FILE
and publish it as 'ferry root|targets sign' and 'publish' say.`,
		Example: `  ferry key rotate --repo ./repo --role timestamp --out ./rotate.json
  ferry key rotate --repo ./repo --offline-keys ./offline-keys --role hello --out ./revoke-hello.json
  ferry key rotate --repo ./repo --role root --add-key ./dave.pub --remove-key 5f1c... --out ./rotate-root.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var p *repo.Proposal
			verb := metadata.ROOT
			switch role {
			case metadata.ROOT:
				if len(add) == 0 || len(rm) == 0 {
					return withHint(errors.New("rotating a root key needs the new key and the old one"),
						"the new holder makes a key, then: ferry key rotate --role root --add-key NEW.pub --remove-key OLDID")
				}
				ch := repo.RootChange{RemoveKeys: rm}
				var err error
				if ch.AddKeys, err = keys.ReadPublicFiles(add); err != nil {
					return err
				}
				r, err := repo.Open(dir, nil)
				if err != nil {
					return err
				}
				if p, err = r.ProposeRoot(cmd.Context(), ch); err != nil {
					return err
				}
			case metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS:
				r, err := e.openForProposal(cmd.Context(), dir, kf)
				if err != nil {
					return err
				}
				if p, err = r.ProposeRoot(cmd.Context(), repo.RootChange{Rotate: []string{role}}); err != nil {
					return newKeyHint(err, kf)
				}
			default:
				verb = metadata.TARGETS
				r, err := e.openForProposal(cmd.Context(), dir, kf)
				if err != nil {
					return err
				}
				if p, err = r.ProposeTargets(cmd.Context(), repo.TargetsChange{App: role, Rotate: true}); err != nil {
					return newKeyHint(err, kf)
				}
			}
			return e.writeProposal(out, p, verb)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (required)")
	f.StringVar(&role, "role", "", "root, targets, snapshot, timestamp or an application name (required)")
	f.StringVar(&out, "out", "", "proposal file to write (required)")
	f.StringArrayVar(&add, "add-key", nil, "root only: the new holder's public key file")
	f.StringArrayVar(&rm, "remove-key", nil, "root only: the key ID being replaced")
	kf.addOffline(f)
	for _, n := range []string{"repo", "role", "out"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}
