package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/agent"
	"github.com/ferry-updates/ferry/rollout"
)

// exitStale is ferry agent status's exit status when an application is
// stale (R15), for monitoring scripts.
const exitStale = 3

func (e *env) agentStatusCmd() *cobra.Command {
	var file, dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status (--config FILE | --state-dir DIR) [--json]",
		Short: "Show what the agent knows: installed versions, cohorts, last checks, errors, staleness",
		Long: `Print, per application, the installed version, the channel, this machine's cohort in the rollout
of the newest release (when the repository said), the last check and its result, the last error,
and STALE when the application's repository has not been refreshed successfully for longer than
max_staleness (R15: a server down, or someone holding updates back). It reads the status file the
agent rewrites after each check (STATE_DIR/agent-status.json), so it works whether the agent runs
or not, and says which.

When the state directory is enrolled (ferry agent enroll, docs/reporting.md), a last line shows the
report queue: the server, how many events wait to be delivered, how many its bound dropped, and
the last delivery, and, until a delivery succeeds, the last delivery error (a 409 for a rewritten
audit log or a 403 for a revoked installation is a finding: see docs/reporting.md).

Exit status: 0; 3 some application is stale; 1 the status cannot be read.

--json prints the status file as one JSON object, staleness recomputed now, with "running" and,
when enrolled, "report" (see docs/json.md).`,
		Example: `  ferry agent status --config /etc/ferry/agent.toml
  ferry agent status --state-dir /var/lib/ferry-agent --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.agentStatus(file, dir, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "the agent's configuration file (its state_dir is read)")
	f.StringVar(&dir, "state-dir", "", "the agent's state directory")
	f.BoolVar(&asJSON, "json", false, "print the status as one JSON object (see docs/json.md)")
	cmd.MarkFlagsMutuallyExclusive("config", "state-dir")
	cmd.MarkFlagsOneRequired("config", "state-dir")
	return cmd
}

// agentStatusJSON is ferry agent status --json (docs/json.md).
type agentStatusJSON struct {
	Running bool `json:"running"`
	agent.Status
	Report *reportStatusJSON `json:"report,omitempty"` // only when enrolled
}

func (e *env) agentStatus(file, dir string, asJSON bool) error {
	if file != "" {
		cfg, err := agent.Load(file)
		if err != nil {
			return err
		}
		dir = cfg.StateDir
	}
	st, err := agent.ReadStatus(dir)
	if err != nil {
		return withHint(err, "the agent writes it after its first check: is ferry agent running with this state directory?")
	}
	limit, err := time.ParseDuration(st.MaxStaleness)
	if err != nil {
		return fmt.Errorf("agent status: max_staleness %q: %w", st.MaxStaleness, err)
	}
	now := time.Now()
	stale := false
	for i := range st.Apps {
		st.Apps[i].Stale = st.Apps[i].StaleAt(now, limit)
		stale = stale || st.Apps[i].Stale
	}
	pid, running, lerr := agent.Holder(dir)
	rs, err := readReportStatus(dir)
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSONLine(e.stdout, agentStatusJSON{Running: running, Status: *st, Report: rs}); err != nil {
			return err
		}
	} else {
		e.printAgentStatus(st, pid, running, lerr, now, limit)
		e.printReportStatus(rs, now)
	}
	if stale {
		return exitStatus(exitStale)
	}
	return nil
}

func (e *env) printAgentStatus(st *agent.Status, pid int, running bool, lerr error, now time.Time, limit time.Duration) {
	w := e.stdout
	switch {
	case lerr != nil:
		fmt.Fprintf(w, "agent: unknown whether it runs (%v)\n", errors.Unwrap(lerr))
	case running:
		fmt.Fprintf(w, "agent: running (pid %d)\n", pid)
	default:
		fmt.Fprintf(w, "agent: not running (last status from pid %d at %s)\n", st.PID, stamp(st.Updated, now))
	}
	fmt.Fprintf(w, "install id: %s\n", st.InstallID)
	if st.NextCheck != nil && running {
		fmt.Fprintf(w, "next check: %s\n", stamp(*st.NextCheck, now))
	}
	for _, a := range st.Apps {
		fmt.Fprintf(w, "%s: installed %s, channel %s\n", a.App, orNone(a.Installed), a.Channel)
		if a.LastCheck != nil {
			fmt.Fprintf(w, "%s: last check %s: %s (%s)\n", a.App, stamp(*a.LastCheck, now), a.Result, a.Detail)
		} else {
			fmt.Fprintf(w, "%s: not checked yet\n", a.App)
		}
		if c := a.Cohort; c != nil {
			in := "not in its cohort"
			if c.Bucket < c.BasisPoints {
				in = "in its cohort"
			}
			fmt.Fprintf(w, "%s: rollout of %s at %s: bucket %d, %s\n", a.App, c.Version, rollout.Percent(c.BasisPoints), c.Bucket, in)
		}
		if a.LastError != "" && a.LastErrorAt != nil {
			fmt.Fprintf(w, "%s: last error %s: %s\n", a.App, stamp(*a.LastErrorAt, now), a.LastError)
		}
		if a.Stale {
			since := "it began"
			if a.LastRefresh != nil {
				since = stamp(*a.LastRefresh, now)
			} else {
				since = stamp(a.Since, now) + " (never refreshed)"
			}
			fmt.Fprintf(w, "%s: STALE: no successful refresh since %s, longer than max_staleness %v (R15)\n", a.App, since, limit)
		}
	}
}

// stamp is an RFC 3339 time (UTC) and how long ago it was.
func stamp(t, now time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return fmt.Sprintf("%s (in %v)", t.UTC().Format(time.RFC3339), -d)
	}
	return fmt.Sprintf("%s (%v ago)", t.UTC().Format(time.RFC3339), d)
}
