// Package agent is ferry's daemon: it keeps the applications of one
// configuration file up to date, each from its repository, with the same
// verification, install strategies, health checks and rollback as
// "ferry update --install", on a schedule and without a person.
//
// # Configuration
//
// Load reads a TOML file (docs/agent.md has a commented example): the
// agent-wide state_dir, interval, jitter, backoff_max and max_staleness,
// and one [[app]] table per application with its repository (urls,
// trusted_root, optional ca), channel, install strategy (binary: target;
// slots: root, keep), health check, restart command and optional
// maintenance window. Unknown keys and bad values are refused with the
// file and line, in one line. Relative paths are relative to the file's
// directory.
//
// # Guarantees
//
// One agent per state directory: New takes STATEDIR/agent.lock, and a
// second agent gets an error wrapping ErrBusy with the holder's pid. The
// state directory is one installation: its install ID (STATEDIR/install-id,
// created once, never replaced) decides its cohort in every rollout.
//
// Each cycle refreshes every repository once, whatever the number of its
// applications (applications with the same urls and trusted_root share
// one), then checks each application in file order. Inside its
// maintenance window (or without one) the newest release the repository
// offers this installation is installed; outside it the release is only
// downloaded and verified, and the next cycle is brought forward to the
// window's opening. Cycles are Config.Interval apart plus a random jitter
// in [0, Config.Jitter); after n failed cycles in a row the interval is
// doubled n-1 times, up to Config.BackoffMax.
//
// A shutdown (Run's context cancelled by SIGTERM or SIGINT) starts nothing
// new and interrupts a download, but never an install: installers run
// with context.WithoutCancel, so the install, its health check and any
// rollback finish before Run returns.
//
// After each application's check the agent rewrites STATEDIR/agent-status.json
// atomically (Status): installed version, channel, cohort, last check
// and result, last error, and whether the application is stale (no
// successful refresh of its repository for longer than
// Config.MaxStaleness, R15), in which case it also emits event.Stale.
//
// An application whose install.target is the agent's own executable is a
// self-update: installed and health-checked like any other, then Run
// re-executes the new version between cycles (RunOnce never does).
//
// Every step is an event.Event passed to Options.Events (the command
// writes them to stderr as JSON lines). Under systemd (Type=notify),
// Notifier sends READY=1, WATCHDOG=1, STATUS= and STOPPING=1.
//
// An Agent is used from one goroutine: Run and RunOnce must not overlap.
package agent
