package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/keys"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/server"
)

const rolloutExamples = `  # Offer hello 1.4.2 to 5% of the installations, then to half of them, then to everyone
  ferry rollout start --repo ./repo --app hello --version 1.4.2 --percent 5
  ferry rollout start --repo ./repo --app hello --version 1.4.2 --percent 50
  ferry rollout start --repo ./repo --app hello --version 1.4.2 --percent 100

  # Something is wrong: offer it to no new installation; later, go on
  ferry rollout halt --repo ./repo --app hello --version 1.4.2
  ferry rollout resume --repo ./repo --app hello --version 1.4.2

  # It is bad: installations that run it move to the newest good release
  ferry rollout pull --repo ./repo --app hello --version 1.4.2

  # Where each release stands, and the minimum safe version
  ferry rollout status --repo ./repo --app hello
  ferry rollout status --server https://updates.example.com/ --token-file ./hello.token --app hello --json

  # Let the server stage it, halting it on failed or silent installations (docs/rollouts.md)
  ferry rollout start --server https://updates.example.com/ --token-file ./hello-rollout.token --app hello --version 1.4.2 --stages 1,10,50,100 --stage-wait 30m`

func (e *env) rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Stage a release to a share of the installations, halt it, resume it or pull it",
		Long: `A rollout decision says, for one release, which channel it is in, what share of the
installations is offered it (each installation's cohort is a hash of its install ID and a salt
of the release, so widening the share keeps everyone who was in), and whether it is active,
halted (offered to no new installation) or pulled (offered to nobody; installations that run it
move to the newest good release, an older one if need be). Decisions are signed by the
repository's rollout role with its own online key: locally with --repo DIR (the key in
DIR/keys, opened with the passphrase like the other online keys), or by a ferry server with
--server URL --token-file F (the server signs with its rollout key; F holds a rollout token, made
by ferry token create --rollout, since a publisher token only reads the status). The rollout key can only
choose among releases the application key signed, and never below the minimum safe version
(ferry release min-version). See docs/rollouts.md.`,
		Example: rolloutExamples,
	}
	cmd.AddCommand(
		e.rolloutActionCmd("start", "Offer a release to a share of the installations (--percent), or widen it",
			"  ferry rollout start --repo ./repo --app hello --version 1.4.2 --percent 5\n"+
				"  ferry rollout start --repo ./repo --app hello --version 1.4.2 --percent 0.5 --channel beta\n"+
				"  ferry rollout start --server https://updates.example.com/ --token-file ./hello-rollout.token --app hello --version 1.4.2 --percent 50\n"+
				"  # Guarded by the server: 1% -> 10% -> 50% -> 100%, each stage at least 30 minutes and 20 healthy reports,\n"+
				"  # halted if more than 5% of the installations that started it fail or go silent\n"+
				"  ferry rollout start --server https://updates.example.com/ --token-file ./hello-rollout.token --app hello --version 1.4.2 \\\n"+
				"      --stages 1,10,50,100 --stage-wait 30m --min-healthy 20 --budget 5% --check-interval 1h\n"+
				"  # Watched: 10% and no further, halted above a 2% failure budget\n"+
				"  ferry rollout start --server https://updates.example.com/ --token-file ./hello-rollout.token --app hello --version 1.4.2 --percent 10 --budget 2%"),
		e.rolloutActionCmd("halt", "Stop offering a release to new installations (those that have it keep it)",
			"  ferry rollout halt --repo ./repo --app hello --version 1.4.2\n"+
				"  ferry rollout halt --server https://updates.example.com/ --token-file ./hello-rollout.token --app hello --version 1.4.2"),
		e.rolloutActionCmd("resume", "Offer a halted release again, at the share it had",
			"  ferry rollout resume --repo ./repo --app hello --version 1.4.2"),
		e.rolloutActionCmd("pull", "Offer a release to nobody; installations that run it move to the newest good release",
			"  ferry rollout pull --repo ./repo --app hello --version 1.4.2\n"+
				"  ferry rollout pull --server https://updates.example.com/ --token-file ./hello-rollout.token --app hello --version 1.4.2"),
		e.rolloutStatusCmd(),
		e.rolloutEnableCmd(),
	)
	return cmd
}

// rolloutFlags are the flags every rollout command shares: where the
// decision is signed (--repo, or --server with its token) and the release.
type rolloutFlags struct {
	dir     string
	app     string
	version string
	percent string
	channel string
	asJSON  bool
	rf      remoteFlags
	kf      keyFlags
	plan    planFlags
}

func (fl *rolloutFlags) add(f *pflag.FlagSet, release bool) {
	f.StringVar(&fl.dir, "repo", "", "repository directory, signed here with its online rollout key (or --server)")
	f.StringVar(&fl.app, "app", "", "application name (required)")
	if release {
		f.StringVar(&fl.version, "version", "", "the release's version, e.g. 1.4.2 (required)")
	}
	f.StringVar(&fl.rf.server, "server", "", "ask this ferry server's admin API (https://...) to sign the decision, instead of --repo")
	f.StringVar(&fl.rf.ca, "ca", "", "with --server: PEM CA certificate(s) to verify the server with (default: system roots)")
	f.StringVar(&fl.rf.tokenFile, "token-file", "", "with --server: file holding the application's rollout token (ferry token create --rollout; a publisher token only reads status)")
	f.StringVar(&fl.kf.pass.file, "passphrase-file", "", "with --repo: read the online keys' passphrase from this file")
	f.BoolVar(&fl.asJSON, "json", false, "print the result as a JSON object on one line (see docs/json.md)")
}

// addStatus adds the flags of rollout status, which signs nothing: no
// passphrase, and a publisher token reads as well as a rollout token.
func (fl *rolloutFlags) addStatus(f *pflag.FlagSet) {
	f.StringVar(&fl.dir, "repo", "", "repository directory: read what is published there (or --server)")
	f.StringVar(&fl.app, "app", "", "application name (required)")
	f.StringVar(&fl.rf.server, "server", "", "ask this ferry server's admin API (https://...) for the status, with the guard's evidence, instead of --repo")
	f.StringVar(&fl.rf.ca, "ca", "", "with --server: PEM CA certificate(s) to verify the server with (default: system roots)")
	f.StringVar(&fl.rf.tokenFile, "token-file", "", "with --server: file holding the application's publisher or rollout token (ferry token create)")
	f.BoolVar(&fl.asJSON, "json", false, "print the status as a JSON object on one line (see docs/json.md)")
}

// check says what is missing or conflicting in where a decision is signed.
func (fl *rolloutFlags) check() error {
	rf := fl.rf
	switch {
	case rf.server == "" && fl.dir == "":
		return withHint(errors.New("no repository: pass --repo DIR (local) or --server URL (remote)"),
			"--repo DIR signs here with DIR's online rollout key; --server URL --token-file F asks ferry serve to sign (see --help)")
	case rf.server != "" && fl.dir != "":
		return errors.New("use either --repo (local) or --server (remote), not both")
	case rf.server == "" && (rf.tokenFile != "" || rf.ca != ""):
		return errors.New("--token-file and --ca go with --server")
	case rf.server != "" && rf.tokenFile == "":
		return withHint(errors.New("--server needs --token-file"), "create a rollout token on the server with: ferry token create --repo REPO --rollout --app APP")
	case rf.server != "" && fl.kf.pass.file != "":
		return errors.New("--passphrase-file goes with --repo: with --server the server signs with its own key")
	}
	return nil
}

// decider signs rollout decisions: *repo.Repo here, *server.AdminClient on
// a server.
type decider interface {
	Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error)
	Rollouts(ctx context.Context, app string) (server.RolloutStatus, error)
}

// decider opens the repository (--repo) or the admin API (--server).
func (e *env) decider(ctx context.Context, fl *rolloutFlags) (decider, error) {
	if err := fl.check(); err != nil {
		return nil, err
	}
	if fl.rf.server != "" {
		return e.adminClient(fl.rf)
	}
	r, err := e.openRepo(ctx, fl.dir, fl.kf)
	if err != nil {
		return nil, err
	}
	return checkedRepo{r}, nil
}

// checkedRepo decides through server.Decide, so that a refused decision
// is repo.ErrRefused here as on a server.
type checkedRepo struct{ r *repo.Repo }

func (c checkedRepo) Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	e, _, err := c.decide(ctx, app, a)
	return e, err
}

// decide is Rollout, and reports whether it signed anything: a decision
// that changes nothing (a halt of a halted release) signs nothing.
func (c checkedRepo) decide(ctx context.Context, app string, a rollout.Action) (rollout.Entry, bool, error) {
	s := &signingRepo{Repo: c.r}
	e, err := server.Decide(ctx, s, app, a)
	return e, s.signed, err
}

// signingRepo is a repository that remembers whether its last Rollout
// signed anything.
type signingRepo struct {
	*repo.Repo
	signed bool
}

func (s *signingRepo) Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	e, signed, err := s.RolloutSigned(ctx, app, a)
	s.signed = signed
	return e, err
}

func (c checkedRepo) Rollouts(ctx context.Context, app string) (server.RolloutStatus, error) {
	return server.RolloutStatusOf(ctx, c.r, app)
}

// where names where a decision was signed, for the result line.
func (fl *rolloutFlags) where() string {
	if fl.rf.server != "" {
		return "signed by " + fl.rf.server
	}
	return "signed in " + fl.dir
}

func (e *env) rolloutActionCmd(kind, short, example string) *cobra.Command {
	var fl rolloutFlags
	use := kind + " (--repo DIR | --server URL --token-file F) --app APP --version V"
	if kind == "start" {
		use += " (--percent P | --stages S1,S2,...) [--channel C] [--budget B]"
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Long:    rolloutLong[kind],
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a := rollout.Action{Kind: kind, Version: fl.version, Channel: fl.channel}
			if kind != "start" {
				return e.decide(cmd.Context(), &fl, a, nil)
			}
			bp, plan, err := fl.plan.spec(cmd.Flags(), fl.percent).Start()
			switch {
			case errors.Is(err, guard.ErrNoShare):
				return withHint(err, "ferry rollout start --help shows both")
			case err != nil:
				return err
			case plan != nil && fl.rf.server == "":
				return withHint(errors.New("a guarded rollout (--stages, --budget) needs --server: the server's guard watches the reports"),
					"start it with --server URL --token-file F, or drop the plan flags to set a share here")
			}
			a.BasisPoints = bp
			return e.decide(cmd.Context(), &fl, a, plan)
		},
	}
	f := cmd.Flags()
	fl.add(f, true)
	if kind == "start" {
		f.StringVar(&fl.percent, "percent", "", "share of the installations offered the release, 0-100, at most two decimals (e.g. 5, 0.5) (or --stages)")
		f.StringVar(&fl.channel, "channel", "", "channel of the release (default: the one it is in, stable for a release no decision names)")
		fl.plan.add(f)
	}
	cmd.MarkFlagRequired("app")
	cmd.MarkFlagRequired("version")
	return cmd
}

var rolloutLong = map[string]string{
	"start": `Offer the release to --percent of the installations (of its channel and of stable's): the first
start of a release gives it a fresh salt, so its cohort is independent of the last release's;
a later start changes only the share, so widening it keeps every installation that was in, and
narrowing it offers it to no new installation outside the new share. A halted or pulled release
is made active again. --percent 100 offers it to everyone.

With --server, a start may carry a plan that the server's guard carries out (docs/rollouts.md,
Guarded rollouts): --stages 1,10,50,100 starts at the first stage and moves to the next only
once the stage has lasted --stage-wait and --min-healthy enrolled installations that started the
release in it reported healthy; a stage without enough reports holds (and raises an alert), it
never advances on no data. At any stage, when more than --budget of the installations that
started the release failed their health check, failed to install, rolled back, or stayed silent
for two --check-interval, the server halts the rollout with its online rollout key. --budget
with --percent alone is a watched rollout: never widened, halted on a crossed budget
(--check-interval goes with --stages or --budget: it makes no plan of its own). Only
enrolled installations count, each once. A later start without plan flags drops the plan: the
share is then yours to set.`,
	"halt": `Offer the release to no new installation from their next check on; installations that already
run it keep it. Its share and salt are kept, so resume goes on where it stopped.`,
	"resume": `Make a halted release active again, at the share and with the cohort it had.`,
	"pull": `Offer the release to nobody. Installations that run it move to the newest release that is
still offered to them, an older one if need be (through the installer's rollback when the old
version is still on disk): a signed pull is the only downgrade a client accepts. start makes it
active again.`,
}

// parsePercent parses --percent into basis points.
func parsePercent(s string) (int, error) {
	bp, err := rollout.ParsePercent(s)
	if err != nil {
		return 0, fmt.Errorf("--percent: %w", err) // the error names the value and the rule
	}
	return bp, nil
}

// decide signs one decision (with plan, a guarded start through the
// server) and prints the release's new entry.
func (e *env) decide(ctx context.Context, fl *rolloutFlags, a rollout.Action, plan *guard.Plan) error {
	d, err := e.decider(ctx, fl)
	if err != nil {
		return err
	}
	var entry rollout.Entry
	signed := true
	switch local, ok := d.(checkedRepo); {
	case plan != nil:
		entry, err = d.(*server.AdminClient).RolloutPlanned(ctx, fl.app, a, plan)
	case ok:
		entry, signed, err = local.decide(ctx, fl.app, a)
	default:
		entry, signed, err = remoteDecide(ctx, d, fl.app, a)
	}
	if err != nil {
		return rolloutHint(err, fl)
	}
	if fl.asJSON {
		return writeJSONLine(e.stdout, decisionJSON{App: fl.app, Version: a.Version, Entry: entry, Plan: plan})
	}
	if !signed {
		fmt.Fprintf(e.stdout, "%s %s: nothing to change: it is %s already; nothing signed\n", fl.app, a.Version, describeEntry(entry))
		return nil
	}
	fmt.Fprintf(e.stdout, "%s %s: %s (%s)\n", fl.app, a.Version, describeEntry(entry), fl.where())
	if plan != nil {
		fmt.Fprintf(e.stdout, "%s %s: guarded: %s\n", fl.app, a.Version, plan.Describe())
	}
	return nil
}

// remoteDecide asks the server for decision a and reports whether it
// changed anything. The server signs nothing for a decision that changes
// nothing, but does not say so: the entry before, read first, tells. A
// release with a plan is taken as changed, since a start by hand drops it;
// so is everything when the status cannot be read (the decision then
// fails with its own error, or is reported as signed).
func remoteDecide(ctx context.Context, d decider, app string, a rollout.Action) (rollout.Entry, bool, error) {
	st, _ := d.Rollouts(ctx, app)
	entry, err := d.Rollout(ctx, app, a)
	if err != nil {
		return rollout.Entry{}, false, err
	}
	for _, r := range st.Releases {
		if r.Version == a.Version {
			return entry, !r.Decided || r.Guard != nil || r.Entry != entry, nil
		}
	}
	return entry, true, nil
}

// describeEntry says in words what an entry offers: "active at 5% in
// channel stable".
func describeEntry(en rollout.Entry) string {
	switch en.State {
	case rollout.Halted:
		return fmt.Sprintf("halted at %s in channel %s (offered to no new installation)", rollout.Percent(en.BasisPoints), en.Channel)
	case rollout.Pulled:
		return fmt.Sprintf("pulled from channel %s (offered to nobody; installations that run it move to the newest good release)", en.Channel)
	}
	return fmt.Sprintf("active at %s in channel %s", rollout.Percent(en.BasisPoints), en.Channel)
}

// decisionJSON is the line a decision prints with --json (docs/json.md).
type decisionJSON struct {
	App     string `json:"app"`
	Version string `json:"version"`
	rollout.Entry
	Plan *guard.Plan `json:"plan,omitempty"` // a guarded start's plan
}

// rolloutHint attaches what to do next to a refused decision.
func rolloutHint(err error, fl *rolloutFlags) error {
	var ae *server.APIError
	where := "--repo " + fl.dir
	if fl.rf.server != "" {
		where = "--server " + fl.rf.server + " --token-file " + fl.rf.tokenFile
	}
	if errors.Is(err, repo.ErrNoRolloutRole) {
		return withHint(err, "add it with: ferry rollout enable --repo "+fl.dir+" --offline-keys KEYDIR (it needs the targets key)")
	}
	if errors.Is(err, repo.ErrRefused) || errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
		return withHint(err, "ferry rollout status "+where+" --app "+fl.app+" lists the releases the application key signed and the minimum safe version")
	}
	return missingKeyHint(err)
}

func (e *env) rolloutStatusCmd() *cobra.Command {
	var fl rolloutFlags
	cmd := &cobra.Command{
		Use:   "status (--repo DIR | --server URL --token-file F) --app APP [--json]",
		Short: "Show each release's channel, share and state, and the minimum safe version",
		Long: `List every release the application key signed, newest first: its channel, the share of the
installations it is offered to, and its state (active, halted, pulled; "no decision" for a
release no decision names, which is in stable at 100%, or where the server's guard is with
it, "guarded, last stage", for a guarded one), and the minimum safe version: releases
below it are offered to nobody. With --server, a guarded release (ferry rollout start --stages or
--budget) also shows its plan, its stage and the evidence the guard counted (started, healthy,
failed, silent and pending installations), and why it advances, holds or halted. With --json, one JSON object (docs/json.md). Reads only what is
published: no key or passphrase is needed.`,
		Example: `  ferry rollout status --repo ./repo --app hello
  ferry rollout status --server https://updates.example.com/ --token-file ./hello.token --app hello --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := e.rolloutStatus(cmd.Context(), &fl)
			if err != nil {
				return err
			}
			if fl.asJSON {
				return writeJSONLine(e.stdout, st)
			}
			return printRolloutStatus(e.stdout, st)
		},
	}
	fl.addStatus(cmd.Flags())
	cmd.MarkFlagRequired("app")
	return cmd
}

func (e *env) rolloutStatus(ctx context.Context, fl *rolloutFlags) (server.RolloutStatus, error) {
	if err := fl.check(); err != nil {
		return server.RolloutStatus{}, err
	}
	if fl.rf.server != "" {
		c, err := e.adminClient(fl.rf)
		if err != nil {
			return server.RolloutStatus{}, err
		}
		return c.Rollouts(ctx, fl.app)
	}
	r, err := repo.Open(fl.dir, nil)
	if err != nil {
		return server.RolloutStatus{}, err
	}
	return server.RolloutStatusOf(ctx, r, fl.app)
}

func printRolloutStatus(w io.Writer, st server.RolloutStatus) error {
	min := st.MinVersion
	if min == "" {
		min = "none"
	}
	fmt.Fprintf(w, "%s: minimum safe version %s\n", st.App, min)
	if len(st.Releases) == 0 {
		fmt.Fprintln(w, "no releases published")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCHANNEL\tSHARE\tSTATE")
	for _, r := range st.Releases {
		state := string(r.State)
		switch {
		case r.BelowMin:
			state += " (below the minimum: offered to nobody)"
		case !r.Decided && r.Guard != nil:
			// At the whole channel its decision may be pruned: the
			// guard's plan is what to show (guarded, last stage).
			state += " (" + r.Guard.Phase() + ")"
		case !r.Decided:
			state += " (no decision)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Version, r.Channel, rollout.Percent(r.BasisPoints), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range st.Releases {
		if g := r.Guard; g != nil {
			fmt.Fprintf(w, "%s: guarded: %s\n", r.Version, g.Plan.Describe())
			fmt.Fprintf(w, "%s: %s\n", r.Version, describeEvidence(*g))
			fmt.Fprintf(w, "%s: %s\n", r.Version, g.Reason)
		}
	}
	return nil
}

func (e *env) rolloutEnableCmd() *cobra.Command {
	var (
		dir string
		kf  keyFlags
	)
	cmd := &cobra.Command{
		Use:   "enable --repo DIR (--offline-keys KEYDIR | --signer REF) [--online-key rollout=REF]",
		Short: "Add the rollout role to a repository made before rollouts",
		Long: `A repository made by ferry init has a rollout role. One made before rollouts gets it here:
targets delegates the role ` + rollout.RoleName + ` (its paths are only ` + rollout.PathPattern + `, so it can sign
decisions and nothing else) to a new online key, DIR/keys/rollout.age (encrypted with the
passphrase of the online keys), or to --online-key rollout=REF held in a KMS or HSM. Re-signing
targets needs the targets key: --offline-keys KEYDIR or --signer REF. Without it, the holders of
targets delegate the role in a targets ceremony instead (the error says how). A repository that
has the role is left as it is.`,
		Example: `  ferry rollout enable --repo ./repo --offline-keys ./offline-keys
  ferry rollout enable --repo ./repo --signer 'pkcs11:token=ferry;object=targets' \
      --online-key 'rollout=awskms://alias/ferry-rollout?region=eu-west-1'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var ref string
			var others []string
			for _, v := range kf.online {
				if r, ok := strings.CutPrefix(v, repo.RolloutKeyName+"="); ok && ref == "" {
					ref = r
					continue
				}
				others = append(others, v)
			}
			kf.online = others
			r, err := e.openRepo(ctx, dir, kf)
			if err != nil {
				return err
			}
			var s keys.Signer
			if ref != "" {
				if s, err = keys.Open(ctx, ref, e.keyPassphrase(kf)); err != nil {
					return fmt.Errorf("open online key rollout: %w", err)
				}
			}
			if err := r.AddRolloutRoleWith(ctx, s); err != nil {
				return missingKeyHint(err)
			}
			fmt.Fprintf(e.stdout, "%s has a rollout role: decisions are signed with its online rollout key (ferry rollout --help)\n", dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "repo", "", "repository directory (required)")
	kf.addOffline(f)
	kf.addOnline(f)
	cmd.MarkFlagRequired("repo")
	return cmd
}
