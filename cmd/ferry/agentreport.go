package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-updates/ferry/agent"
	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/report"
)

type enrollFlags struct {
	server, token, tokenFile, ca, config, stateDir string
}

func (e *env) agentEnrollCmd() *cobra.Command {
	var fl enrollFlags
	cmd := &cobra.Command{
		Use:   "enroll --server URL (--token-file F | --token T) [--ca CA] (--config FILE | --state-dir DIR)",
		Short: "Enroll this installation with a server, so that the agent reports its events there",
		Long: `Exchange an enrollment token (ferry token create --enroll, on the server) for a credential of this
installation (the install ID of the agent's state directory), and keep it, with the server's URL
and CA, in STATE_DIR/` + report.CredentialsFile + ` (mode 0600). Every agent keeps an audit log
(STATE_DIR/` + report.AuditFile + `); from then on ferry agent also queues its lines on disk
(STATE_DIR/` + report.QueueDir + `), those written before the enrollment first, and sends them to the
server in order; ferry agent status shows the queue. docs/reporting.md
describes the protocol and what a stolen credential can do. Prefer --token-file: a --token on the
command line is visible to other users of the machine. A server busy enrolling other machines
(429, or 503, with Retry-After) is asked again after the time it names, up to 5 times in all
and for at most a minute each time; each wait is one line on standard error.`,
		Example: `  ferry agent enroll --server https://updates.example.com/ --token-file enroll.token --config /etc/ferry/agent.toml
  ferry agent enroll --server https://127.0.0.1:8443/ --ca ca.pem --token-file enroll.token --state-dir ./state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return e.agentEnroll(cmd.Context(), fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.server, "server", "", "the server's base URL (https) (required)")
	f.StringVar(&fl.token, "token", "", "the enrollment token")
	f.StringVar(&fl.tokenFile, "token-file", "", "read the enrollment token from this file")
	f.StringVar(&fl.ca, "ca", "", "PEM file of the server's CA (default: with --config, the ca of an application served from the same host and port; else the system's roots)")
	f.StringVar(&fl.config, "config", "", "the agent's configuration file (its state_dir and applications)")
	f.StringVar(&fl.stateDir, "state-dir", "", "the agent's state directory")
	cmd.MarkFlagRequired("server")
	cmd.MarkFlagsMutuallyExclusive("token", "token-file")
	cmd.MarkFlagsOneRequired("token", "token-file")
	cmd.MarkFlagsMutuallyExclusive("config", "state-dir")
	cmd.MarkFlagsOneRequired("config", "state-dir")
	return cmd
}

func (e *env) agentEnroll(ctx context.Context, fl enrollFlags) error {
	dir, apps := fl.stateDir, []report.App(nil)
	if fl.config != "" {
		cfg, err := agent.Load(fl.config)
		if err != nil {
			return withHint(err, "docs/agent.md describes every key of the configuration file")
		}
		dir = cfg.StateDir
		for _, a := range cfg.Apps {
			apps = append(apps, report.App{App: a.Name, Version: a.Installed, Channel: a.Channel})
		}
		if fl.ca == "" {
			fl.ca = configCA(cfg.Apps, fl.server)
		}
	}
	if c, err := report.LoadCredentials(dir); err == nil {
		// Revoking the enrollment token would let this install ID enroll
		// again, but it also cuts off every other installation the token
		// enrolled: the hint names the revocation of this one
		// installation instead.
		return withHint(fmt.Errorf("agent enroll: %s is enrolled already, as installation %s with %s", dir, c.InstallID, c.Server),
			"nothing to do to keep reporting; to enroll anew, revoke this installation on the server (ferry installation revoke --repo REPO "+c.InstallID+
				") and enroll from a new state directory (a new install ID); revoking enrollment token "+c.TokenID+" instead would cut off every installation enrolled with it")
	}
	token, err := readSecret(fl.token, fl.tokenFile)
	if err != nil {
		return err
	}
	if fl.tokenFile != "" {
		e.warnReadableSecret(fl.tokenFile, "token file", useEnroll)
	}
	var ca []byte
	if fl.ca != "" {
		if ca, err = os.ReadFile(fl.ca); err != nil {
			return fmt.Errorf("agent enroll: --ca: %w", err)
		}
	}
	c, err := report.NewClient(fl.server, ca)
	if err != nil {
		return err
	}
	c.OnBusy = func(wait time.Duration) {
		fmt.Fprintf(e.stderr, "ferry: server busy, retrying in %ds\n", int(wait.Seconds()))
	}
	id, err := client.InstallID(dir)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	cred, err := c.Enroll(ctx, token, id, host, apps)
	if err != nil {
		return enrollHint(err)
	}
	cred.CA, cred.Enrolled = string(ca), time.Now().UTC().Truncate(time.Second)
	if err := cred.Save(dir); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "enrolled installation %s with %s (enrollment token %s); credential in %s\n",
		id, cred.Server, cred.TokenID, filepath.Join(dir, report.CredentialsFile))
	return nil
}

// configCA is the ca of the first application in apps whose repository
// is on the host and port of server, "" if none: an agent usually reports
// to the server it updates from, and that server's CA is in its config.
func configCA(apps []*agent.App, server string) string {
	s, err := url.Parse(server)
	if err != nil {
		return ""
	}
	for _, a := range apps {
		for _, u := range a.URLs {
			if p, err := url.Parse(u); err == nil && a.CA != "" && p.Scheme == s.Scheme && p.Host == s.Host {
				return a.CA
			}
		}
	}
	return ""
}

func enrollHint(err error) error {
	var ae *report.APIError
	if errors.As(err, &ae) && ae.Status == 401 {
		return withHint(err, "ask for a new enrollment token (ferry token create --enroll on the server; ferry token list shows its uses and expiry)")
	}
	if errors.As(err, &ae) && ae.Status == 429 {
		hint := "the server is still busy enrolling other machines"
		if ae.RetryAfter > 0 {
			hint += fmt.Sprintf(" (it asks to wait %ds)", int(ae.RetryAfter.Seconds()))
		}
		return withHint(err, hint+": run ferry agent enroll again later")
	}
	if errors.As(err, &ae) && ae.Status == 409 {
		// The server's rule (docs/reporting.md): an install ID enrolls
		// again only once the token it enrolled with is revoked. An
		// installation revoked on its own never does, and is answered 403
		// with what to do.
		return withHint(err, "put back the report-credentials.json removed from the state directory, if kept; or use a new state directory "+
			"(a new install ID and rollout cohort); or revoke on the server the enrollment token this install ID enrolled with "+
			"(ferry token revoke: it cuts off every installation enrolled with it) and enroll again with a new token")
	}
	return err
}

// readSecret is a token given inline or the first line of a file.
func readSecret(inline, file string) (string, error) {
	if inline != "" {
		return strings.TrimSpace(inline), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return strings.TrimSpace(tok), nil
}

// forward is an event.Observer whose target is set once the reporter is
// open (after the agent took its state directory).
type forward struct {
	mu sync.Mutex
	to event.Observer
}

func (f *forward) Observe(ev event.Event) {
	f.mu.Lock()
	to := f.to
	f.mu.Unlock()
	if to != nil {
		to.Observe(ev)
	}
}

func (f *forward) set(o event.Observer) {
	f.mu.Lock()
	f.to = o
	f.mu.Unlock()
}

// openEventLog points fw at the state directory's audit log
// (STATE_DIR/audit.log), which every agent keeps: through the reporter
// when the directory is enrolled (the reporter writes the log and queues
// each line), or the log alone when it is not (nil reporter). An agent
// enrolled later queues and sends the lines it wrote before (the
// reporter's reconcile), so the server sees the chain from its start.
// close closes what was opened.
func openEventLog(a *agent.Agent, dir string, log *slog.Logger, fw *forward) (rep *report.Reporter, close func(), err error) {
	rep, err = report.Open(report.Options{StateDir: dir, Logger: log, Linger: time.Second,
		Apps: func() []report.App { return statusApps(a.Status()) }})
	if errors.Is(err, report.ErrNotEnrolled) {
		l, err := audit.Open(filepath.Join(dir, report.AuditFile), audit.Options{})
		if err != nil {
			return nil, nil, err
		}
		fw.set(&auditObserver{l: l, log: log})
		return nil, func() { l.Close() }, nil
	}
	if err != nil {
		return nil, nil, err
	}
	fw.set(rep)
	return rep, func() { rep.Close() }, nil
}

// auditObserver writes each event to an audit log and logs the log's
// first failure once: the agent keeps updating without its log (updates
// matter more than their record), but says so.
type auditObserver struct {
	l      *audit.Log
	log    *slog.Logger
	warned atomic.Bool
}

func (o *auditObserver) Observe(ev event.Event) {
	o.l.Observe(ev)
	if err := o.l.Err(); err != nil && o.warned.CompareAndSwap(false, true) {
		o.log.Error("audit log: events are no longer recorded", "err", err.Error())
	}
}

func statusApps(st agent.Status) []report.App {
	out := make([]report.App, 0, len(st.Apps))
	for _, a := range st.Apps {
		out = append(out, report.App{App: a.App, Version: a.Installed, Channel: a.Channel})
	}
	return out
}

// flushReport sends what is queued before --once exits; a failure is a
// warning (the events stay queued for the next run).
func (e *env) flushReport(ctx context.Context, rep *report.Reporter) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := rep.Flush(ctx); err != nil {
		fmt.Fprintf(e.stderr, "ferry: warning: report: %d event(s) stay queued, not delivered: %v\n", rep.Stats().Depth, err)
	}
}

// reportStatusJSON is the "report" member of ferry agent status --json.
type reportStatusJSON struct {
	Server    string `json:"server"`
	InstallID string `json:"install_id"`
	report.Stats
}

// readReportStatus is the reporting part of the status (nil: not enrolled).
func readReportStatus(dir string) (*reportStatusJSON, error) {
	c, err := report.LoadCredentials(dir)
	if errors.Is(err, report.ErrNotEnrolled) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := report.ReadStats(filepath.Join(dir, report.QueueDir))
	if err != nil {
		return nil, err
	}
	return &reportStatusJSON{Server: c.Server, InstallID: c.InstallID, Stats: st}, nil
}

func (e *env) printReportStatus(rs *reportStatusJSON, now time.Time) {
	if rs == nil {
		fmt.Fprintln(e.stdout, "report: not enrolled")
		return
	}
	last := "never"
	if !rs.LastDelivery.IsZero() {
		last = stamp(rs.LastDelivery, now)
	}
	fmt.Fprintf(e.stdout, "report: %s: %d event(s) queued, %d dropped, last delivery %s\n", rs.Server, rs.Depth, rs.Dropped, last)
	if rs.LastError != "" {
		fmt.Fprintf(e.stdout, "report: last delivery error %s: %s\n", stamp(rs.LastErrorAt, now), rs.LastError)
	}
}
