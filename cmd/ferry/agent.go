package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/agent"
	"github.com/ferry-updates/ferry/event"
)

const agentLong = `Keep the applications of a configuration file up to date, without a person: on an interval with a
random jitter, refresh each repository once (applications with the same urls and trusted_root share
it), then check each application and install the newest release its channel and rollout offer this
machine, with its health check and automatic rollback, as ferry update --install does. Outside an
application's maintenance window the release is downloaded and verified but not installed. After
failed checks the interval doubles, up to backoff_max. docs/agent.md describes the file.

One agent per state directory: a second one is refused with the pid of the first. SIGTERM or
SIGINT stops scheduling and interrupts a download, never an install: a running install, its health
check and any rollback finish first, then the agent exits 0. Under systemd (Type=notify) it sends
READY=1, WATCHDOG=1, STATUS= and STOPPING=1 (contrib/systemd/ferry-agent.service). Every step is
logged on stderr as one JSON object per line ("event": "check.offered", "install.done", ...), and
written to the audit log STATE_DIR/audit.log (ferry audit verify and show read it; enrolled with
ferry agent enroll, its lines are also sent to the server).

An application whose install.target is the agent's own executable updates the agent itself; the new
version is started in place of the running one between cycles.

--once does one cycle and exits: 0 every application up to date, updated, or downloaded and waiting
for its maintenance window; 2 a new release failed its health check and was rolled back (and no
error); 1 any error (a check, a download, an install, a rollback that failed); 130 interrupted.`

func (e *env) agentCmd() *cobra.Command {
	var file string
	var once bool
	cmd := &cobra.Command{
		Use:   "agent --config FILE [--once]",
		Short: "Keep applications up to date on a schedule (a daemon; see docs/agent.md)",
		Long:  agentLong,
		Example: `  # Run as a service (contrib/systemd/ferry-agent.service does this)
  ferry agent --config /etc/ferry/agent.toml

  # One pass, for cron or a try-out; the exit status says what happened
  ferry agent --config ./agent.toml --once

  # What the agent knows: installed versions, last checks, staleness, the report queue
  ferry agent status --config /etc/ferry/agent.toml

  # Report events to a server (docs/reporting.md)
  ferry agent enroll --server https://updates.example.com/ --token-file enroll.token --config /etc/ferry/agent.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.agentRun(cmd.Context(), file, once)
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "the agent's configuration file (TOML, see docs/agent.md) (required)")
	cmd.Flags().BoolVar(&once, "once", false, "check every application once, then exit with a status that says what happened")
	cmd.MarkFlagRequired("config")
	cmd.AddCommand(e.agentStatusCmd(), e.agentEnrollCmd())
	return cmd
}

func (e *env) agentRun(ctx context.Context, file string, once bool) error {
	cfg, err := agent.Load(file)
	if err != nil {
		return withHint(err, "docs/agent.md describes every key of the configuration file")
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	fw := &forward{}
	a, err := agent.New(cfg, agent.Options{Events: event.Tee(event.Slog(log), fw), Notifier: agent.NewNotifier(e.getenv)})
	if err != nil {
		if errors.Is(err, agent.ErrBusy) {
			return withHint(err, "ferry agent status --state-dir "+cfg.StateDir+" shows what it is doing")
		}
		return err
	}
	defer a.Close()
	// Every event also goes to the audit log; enrolled (ferry agent
	// enroll), to the report queue too, and the uploader sends it.
	reporter, closeLog, err := openEventLog(a, cfg.StateDir, log, fw)
	if err != nil {
		return err
	}
	defer closeLog()
	if !once {
		if reporter == nil {
			return a.Run(ctx)
		}
		uctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { reporter.Run(uctx); close(done) }()
		err := a.Run(ctx)
		stop()
		<-done
		return err
	}
	rep := a.RunOnce(ctx)
	if reporter != nil {
		e.flushReport(ctx, reporter)
	}
	for _, r := range rep.Apps {
		e.printAppReport(r)
	}
	if rep.Interrupted || ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "ferry: interrupted")
		return exitStatus(exitInterrupted)
	}
	if code := rep.ExitCode(); code != 0 {
		return exitStatus(code)
	}
	return nil
}

// printAppReport prints one line per application of --once: results on
// stdout, errors on stderr.
func (e *env) printAppReport(r agent.AppReport) {
	switch r.Result {
	case agent.ResultUpdated:
		fmt.Fprintf(e.stdout, "updated %s %s → %s\n", r.App, orNone(r.From), r.Version)
	case agent.ResultRolledBack:
		fmt.Fprintf(e.stdout, "%s %s\n", r.App, r.Detail)
	case agent.ResultDeferred:
		fmt.Fprintf(e.stdout, "%s %s\n", r.App, r.Detail)
	case agent.ResultError:
		fmt.Fprintf(e.stderr, "ferry: error: %s: %s\n", r.App, r.Detail)
		if hint := explain(r.Err); hint != "" {
			fmt.Fprintf(e.stderr, "ferry: hint: %s\n", hint)
		}
	default:
		line := fmt.Sprintf("%s %s is up to date", r.App, orNone(r.Version))
		if r.Detail != "" && r.Detail != "up to date" {
			line += " (" + r.Detail + ")"
		}
		fmt.Fprintln(e.stdout, line)
	}
}
