package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
)

// Results of one application's check (AppStatus.Result, Report).
const (
	ResultUpToDate   = "up-to-date"
	ResultUpdated    = "updated"
	ResultRolledBack = "rolled-back"
	ResultDeferred   = "deferred"
	ResultError      = "error"
)

// AppReport is what one cycle did for one application.
type AppReport struct {
	App     string
	Result  string // one of the Result constants
	From    string // the version installed before
	Version string // the version installed now
	Offered string // the release offered, tried or downloaded
	Detail  string // the reason, or the error
	Err     error  // set when Result is ResultError
	Opens   time.Time
}

// Report is what one cycle did.
type Report struct {
	Apps []AppReport
	// Interrupted: the context ended the cycle before every
	// application was checked.
	Interrupted bool
}

// OK reports whether no application's check failed.
func (r *Report) OK() bool {
	for _, a := range r.Apps {
		if a.Result == ResultError {
			return false
		}
	}
	return true
}

// ExitCode is --once's exit status: 1 if any check failed, else 2 if any
// new release was rolled back, else 0 (every application up to date,
// updated, or downloaded and waiting for its maintenance window).
func (r *Report) ExitCode() int {
	code := 0
	for _, a := range r.Apps {
		switch a.Result {
		case ResultError:
			return 1
		case ResultRolledBack:
			code = 2
		}
	}
	return code
}

// RunOnce runs one cycle: every repository refreshed once, then every
// application checked and, inside its maintenance window, updated. A
// self-update is installed but not re-executed (the new version runs at
// the next start).
func (a *Agent) RunOnce(ctx context.Context) Report {
	return a.cycle(ctx)
}

// cycle refreshes each repository once and checks each of its
// applications. Once ctx is done, it starts nothing new.
func (a *Agent) cycle(ctx context.Context) Report {
	var rep Report
	for _, g := range a.groups {
		if ctx.Err() != nil {
			rep.Interrupted = true
			break
		}
		_, rerr := g.repo.Refresh(ctx)
		now := a.clock.Now()
		if rerr == nil {
			for _, app := range g.apps {
				a.status.update(app.Name, now, func(s *AppStatus) { s.LastRefresh = &now })
			}
		}
		for _, app := range g.apps {
			if ctx.Err() != nil {
				rep.Interrupted = true
				break
			}
			a.opts.Notifier.Status("checking " + app.Name)
			r := a.check(ctx, g.repo, app, rerr)
			a.record(app, r)
			rep.Apps = append(rep.Apps, r)
		}
	}
	return rep
}

// check updates one application, or only downloads outside its window.
func (a *Agent) check(ctx context.Context, repo Repository, app *App, refreshErr error) AppReport {
	r := AppReport{App: app.Name, From: app.Installed, Version: app.Installed}
	if app.Strategy == "binary" {
		if fi, err := os.Stat(filepath.Dir(app.Target)); err != nil || !fi.IsDir() {
			return a.failed(r, fmt.Errorf("app %s: install.target %s: no directory %s to install into", app.Name, app.Target, filepath.Dir(app.Target)))
		}
	}
	inst := uninterrupted(a.installer(app))
	st, err := inst.State(ctx)
	if err == nil {
		r.From = installedVersion(app, st)
		r.Version = r.From
	}
	if err == nil {
		err = refreshErr
	}
	if err != nil {
		return a.failed(r, err)
	}
	t := Target{Name: app.Name, Platform: app.Platform, Channel: app.Channel, Installed: r.From,
		InstallID: a.id, Prerelease: app.Prerelease}
	now := a.clock.Now()
	var out Outcome
	inside := app.Window.Contains(now)
	if inside {
		out, err = repo.Update(ctx, t, inst)
	} else {
		out, err = repo.Download(ctx, t, inst)
	}
	r.From, r.Version, r.Offered, r.Detail = out.From, out.Version, out.Offered, out.Reason
	switch {
	case out.RolledBack:
		r.Result = ResultRolledBack
		r.Detail = fmt.Sprintf("%s failed (%s): rolled back to %s and marked bad", out.Offered, out.Reason, out.Version)
	case err != nil:
		return a.failed(r, err)
	case out.Updated:
		r.Result = ResultUpdated
		r.Detail = fmt.Sprintf("%s → %s", orNone(out.From), out.Version)
		a.selfUpdated(app, out)
	case !inside && out.Offered != "":
		r.Result, r.Opens = ResultDeferred, app.Window.Next(now)
		r.Detail = fmt.Sprintf("%s downloaded and verified; installs when the maintenance window opens (%s)", out.Offered, r.Opens.Format(time.RFC3339))
		a.events.For(app.Name).Emit(event.InstallDeferred, out.Offered, "outside the maintenance window "+app.Window.String(), "opens", r.Opens.Format(time.RFC3339))
	default:
		r.Result = ResultUpToDate
		if r.Detail == "" {
			r.Detail = "up to date"
		}
	}
	return r
}

// installedVersion is the version the agent tells the client is
// installed. The configured one (the version before the agent's first
// install) counts only while the installer has no record at all: once it
// has one, the record's version counts, and after a lost record (R52) it
// is "" so that the client decides from the live executable's signed
// sha256 or refuses; the stale configured version would let the rollout
// move the machine below what runs, without a signed pull (R49).
func installedVersion(app *App, st install.State) string {
	switch {
	case st.Installed != nil && st.Installed.Version != "":
		return st.Installed.Version
	case st.Lost || st.Previous != nil || len(st.History) > 0:
		return ""
	}
	return app.Installed
}

func (a *Agent) failed(r AppReport, err error) AppReport {
	r.Result, r.Err, r.Detail = ResultError, err, oneLine(err)
	var re *install.RollbackError
	if errors.As(err, &re) {
		r.Detail = re.Error()
	}
	return r
}

// record writes one application's report into the status, and says so
// loudly when it is stale.
func (a *Agent) record(app *App, r AppReport) {
	now := a.clock.Now()
	a.status.update(app.Name, now, func(s *AppStatus) {
		s.LastCheck, s.Result, s.Detail = &now, r.Result, r.Detail
		if r.Version != "" {
			s.Installed = r.Version
		}
		if r.Err != nil {
			s.LastError, s.LastErrorAt = r.Detail, &now
		}
	})
	s := a.status.app(app.Name)
	if s.Stale {
		last := "never"
		if s.LastRefresh != nil {
			last = s.LastRefresh.Format(time.RFC3339)
		}
		a.events.For(app.Name).Emit(event.Stale, s.Installed,
			fmt.Sprintf("no successful refresh for longer than %v", a.cfg.MaxStaleness),
			"last_refresh", last, "max_staleness", a.cfg.MaxStaleness.String())
	}
}

// selfUpdated notes a new version of the agent's own executable, which
// Run starts between cycles.
func (a *Agent) selfUpdated(app *App, out Outcome) {
	if app.Strategy == "binary" && a.isSelf(app.Target) {
		a.reexec = app.Target
	}
}

func (a *Agent) isSelf(target string) bool {
	if a.opts.Executable == "" {
		return false
	}
	t, err1 := os.Stat(target)
	e, err2 := os.Stat(a.opts.Executable)
	return err1 == nil && err2 == nil && os.SameFile(t, e)
}

// installer is the install strategy of app.
func (a *Agent) installer(app *App) client.Installer {
	var health *install.Health
	if len(app.HealthCmd) > 0 || app.HealthURL != "" {
		health = &install.Health{Cmd: app.HealthCmd, URL: app.HealthURL, Timeout: app.Timeout, Retries: app.Retries}
	}
	if app.Strategy == "slots" {
		return &install.Slots{Root: app.Root, App: app.Name, Keep: app.Keep, Health: health, Restart: app.Restart, Events: a.observer()}
	}
	return &install.Binary{App: app.Name, Target: app.Target, StateDir: filepath.Join(a.cfg.StateDir, "apps", app.Name),
		Health: health, Restart: app.Restart, Events: a.observer()}
}

// observe takes what the status needs from the events of the client and
// the installers: this installation's cohort for the newest release.
func (a *Agent) observe(e event.Event) {
	b, okB := e.Evidence["bucket"]
	bp, okP := e.Evidence["basis_points"]
	if e.App == "" || !okB || !okP {
		return
	}
	bucket, err1 := strconv.Atoi(b)
	share, err2 := strconv.Atoi(bp)
	if err1 != nil || err2 != nil {
		return
	}
	v := e.Version
	if ev := e.Evidence["release"]; ev != "" {
		v = ev
	}
	a.status.update(e.App, a.clock.Now(), func(s *AppStatus) {
		s.Cohort = &Cohort{Version: v, Bucket: bucket, BasisPoints: share}
	})
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
