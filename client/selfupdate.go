package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
)

// SelfUpdateOptions configures SelfUpdate. The zero value installs without
// a health check and re-executes the new version.
type SelfUpdateOptions struct {
	// Health decides whether the new executable works, for example by
	// running it with a --health argument: install.Health{Cmd: []string{exe,
	// "--health"}}. A failure rolls back to the running version and marks
	// the new one bad. Nil: no check.
	Health *install.Health
	// MaxTries is the number of interrupted health trials before a
	// rollback (install.Binary.MaxTries).
	MaxTries int
	// Events receives the installer's events. Nil: none.
	Events event.Observer
	// Reexec starts the new version after a successful update. Nil means
	// install.Reexec: replace this process with the new executable, same
	// arguments and environment (it does not return on success).
	Reexec func(path string) error
}

// SelfUpdate updates the running program in place: it resolves
// os.Executable (following symlinks), installs the newest release of
// cfg.App over it with install.Binary (install state in
// cfg.StateDir/install), and re-executes the new version. Call it early at
// start: it first finishes or rolls back an update that a crash interrupted.
//
// It returns with a nil error only if nothing newer was installed (the
// Outcome says why), or if opts.Reexec returned nil. A new version that
// fails its health check is rolled back and SelfUpdate returns an error
// wrapping install.ErrRolledBack; the running program is still the
// installed one and may carry on.
func SelfUpdate(ctx context.Context, cfg Config, opts SelfUpdateOptions) (*Outcome, error) {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return nil, fmt.Errorf("self-update: locate the running executable: %w", err)
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	b := &install.Binary{
		App:      c.cfg.App,
		Target:   exe,
		StateDir: filepath.Join(c.cfg.StateDir, "install"),
		Health:   opts.Health,
		MaxTries: opts.MaxTries,
		Events:   opts.Events,
	}
	out, err := c.Update(ctx, b)
	if err != nil || !out.Updated() {
		return out, err
	}
	reexec := opts.Reexec
	if reexec == nil {
		reexec = install.Reexec
	}
	if err := reexec(out.Result.Path); err != nil {
		return out, fmt.Errorf("self-update %s to %s: installed, but %w", c.cfg.App, out.Release.Version, err)
	}
	return out, nil
}
