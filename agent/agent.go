package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/internal/lockfile"
	"github.com/ferry-updates/ferry/internal/sentinel"
)

// ErrBusy is wrapped by New's error when another agent holds the state
// directory (it is client.ErrBusy and install.ErrBusy).
var ErrBusy = sentinel.ErrBusy

// Clock is the agent's time: Now, and a channel that fires after d.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options are what New needs besides the configuration. The zero value
// runs the real thing: real clock, package client, install.Reexec, no
// systemd notifications.
type Options struct {
	Events   event.Observer // every event of the agent, the client and the installers
	Clock    Clock
	Rand     func(n int64) int64 // jitter: a number in [0, n)
	Notifier *Notifier
	// NewRepository opens one repository; default NewRepository.
	NewRepository func(RepositoryConfig) (Repository, error)
	// Executable is the agent's own program, to recognise an application
	// that is the agent itself; default os.Executable.
	Executable string
	// Reexec starts the agent's new version after a self-update; default
	// install.Reexec (replaces the process; returns only on failure).
	Reexec func(path string) error
}

// Agent keeps the applications of one configuration up to date. It holds
// the state directory's lock from New to Close. Run and RunOnce must not
// be called concurrently.
type Agent struct {
	cfg    *Config
	opts   Options
	clock  Clock
	events event.Emitter
	lock   io.Closer
	id     string
	groups []*group
	status *statusBook
	sched  *schedule
	reexec string // the agent's new executable, after a self-update
}

// group is one repository and the applications that use it.
type group struct {
	repo Repository
	apps []*App
}

// New takes the state directory's lock, creates or reads the install ID,
// and opens every repository.
func New(cfg *Config, opts Options) (*Agent, error) {
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.NewRepository == nil {
		opts.NewRepository = NewRepository
	}
	if opts.Reexec == nil {
		opts.Reexec = install.Reexec
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state directory: %w", err)
	}
	lock, err := lockState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, opts: opts, clock: opts.Clock, lock: lock, sched: newSchedule(cfg, opts.Rand)}
	if err := a.open(); err != nil {
		lock.Close()
		return nil, err
	}
	return a, nil
}

func (a *Agent) open() error {
	a.events = event.Emitter{Observer: a.observer(), Now: a.clock.Now}
	id, err := client.InstallID(a.cfg.StateDir)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.id = id
	a.status = newStatusBook(a.cfg.StateDir, a.cfg, id, a.clock.Now())
	if a.opts.Executable == "" {
		a.opts.Executable, _ = os.Executable()
	}
	byRepo := map[string]*group{}
	for _, app := range a.cfg.Apps {
		if g := byRepo[app.Repo()]; g != nil {
			g.apps = append(g.apps, app)
			continue
		}
		repo, err := a.openRepo(app)
		if err != nil {
			return fmt.Errorf("agent: app %q: %w", app.Name, err)
		}
		g := &group{repo: repo, apps: []*App{app}}
		byRepo[app.Repo()] = g
		a.groups = append(a.groups, g)
	}
	return a.status.update("", a.clock.Now(), func(*AppStatus) {})
}

func (a *Agent) openRepo(app *App) (Repository, error) {
	if _, err := os.Stat(app.TrustedRoot); err != nil {
		return nil, fmt.Errorf("trusted_root: %w", err)
	}
	var pool *x509.CertPool
	if app.CA != "" {
		b, err := os.ReadFile(app.CA)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("ca %s: no PEM certificate", app.CA)
		}
	}
	return a.opts.NewRepository(RepositoryConfig{
		URLs: app.URLs, TrustedRootFile: app.TrustedRoot, RootCAs: pool,
		StateDir: filepath.Join(a.cfg.StateDir, "repos", app.repoDir()),
		Events:   a.observer(), Now: a.clock.Now,
	})
}

// observer is where every event goes: Options.Events and the status.
func (a *Agent) observer() event.Observer {
	return event.Tee(a.opts.Events, event.Func(a.observe))
}

// lockState takes STATEDIR/agent.lock: one agent per state directory.
func lockState(dir string) (io.Closer, error) {
	l, err := lockfile.Lock(filepath.Join(dir, "agent.lock"))
	var held *lockfile.HeldError
	switch {
	case errors.As(err, &held):
		who := "another agent"
		if held.PID > 0 {
			who = fmt.Sprintf("the agent with pid %d", held.PID)
		}
		return nil, fmt.Errorf("agent: state directory %s is %w: %s runs with it; one agent per state directory", dir, ErrBusy, who)
	case err != nil:
		return nil, fmt.Errorf("agent: state directory %s: %w", dir, err)
	}
	return l, nil
}

// InstallID is this installation's ID.
func (a *Agent) InstallID() string { return a.id }

// Status returns a copy of the current status.
func (a *Agent) Status() Status { return a.status.snapshot() }

// Close releases the state directory.
func (a *Agent) Close() error { return a.lock.Close() }

// Holder reports whether an agent holds the state directory now, and its
// pid (0 if unknown). It takes and at once releases the lock when nobody
// holds it.
func Holder(stateDir string) (pid int, running bool, err error) {
	l, err := lockfile.Lock(filepath.Join(stateDir, "agent.lock"))
	var held *lockfile.HeldError
	switch {
	case errors.As(err, &held):
		return held.PID, true, nil
	case err != nil:
		return 0, false, err
	}
	return 0, false, l.Close()
}
