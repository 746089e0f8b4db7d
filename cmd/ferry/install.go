package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
)

// installFlags are the flags of "ferry update --install ...".
type installFlags struct {
	strategy      string // "", "binary" or "slots"
	target        string
	root          string
	keep          int
	healthCmd     string
	healthURL     string
	healthTimeout time.Duration
	healthRetries int
	restartCmd    string
}

func (fl *installFlags) register(f *pflag.FlagSet) {
	f.StringVar(&fl.strategy, "install", "", `install the verified release: "binary" (replace --target) or "slots" (unpack under --install-root)`)
	f.StringVar(&fl.target, "target", "", "with --install binary: the executable to replace")
	f.StringVar(&fl.root, "install-root", "", "with --install slots: the directory holding APP/versions/VERSION and APP/current")
	f.IntVar(&fl.keep, "keep", 3, "with --install slots: versions to keep, including the current and previous one")
	f.StringVar(&fl.healthCmd, "health-cmd", "", "health check: a command that must exit 0 (split at spaces and run without a shell)")
	f.StringVar(&fl.healthURL, "health-url", "", "health check: a URL that must answer 2xx to a GET")
	f.DurationVar(&fl.healthTimeout, "health-timeout", 30*time.Second, "deadline of one health check attempt (a hang is a failure)")
	f.IntVar(&fl.healthRetries, "health-retries", 0, "failed health check attempts to retry, 1 s apart, before rolling back")
	f.StringVar(&fl.restartCmd, "restart-cmd", "", "command run after the swap and after a rollback, e.g. 'systemctl restart hello' (no shell)")
}

// installOnly are the flags that mean nothing without --install.
var installOnly = []string{"target", "install-root", "keep", "health-cmd", "health-url", "health-timeout", "health-retries", "restart-cmd"}

// check validates the combination of flags; out is --out.
func (fl *installFlags) check(f *pflag.FlagSet, out string) error {
	switch fl.strategy {
	case "":
		for _, n := range installOnly {
			if f.Changed(n) {
				return fmt.Errorf("--%s needs --install binary or --install slots", n)
			}
		}
		if out == "" {
			return withHint(errors.New("no --out directory"), "pass --out DIR to download only, or --install binary|slots to install")
		}
		return nil
	case "binary":
		if fl.target == "" || f.Changed("install-root") || f.Changed("keep") {
			return errors.New("--install binary needs --target PATH (and no --install-root or --keep)")
		}
	case "slots":
		if fl.root == "" || f.Changed("target") {
			return errors.New("--install slots needs --install-root DIR (and no --target)")
		}
	default:
		return fmt.Errorf("--install %q: want binary or slots", fl.strategy)
	}
	if out != "" {
		return errors.New("--out is for downloading only; with --install the release goes to --target or --install-root")
	}
	if fl.healthCmd == "" && fl.healthURL == "" && (f.Changed("health-timeout") || f.Changed("health-retries")) {
		return errors.New("--health-timeout and --health-retries need --health-cmd or --health-url")
	}
	return nil
}

// installer is what "ferry update --install" needs from a strategy.
type installer interface {
	client.Installer
	Recover(ctx context.Context) (install.Result, error)
}

// installer returns the strategy the flags describe. Binary keeps its
// state in stateDir/install; Slots keeps it in ROOT/APP.
func (fl *installFlags) installer(app, stateDir string, log *slog.Logger) installer {
	var health *install.Health
	if fl.healthCmd != "" || fl.healthURL != "" {
		health = &install.Health{
			Cmd:     strings.Fields(fl.healthCmd),
			URL:     fl.healthURL,
			Timeout: fl.healthTimeout,
			Retries: fl.healthRetries,
		}
	}
	restart := strings.Fields(fl.restartCmd)
	events := event.Slog(log)
	if fl.strategy == "slots" {
		return &install.Slots{Root: fl.root, App: app, Keep: fl.keep, Health: health, Restart: restart, Events: events}
	}
	return &install.Binary{App: app, Target: fl.target, StateDir: filepath.Join(stateDir, "install"),
		Health: health, Restart: restart, Events: events}
}

// updateInstall finishes any interrupted install, then checks, downloads,
// verifies and installs with the strategy of the flags, and prints one line
// about the outcome. A rolled back release ends with exit status 2.
func (e *env) updateInstall(ctx context.Context, c *client.Client, cfg client.Config, fl *installFlags, asJSON bool) error {
	if fl.strategy == "binary" {
		if fi, err := os.Stat(filepath.Dir(fl.target)); err != nil || !fi.IsDir() {
			return fmt.Errorf("--target %s: no directory %s to install into", fl.target, filepath.Dir(fl.target))
		}
	}
	inst := fl.installer(cfg.App, cfg.StateDir, e.logger())
	res, err := inst.Recover(ctx)
	if err := installError(err); err != nil && !errors.Is(err, install.ErrRolledBack) {
		return err
	}
	if res.RolledBack {
		e.result(asJSON, updateResult{App: cfg.App, Status: "recovered", Version: res.Version, Reason: res.Reason},
			"recovered: an interrupted install was rolled back to %s %s (%s)\n", cfg.App, res.Version, res.Reason)
	}
	out, err := c.Update(ctx, inst)
	e.printSkipped(asJSON, cfg.App, out)
	switch {
	case errors.Is(err, install.ErrRolledBack) && out != nil && out.Release != nil:
		r := out.Result
		e.result(asJSON, updateResult{App: cfg.App, Status: "rolled-back", From: out.From, Version: r.Version, Failed: out.Release.Version, Reason: r.Reason},
			"%s %s %s: rolled back to %s; %s marked bad\n", cfg.App, out.Release.Version, failure(r), r.Version, out.Release.Version)
		return exitStatus(2)
	case err != nil:
		return installError(notPublishedHint(err))
	case out.Release == nil && out.From == "":
		return noRelease(cfg, out.Held, out.Choice)
	case out.Release == nil:
		e.result(asJSON, updateResult{App: cfg.App, Status: "up-to-date", From: out.From, Version: out.From,
			Channel: cfg.Channel, Reason: out.Choice.Reason, Held: out.Held},
			"%s %s is up to date%s\n", cfg.App, out.From, heldBack(out.Held, out.Choice))
	case out.Result.Unchanged:
		e.result(asJSON, updateResult{App: cfg.App, Status: "already-installed", From: out.From, Version: out.Result.Version, Path: out.Result.Path,
			Channel: cfg.Channel},
			"%s %s is already installed (%s)\n", cfg.App, out.Result.Version, where(fl, out.Result))
	default:
		e.result(asJSON, updateResult{App: cfg.App, Status: "updated", From: out.From, Version: out.Result.Version, Path: out.Result.Path,
			Channel: cfg.Channel, Reason: out.Choice.Reason, Downgrade: out.Choice.Downgrade},
			"updated %s %s → %s%s (%s)\n", cfg.App, orNone(out.From), out.Result.Version, downgrade(out.Choice), where(fl, out.Result))
	}
	return nil
}

// installError returns a failed rollback unwrapped, so that the error line
// starts with ROLLBACK FAILED, with a hint; other errors as they are.
func installError(err error) error {
	var re *install.RollbackError
	if errors.As(err, &re) {
		return withHint(re, "the previous version could not be restored; fix the cause above, "+
			"then run the same ferry update again: it retries the rollback first")
	}
	if errors.Is(err, install.ErrStateLost) {
		return withHint(err, "check which version is installed now and run the same ferry update with --current VERSION")
	}
	return err
}

func (e *env) printSkipped(asJSON bool, app string, out *client.Outcome) {
	if out == nil {
		return
	}
	for _, s := range out.Skipped {
		e.result(asJSON, updateResult{App: app, Status: "skipped", Version: s.Version, Reason: s.Reason},
			"%s %s is marked bad on this machine (%s): not retried until a newer release appears\n", app, s.Version, s.Reason)
	}
}

// failure words why a version was rolled back, from the step that failed.
func failure(r install.Result) string {
	switch r.Failed {
	case install.StepHealth:
		return "failed its health check (" + r.Detail + ")"
	case install.StepRestart:
		return "failed to restart (" + r.Detail + ")"
	}
	return "failed (" + r.Reason + ")"
}

// where says where a version was installed.
func where(fl *installFlags, r install.Result) string {
	if fl.strategy == "slots" {
		return fmt.Sprintf("slot %s → versions/%s", r.Path, r.Version)
	}
	return "binary at " + r.Path
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// exitStatus ends a command that has already printed its outcome with a
// status other than 0 or 1, and no error line.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }
