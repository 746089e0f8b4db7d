package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// The release commands that change who is offered a release without
// uploading anything: promote (its channel, signed by the rollout role)
// and min-version (the minimum safe version, signed by the application's
// own key).

func (e *env) promoteCmd() *cobra.Command {
	var fl rolloutFlags
	cmd := &cobra.Command{
		Use:   "promote (--repo DIR | --server URL --token-file F) --app APP --version V --to CHANNEL [--percent P]",
		Short: "Move a release to another channel, without uploading anything again",
		Long: `Move a published release into channel --to (for example from beta to stable), keeping its
files, its signatures and its salt: installations that follow --to (and, for stable, every
installation) are offered it from their next check, at its current share or at --percent.
Channel membership is a decision of the rollout role, signed like the others (locally with
--repo DIR and its online rollout key, or by the server with --server URL --token-file F), so
a mirror cannot move a release into a channel. A channel is 1-32 of a-z, 0-9 and -, starting
with a letter; stable is the default channel of every installation.`,
		Example: `  ferry release promote --repo ./repo --app hello --version 1.4.2 --to stable
  ferry release promote --repo ./repo --app hello --version 1.4.2 --to stable --percent 10
  ferry release promote --server https://updates.example.com/ --token-file ./hello.token --app hello --version 1.4.2 --to stable`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := release.ValidChannel(fl.channel); err != nil {
				return withHint(fmt.Errorf("--to %q: %w", fl.channel, err), "a channel is 1-32 of a-z, 0-9 and -, starting with a letter, e.g. stable or beta")
			}
			a := rollout.Action{Kind: rollout.Promote, Version: fl.version, Channel: fl.channel, BasisPoints: -1}
			if fl.percent != "" {
				bp, err := parsePercent(fl.percent)
				if err != nil {
					return err
				}
				a.BasisPoints = bp
			}
			return e.promote(cmd.Context(), &fl, a)
		},
	}
	f := cmd.Flags()
	fl.add(f, true)
	f.StringVar(&fl.channel, "to", "", "the channel to move the release to (required)")
	f.StringVar(&fl.percent, "percent", "", "also set the share offered in the new channel, 0-100 (default: unchanged)")
	for _, n := range []string{"app", "version", "to"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

// promote moves the release to a.Channel and, when a.BasisPoints is not
// -1, sets its share: two decisions, ordered so that the release is never
// offered to more than the larger of its old share in its old channel and
// its new share in the new one (narrowed first, or widened last).
func (e *env) promote(ctx context.Context, fl *rolloutFlags, a rollout.Action) error {
	d, err := e.decider(ctx, fl)
	if err != nil {
		return err
	}
	share := a.BasisPoints
	a.BasisPoints = 0
	steps := []rollout.Action{a}
	if share >= 0 {
		cur, err := currentShare(ctx, d, fl.app, a.Version)
		if err != nil {
			return err
		}
		start := rollout.Action{Kind: rollout.Start, Version: a.Version, BasisPoints: share}
		switch {
		case share < cur:
			steps = []rollout.Action{start, a}
		case share > cur:
			steps = append(steps, start)
		}
	}
	var entry rollout.Entry
	for _, step := range steps {
		if entry, err = d.Rollout(ctx, fl.app, step); err != nil {
			return rolloutHint(err, fl)
		}
	}
	if fl.asJSON {
		return writeJSONLine(e.stdout, decisionJSON{App: fl.app, Version: a.Version, Entry: entry})
	}
	fmt.Fprintf(e.stdout, "%s %s: %s (%s)\n", fl.app, a.Version, describeEntry(entry), fl.where())
	return nil
}

// currentShare is the share a release is offered at now (rollout.Full for
// one no decision names).
func currentShare(ctx context.Context, d decider, app, version string) (int, error) {
	st, err := d.Rollouts(ctx, app)
	if err != nil {
		return 0, err
	}
	for _, r := range st.Releases {
		if r.Version == version {
			return r.BasisPoints, nil
		}
	}
	return rollout.Full, nil
}

func (e *env) minVersionCmd() *cobra.Command {
	var (
		dir, app string
		lower    bool
		kf       keyFlags
		rf       remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "min-version (--repo DIR [--app-key KEY | --offline-keys KEYDIR] | --server URL --token-file F --app-key KEY) --app APP [--lower-min] VERSION",
		Short: "Set an application's minimum safe version (signed by its application key)",
		Long: `Sign VERSION as APP's minimum safe version. Installations below it are moved to the newest release
at or above it at their next check, whatever a rollout says, and no rollout decision can offer a
release below it or pull an installation back below it: a stolen rollout key cannot push the
fleet onto a version with a known hole. It is signed by the application's own key (offline, as
for a release), never by the rollout key: locally with --app-key KEY or --offline-keys KEYDIR,
or, with --server URL, signed on this machine with --app-key and uploaded with the token in
--token-file like a release. VERSION must be a release APP's role signs; raising it again later
replaces it.

A VERSION below the current minimum is refused unless --lower-min says it is meant: the policy then
also signs the minimum it lowers, and the server takes a lower minimum only with that. Installations
that verified the higher minimum keep it (docs/rollouts.md); only those that never saw it go lower.

` + publisherStateHelp,
		Example: `  ferry release min-version --repo ./repo --offline-keys ./offline-keys --app hello 1.4.0
  ferry release min-version --repo ./repo --app-key ./hello.key --app hello 1.4.0
  ferry release min-version --repo ./repo --app-key ./hello.key --app hello --lower-min 1.3.0
  ferry release min-version --server https://updates.example.com/ --token-file ./hello.token --app-key ./hello.key --app hello 1.4.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := args[0]
			if err := release.ValidVersion(v); err != nil {
				return fmt.Errorf("minimum version %q: %w", v, err)
			}
			if err := rf.check(dir, kf); err != nil {
				return err
			}
			if rf.server != "" {
				return e.minVersionRemote(cmd.Context(), rf, e.keyPassphrase(kf), kf.appKeys, app, v, lower)
			}
			r, err := e.openRepo(cmd.Context(), dir, kf)
			if err != nil {
				return err
			}
			signed, err := r.SetMinVersionWith(cmd.Context(), app, v, repo.MinVersionOptions{Lower: lower})
			if err != nil {
				return missingKeyHint(err)
			}
			if !signed {
				fmt.Fprintf(e.stdout, "%s: nothing to change: the minimum safe version is %s already; nothing signed\n", app, v)
				return nil
			}
			fmt.Fprintf(e.stdout, "%s: minimum safe version %s (signed by %s's key in %s)\n", app, v, app, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (or --server)")
	f.StringVar(&app, "app", "", "application name (required)")
	f.BoolVar(&lower, "lower-min", false, "VERSION is below the current minimum on purpose: sign it, and sign that it lowers the current one")
	kf.addOffline(f)
	kf.addApp(f, false)
	kf.addOnline(f)
	rf.add(f)
	cmd.MarkFlagRequired("app")
	return cmd
}

// minVersionRemote signs the next version of the application's role with
// the policy changed, on this machine, and uploads it.
func (e *env) minVersionRemote(ctx context.Context, rf remoteFlags, passFn keys.Passphrase, appKeys []string, app, v string, lower bool) error {
	c, err := e.adminClient(rf)
	if err != nil {
		return err
	}
	signers, err := openSigners(ctx, passFn, appKeys)
	if err != nil {
		return err
	}
	file, last, cur, err := e.roleAndRecord(ctx, c, rf, app)
	if err != nil {
		return err
	}
	s, err := repo.SignPolicy(ctx, signers, app, cur, v, repo.SignOptions{Last: last, LowerMin: lower})
	if err != nil {
		return recordError(err, file)
	}
	if s == nil {
		fmt.Fprintf(e.stdout, "%s: nothing to change: the minimum safe version is %s already; nothing signed\n", app, v)
		return e.saveRecord(file, app, cur)
	}
	if _, err := c.Publish(ctx, app, s); err != nil {
		return err
	}
	if err := e.saveRecord(file, app, s.Role); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: minimum safe version %s (signed by %s's key here, published by %s)\n", app, v, app, rf.server)
	return nil
}

// publishRollout are the --channel and --percent flags of release publish.
type publishRollout struct {
	channel, percent string
}

// entry is the rollout decision the flags ask for, nil when neither is given.
func (p publishRollout) entry() (*rollout.Entry, error) {
	if p.channel == "" && p.percent == "" {
		return nil, nil
	}
	e := &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active}
	if p.channel != "" {
		if err := release.ValidChannel(p.channel); err != nil {
			return nil, withHint(fmt.Errorf("--channel %q: %w", p.channel, err), "a channel is 1-32 of a-z, 0-9 and -, starting with a letter, e.g. beta")
		}
		e.Channel = p.channel
	}
	if p.percent != "" {
		bp, err := parsePercent(p.percent)
		if err != nil {
			return nil, err
		}
		e.BasisPoints = bp
	}
	return e, nil
}

// printStaged says where a release published with --channel or --percent
// stands: the decision the repository now holds for its version (d reads
// it; nil: as asked). A version published before, for another platform,
// kept the decision it had, which may not be the one asked for.
func (e *env) printStaged(ctx context.Context, d decider, rel repo.Release) {
	if rel.Rollout == nil {
		return
	}
	got := *rel.Rollout
	if d != nil {
		if en, err := currentEntry(ctx, d, rel.App, rel.Version); err == nil {
			got = en
		}
	}
	fmt.Fprintf(e.stdout, "%s %s: %s\n", rel.App, rel.Version, describeEntry(got))
	if got.Channel != rel.Rollout.Channel || got.BasisPoints != rel.Rollout.BasisPoints || got.State != rel.Rollout.State {
		fmt.Fprintf(e.stderr, "ferry: note: %s %s was published before: it keeps the decision it has (a release's decision goes with its first publish); change it with ferry rollout start\n", rel.App, rel.Version)
	}
}

// currentEntry is the decision d holds for app's version (the default one
// when none names it).
func currentEntry(ctx context.Context, d decider, app, version string) (rollout.Entry, error) {
	st, err := d.Rollouts(ctx, app)
	if err != nil {
		return rollout.Entry{}, err
	}
	for _, r := range st.Releases {
		if r.Version == version {
			return r.Entry, nil
		}
	}
	return rollout.Entry{}, fmt.Errorf("%s %s is not signed", app, version)
}

// alreadyPublished is the line for a release that is published with these
// files already; its rollout is not changed by publishing it again.
func (e *env) alreadyPublished(rel repo.Release) {
	fmt.Fprintf(e.stdout, "%s %s for %s is already published with these files: nothing to do\n", rel.App, rel.Version, rel.Platform)
	if rel.Rollout != nil {
		fmt.Fprintf(e.stderr, "ferry: note: its channel and share are unchanged; change them with ferry rollout start or ferry release promote\n")
	}
}
