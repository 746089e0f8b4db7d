package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/event"
)

// Run checks on the configured schedule until ctx is done (SIGTERM or
// SIGINT), then returns nil. Cancelling ctx stops scheduling at once and
// interrupts a download (it resumes at the next start), but never an
// install: a running install, its health check and any rollback finish
// first. Under systemd it sends READY=1 when it starts, WATCHDOG=1 while
// it runs, STATUS= after each cycle and STOPPING=1 when ctx is done.
//
// After a self-update (an application whose target is the agent's own
// executable) Run starts the new version with Options.Reexec between
// cycles; if that fails, the agent logs it and carries on.
func (a *Agent) Run(ctx context.Context) error {
	n := a.opts.Notifier
	wctx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	go n.Watchdog(wctx)
	stopped, noted := make(chan struct{}), make(chan struct{})
	defer func() { close(stopped); <-noted }()
	go func() {
		defer close(noted)
		select {
		case <-ctx.Done():
		case <-stopped:
			if ctx.Err() == nil {
				return
			}
		}
		a.events.Emit(event.AgentStopping, "", "signal: a running install finishes first")
		n.Notify("STOPPING=1", "STATUS=stopping: a running install finishes first")
	}()
	a.events.Emit(event.AgentStarted, "", "", "install_id", a.id, "apps", fmt.Sprint(len(a.cfg.Apps)))
	n.Notify("READY=1", "STATUS=started; checking "+a.appNames())
	for {
		rep := a.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if a.reexec != "" {
			if err := a.restart(n); err != nil {
				return err
			}
		}
		now := a.clock.Now()
		d := a.wait(now, &rep)
		a.status.next(now, now.Add(d))
		n.Status(summary(&rep, now.Add(d)))
		select {
		case <-ctx.Done():
			return nil
		case <-a.clock.After(d):
		}
	}
}

// wait is the time until the next cycle: the schedule's, or sooner when a
// deferred install's maintenance window opens first (plus jitter, so a
// fleet with one window does not install at one instant).
func (a *Agent) wait(now time.Time, rep *Report) time.Duration {
	d := a.sched.next(rep.OK())
	for _, r := range rep.Apps {
		if r.Result == ResultDeferred && !r.Opens.IsZero() {
			d = min(d, r.Opens.Sub(now)+a.sched.spread())
		}
	}
	return max(d, 0)
}

// restart starts the agent's new version in place of this process; the
// lock is released for it first and taken back if the start fails.
func (a *Agent) restart(n *Notifier) error {
	path := a.reexec
	a.reexec = ""
	a.events.Emit(event.AgentReexec, "", "self-update installed", "path", path)
	n.Status("re-executing the new version " + path)
	a.lock.Close()
	err := a.opts.Reexec(path)
	lock, lerr := lockState(a.cfg.StateDir)
	if lerr != nil {
		// Another agent took the directory in between: this one must not
		// go on.
		return fmt.Errorf("agent: after the re-exec of %s (%v): %w", path, err, lerr)
	}
	a.lock = lock
	if err != nil {
		a.events.Emit(event.CheckFailed, "", "re-exec of the new version failed: "+err.Error(), "path", path)
	}
	return nil
}

func (a *Agent) appNames() string {
	var names []string
	for _, app := range a.cfg.Apps {
		names = append(names, app.Name)
	}
	return strings.Join(names, ", ")
}

// summary is the STATUS= line after a cycle.
func summary(rep *Report, next time.Time) string {
	var parts []string
	for _, r := range rep.Apps {
		s := r.App + " " + r.Result
		if r.Version != "" {
			s += " " + r.Version
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ") + "; next check " + next.Format(time.RFC3339)
}
