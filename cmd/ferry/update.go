package main

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
)

type updateFlags struct {
	repoURL   string
	mirrors   []string
	root      string
	ca        string
	app       string
	current   string
	out       string
	stateDir  string
	platform  string
	channel   string
	insecureH bool
	json      bool
	inst      installFlags
}

func (e *env) updateCmd() *cobra.Command {
	var fl updateFlags
	cmd := &cobra.Command{
		Use:   "update --repo URL --root root.json --app APP (--out DIR | --install binary|slots ...)",
		Short: "Check for, download, verify and optionally install the newest release of an application",
		Long: `Refresh the signed metadata from the repository (and --mirror URLs, tried in order), pick the
release of APP for this platform that the signed rollout decisions offer this installation (the
newest above --current in --channel or stable, if its staged rollout includes this installation's
install ID, kept in the state directory; the newest at or above the signed minimum safe version when
--current is below it; the newest good one, even older, when the installed version was pulled),
download it, and verify its length and hashes against the signed metadata. Then:

  --out DIR                  put the verified file in DIR; nothing is executed or installed.
  --install binary           replace the executable --target PATH atomically, keeping the old one
                             for rollback (state in --state-dir/install).
  --install slots            unpack it into --install-root ROOT/APP/versions/VERSION and switch the
                             symlink ROOT/APP/current (state in ROOT/APP).

With --install, an install that a crash interrupted is finished or rolled back first, the version
installed (if --current is not given) and the versions marked bad come from the install state, and
a release marked bad is never retried; a newer one is. After the swap, --restart-cmd runs, then the
health check (--health-cmd and/or --health-url, each attempt within --health-timeout, retried
--health-retries times). If it fails, the previous version is restored and the new one marked bad.
Commands are split at spaces and run without a shell; they get FERRY_APP, FERRY_VERSION and
FERRY_PATH in their environment.

Exit status: 0 updated or up to date; 1 an error, said on stderr ("ferry: error: ROLLBACK FAILED
..." means the previous version could not be restored: the state records it and the next run
retries the rollback before anything else); 2 the new version failed its health check and the
previous one is running again; 130 interrupted (SIGINT or SIGTERM): a download resumes where it
stopped when the command runs again.

` + jsonHelp + `

` + stateDirHelp,
		Example: `  # Download and verify only; --json prints the result as one JSON object
  ferry update --repo https://updates.example.com/ --root ./root.json --app hello --current 1.4.1 --out ./bin --json

  # Follow the beta channel (releases promoted to beta, and stable ones); -v shows every event
  ferry update --repo https://updates.example.com/ --root ./root.json --app hello --current 1.4.1 --out ./bin --channel beta -v
  ferry update --repo https://updates.example.com/ --root ./root.json --app hello --current 1.4.1 --out ./bin
  ferry update --repo https://127.0.0.1:8443/ --root ./repo/root.json --ca ./ca.pem \
      --app hello --current 1.0.0 --out ./bin --state-dir ./state

  # Replace an executable in place, roll back if the new one fails its health check
  ferry update --repo https://updates.example.com/ --root ./root.json --app hello \
      --install binary --target /usr/local/bin/hello --health-cmd "/usr/local/bin/hello --version"

  # Versioned slots under /opt/apps (hello/versions/VERSION, hello/current), restart a service,
  # and probe it over HTTP
  ferry update --repo https://updates.example.com/ --root ./root.json --app hello \
      --install slots --install-root /opt/apps --restart-cmd "systemctl restart hello" \
      --health-url http://127.0.0.1:8080/healthz --health-timeout 10s --health-retries 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fl.inst.check(cmd.Flags(), fl.out); err != nil {
				return err
			}
			return e.update(cmd, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.repoURL, "repo", "", "repository base URL, https (required)")
	f.StringArrayVar(&fl.mirrors, "mirror", nil, "a further mirror URL, tried in order when an earlier one fails (repeatable)")
	f.StringVar(&fl.root, "root", "", "trusted root.json (required)")
	f.StringVar(&fl.ca, "ca", "", "PEM file of the CA that signed the server's certificate (default: system roots)")
	f.StringVar(&fl.app, "app", "", "application name (required)")
	f.StringVar(&fl.current, "current", "", "installed version (default: none installed, or with --install the recorded one)")
	f.StringVar(&fl.out, "out", "", "directory to put the verified file in (without --install)")
	f.StringVar(&fl.stateDir, "state-dir", "", "private directory for trusted metadata, partial downloads and binary install state (default: the user's state directory, see --help)")
	f.StringVar(&fl.platform, "platform", "", "os/arch to look for (default: this machine's)")
	f.StringVar(&fl.channel, "channel", rollout.DefaultChannel, "rollout channel to follow: releases in it and in stable are offered")
	f.BoolVar(&fl.insecureH, "insecure-allow-http-loopback", false, "INSECURE: allow plain http:// to a loopback address (tests only)")
	f.BoolVar(&fl.json, "json", false, "print each result as a JSON object on a line (see docs/json.md)")
	fl.inst.register(f)
	for _, n := range []string{"repo", "root", "app"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

func (e *env) update(cmd *cobra.Command, fl updateFlags) error {
	cfg, err := e.clientConfig(fl)
	if err != nil {
		return err
	}
	bar := newBar(e.stderr, "downloading "+fl.app)
	cfg.Progress = bar.update
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if fl.inst.strategy != "" {
		err := e.updateInstall(ctx, c, cfg, &fl.inst, fl.json)
		bar.finish()
		return err
	}
	offer, err := c.CheckOffer(ctx)
	if err != nil {
		return notPublishedHint(err) // already says "check APP: ..."
	}
	rel := offer.Release
	if rel == nil {
		if fl.current == "" {
			return noRelease(cfg, offer.Held, offer.Choice)
		}
		e.result(fl.json, updateResult{App: fl.app, Status: "up-to-date", From: fl.current, Version: fl.current,
			Channel: fl.channel, Reason: offer.Choice.Reason, Held: offer.Held},
			"%s %s is up to date%s\n", fl.app, fl.current, heldBack(offer.Held, offer.Choice))
		return nil
	}
	path, err := c.Download(ctx, rel, fl.out) // creates fl.out if needed
	bar.finish()
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	from := fl.current
	if from == "" {
		from = "(none)"
	}
	sum := hex.EncodeToString(rel.Hashes["sha256"])
	e.result(fl.json, updateResult{App: rel.App, Status: "updated", From: fl.current, Version: rel.Version, Path: path, SHA256: sum,
		Channel: fl.channel, Reason: offer.Choice.Reason, Downgrade: offer.Choice.Downgrade},
		"updated %s %s → %s%s: %s (sha256 %s)\n", rel.App, from, rel.Version, downgrade(offer.Choice), path, short(sum))
	return nil
}

// noRelease is the error of a run with no version installed and nothing
// offered: the application has no release for the platform, or the
// rollout holds back the ones it has.
func noRelease(cfg client.Config, held string, ch rollout.Choice) error {
	if held != "" {
		return withHint(fmt.Errorf("no release of %s for %s is offered to this installation: %s", cfg.App, platformOr(cfg.Platform), ch.Reason),
			"a staged rollout reaches installations by their install ID; --channel follows another channel")
	}
	return fmt.Errorf("no release of %s for %s", cfg.App, platformOr(cfg.Platform))
}

// heldBack says why a newer signed version is not offered here, if one is.
func heldBack(held string, ch rollout.Choice) string {
	if held == "" {
		return ""
	}
	return " (" + ch.Reason + ")"
}

// downgrade notes a signed pull's downgrade.
func downgrade(ch rollout.Choice) string {
	if !ch.Downgrade {
		return ""
	}
	return " (a downgrade: " + ch.Reason + ")"
}

// notPublishedHint adds a hint to the error of an application or platform
// the repository does not have (the error itself names what it has).
func notPublishedHint(err error) error {
	switch {
	case errors.Is(err, client.ErrUnknownApp):
		return withHint(err, "check the spelling of --app; on the publisher, ferry release list --repo DIR lists what is published")
	case errors.Is(err, client.ErrUnknownPlatform):
		return withHint(err, "--platform OS/ARCH asks for another platform's release; the publisher adds one with ferry release publish --platform")
	}
	return err
}

func (e *env) clientConfig(fl updateFlags) (client.Config, error) {
	if fl.current != "" {
		if err := release.ValidVersion(fl.current); err != nil {
			return client.Config{}, withHint(fmt.Errorf("--current: %w", err), "give the installed version exactly as it was published, e.g. --current 1.4.2")
		}
	}
	if err := release.ValidChannel(fl.channel); err != nil {
		return client.Config{}, withHint(fmt.Errorf("--channel: %w", err), "the default channel is stable; publishers name others, e.g. --channel beta")
	}
	root, err := checkRootFile(fl.root)
	if err != nil {
		return client.Config{}, err
	}
	cfg := client.Config{
		URLs:                      append([]string{fl.repoURL}, fl.mirrors...),
		TrustedRoot:               root,
		StateDir:                  fl.stateDir,
		App:                       fl.app,
		Platform:                  fl.platform,
		Installed:                 fl.current,
		Channel:                   fl.channel,
		InsecureAllowHTTPLoopback: fl.insecureH,
		Events:                    event.Slog(e.logger()),
	}
	if cfg.StateDir == "" {
		d, err := e.defaultStateDir(fl.app, root)
		if err != nil {
			return cfg, err
		}
		cfg.StateDir = d
	}
	if fl.ca != "" {
		pool, err := loadCA(fl.ca)
		if err != nil {
			return cfg, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// loadCA reads a PEM file of CA certificates into a new pool.
func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", file)
	}
	return pool, nil
}

func platformOr(p string) string {
	if p == "" {
		return "this platform"
	}
	return p
}

// bar draws a download progress bar on a terminal and nothing elsewhere.
type bar struct {
	w    io.Writer
	desc string
	pb   *progressbar.ProgressBar
}

func newBar(w io.Writer, desc string) *bar {
	if !isTerminal(w) {
		return &bar{}
	}
	return &bar{w: w, desc: desc}
}

func (b *bar) update(done, total int64) {
	if b.w == nil {
		return
	}
	if b.pb == nil {
		b.pb = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	b.pb.Set64(done)
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
	}
}
