package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// StatusFile is the name of the status file in the state directory.
const StatusFile = "agent-status.json"

// StatusFormat names the status file's format.
const StatusFormat = "ferry-agent-status/v1"

// maxStatusSize bounds a status file read back.
const maxStatusSize = 4 << 20

// Status is what STATEDIR/agent-status.json holds (docs/agent.md): the
// agent rewrites it atomically after each application's check.
type Status struct {
	Format       string      `json:"format"`
	PID          int         `json:"pid"`
	InstallID    string      `json:"install_id"`
	Config       string      `json:"config,omitempty"`
	Started      time.Time   `json:"started"`
	Updated      time.Time   `json:"updated"`
	NextCheck    *time.Time  `json:"next_check,omitempty"`
	MaxStaleness string      `json:"max_staleness"` // a Go duration: 24h0m0s
	Apps         []AppStatus `json:"apps"`
}

// AppStatus is one application's line of the status.
type AppStatus struct {
	App       string  `json:"app"`
	Installed string  `json:"installed,omitempty"` // the installed version, "" if unknown
	Channel   string  `json:"channel"`
	Cohort    *Cohort `json:"cohort,omitempty"` // for the newest release, when the check told
	// LastCheck is when the last check ended, Result what it found:
	// "up-to-date", "updated", "rolled-back", "deferred" (downloaded,
	// waiting for the maintenance window) or "error"; Detail says more.
	LastCheck   *time.Time `json:"last_check,omitempty"`
	Result      string     `json:"result,omitempty"`
	Detail      string     `json:"detail,omitempty"`
	LastError   string     `json:"last_error,omitempty"` // the last failed check's error, kept after later good checks
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// LastRefresh is the last successful refresh of the application's
	// repository; Since is when this state directory began to manage
	// the application. Stale: no successful refresh for longer than
	// MaxStaleness since the later of the two (R15).
	LastRefresh *time.Time `json:"last_refresh,omitempty"`
	Since       time.Time  `json:"since"`
	Stale       bool       `json:"stale"`
}

// Cohort is this installation's place in the rollout of one release.
type Cohort struct {
	Version     string `json:"version"`
	Bucket      int    `json:"bucket"`       // 0..9999
	BasisPoints int    `json:"basis_points"` // the release's share; in the cohort when Bucket < BasisPoints
}

// StaleAt reports whether a is stale at now under limit.
func (a *AppStatus) StaleAt(now time.Time, limit time.Duration) bool {
	from := a.Since
	if a.LastRefresh != nil && a.LastRefresh.After(from) {
		from = *a.LastRefresh
	}
	return !from.IsZero() && now.Sub(from) > limit
}

// ReadStatus reads STATEDIR/agent-status.json.
func ReadStatus(stateDir string) (*Status, error) {
	name := filepath.Join(stateDir, StatusFile)
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("agent status: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStatusSize+1))
	if err != nil {
		return nil, fmt.Errorf("agent status %s: %w", name, err)
	}
	if len(b) > maxStatusSize {
		return nil, fmt.Errorf("agent status %s: larger than %d bytes", name, maxStatusSize)
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("agent status %s: %w", name, err)
	}
	if s.Format != StatusFormat {
		return nil, fmt.Errorf("agent status %s: format %q, want %q", name, s.Format, StatusFormat)
	}
	return &s, nil
}

// statusBook keeps the status in memory and writes it after each change.
type statusBook struct {
	mu    sync.Mutex
	path  string
	s     Status
	limit time.Duration
}

func newStatusBook(stateDir string, c *Config, id string, now time.Time) *statusBook {
	b := &statusBook{path: filepath.Join(stateDir, StatusFile), limit: c.MaxStaleness}
	b.s = Status{Format: StatusFormat, PID: os.Getpid(), InstallID: id, Config: c.File,
		Started: now, Updated: now, MaxStaleness: c.MaxStaleness.String()}
	prev, err := ReadStatus(stateDir)
	if err != nil {
		prev = &Status{}
	}
	for _, a := range c.Apps {
		as := AppStatus{App: a.Name, Channel: a.Channel, Since: now}
		for _, p := range prev.Apps {
			if p.App == a.Name { // carried over: a restart does not hide staleness
				as = p
				as.Channel = a.Channel
				if as.Since.IsZero() {
					as.Since = now
				}
			}
		}
		b.s.Apps = append(b.s.Apps, as)
	}
	return b
}

// update changes one application's status and writes the file.
func (b *statusBook) update(app string, now time.Time, f func(*AppStatus)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.s.Apps {
		if b.s.Apps[i].App == app {
			f(&b.s.Apps[i])
		}
	}
	return b.writeLocked(now)
}

// app returns a copy of one application's status.
func (b *statusBook) app(name string) AppStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.s.Apps {
		if a.App == name {
			return a
		}
	}
	return AppStatus{}
}

// next records when the next cycle starts and writes the file.
func (b *statusBook) next(now, at time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.NextCheck = &at
	return b.writeLocked(now)
}

func (b *statusBook) writeLocked(now time.Time) error {
	b.s.Updated = now
	for i := range b.s.Apps {
		b.s.Apps[i].Stale = b.s.Apps[i].StaleAt(now, b.limit)
	}
	js, err := json.MarshalIndent(&b.s, "", "  ")
	if err != nil {
		return err
	}
	err = atomicfile.WriteFile(b.path, append(js, '\n'), 0o600)
	if errors.Is(err, atomicfile.ErrNotDurable) {
		return nil // in place; a status is rewritten soon anyway
	}
	return err
}

// snapshot returns a copy of the status.
func (b *statusBook) snapshot() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.Apps = append([]AppStatus(nil), b.s.Apps...)
	return s
}
