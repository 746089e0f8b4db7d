package agent

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/internal/atomicfile"
)

// Target is one application as the agent asks its repository about it.
type Target struct {
	Name       string
	Platform   string
	Channel    string
	Installed  string // the installed version, "" if unknown
	InstallID  string // this installation's ID (STATEDIR/install-id)
	Prerelease bool
}

// Outcome is what one Update of one application did.
type Outcome struct {
	From       string // the version installed before ("" if unknown)
	Version    string // the version installed now ("" if unknown)
	Offered    string // the release offered and tried or downloaded; "" when nothing was offered
	Reason     string // why: the rollout's reason, or the rollback's
	Updated    bool   // Version is newly installed and healthy
	RolledBack bool   // Offered failed and From runs again
}

// Repository is one repository's client, shared by every application that
// uses it. The agent calls Refresh once per cycle, then Update (or
// Download, outside a maintenance window) per application, all from one
// goroutine.
//
// Refresh's error means nothing was learnt: the agent does not call Update
// for the repository's applications in that cycle. Update's error wraps
// install.ErrRolledBack when the offered release failed its health check
// and the previous one is back (the Outcome says which), or is a
// *install.RollbackError; any other error is a failed check. Download
// downloads and verifies what Update would install into the repository's
// cache, and installs nothing.
type Repository interface {
	Refresh(ctx context.Context) (changed bool, err error)
	Update(ctx context.Context, t Target, inst client.Installer) (Outcome, error)
	Download(ctx context.Context, t Target, inst client.Installer) (Outcome, error)
}

// RepositoryConfig is what opens one repository (Options.NewRepository).
type RepositoryConfig struct {
	URLs            []string
	TrustedRootFile string
	RootCAs         *x509.CertPool // nil: the system's roots
	StateDir        string         // private: trusted metadata, download cache
	Events          event.Observer
	Now             func() time.Time
}

// clientRepository is a Repository over client.Repository.
type clientRepository struct {
	r     *client.Repository
	cache string // the client's download cache, StateDir/downloads
}

// NewRepository opens a repository with package client.
func NewRepository(cfg RepositoryConfig) (Repository, error) {
	r, err := client.NewRepository(client.RepositoryConfig{
		URLs: cfg.URLs, TrustedRootFile: cfg.TrustedRootFile, StateDir: cfg.StateDir,
		RootCAs: cfg.RootCAs, Now: cfg.Now, Events: cfg.Events,
	})
	if err != nil {
		return nil, err
	}
	return &clientRepository{r: r, cache: filepath.Join(cfg.StateDir, "downloads")}, nil
}

func (c *clientRepository) Refresh(ctx context.Context) (bool, error) { return c.r.Refresh(ctx) }

func (c *clientRepository) Update(ctx context.Context, t Target, inst client.Installer) (Outcome, error) {
	out, err := c.r.Update(ctx, client.App{Name: t.Name, Platform: t.Platform, Channel: t.Channel,
		Installed: t.Installed, InstallID: t.InstallID, Prerelease: t.Prerelease}, inst)
	return outcome(t, out, err), err
}

func (c *clientRepository) Download(ctx context.Context, t Target, inst client.Installer) (Outcome, error) {
	o, err := c.Update(ctx, t, &parking{Installer: inst, cache: c.cache})
	if errors.Is(err, errParked) {
		err = nil
	}
	o.Updated, o.RolledBack, o.Version = false, false, o.From
	return o, err
}

func outcome(t Target, out *client.Outcome, err error) Outcome {
	o := Outcome{From: t.Installed, Version: t.Installed}
	if out == nil {
		return o
	}
	o.From, o.Version, o.Reason = out.From, out.From, out.Choice.Reason
	if out.Release != nil {
		o.Offered = out.Release.Version
	}
	switch {
	case errors.Is(err, install.ErrRolledBack):
		o.RolledBack, o.Version, o.Reason = true, out.Result.Version, out.Result.Reason
	case err == nil && out.Updated():
		o.Updated, o.Version = true, out.Result.Version
	case err == nil && out.Result.Unchanged:
		o.Version = out.Result.Version
	}
	return o
}

// errParked is parking's Apply error: the files are in the cache.
var errParked = errors.New("downloaded and verified; not installed outside the maintenance window")

// parking is an Installer that installs nothing: it moves each verified
// file it is handed back into the client's download cache
// (STATEDIR/downloads/SHA256HEX, see package client), where the next
// Update finds it, verifies it again and installs it without downloading.
type parking struct {
	client.Installer
	cache string
}

func (p *parking) Apply(ctx context.Context, a install.Artifact) (install.Result, error) {
	if err := p.park(a); err != nil {
		return install.Result{}, err
	}
	return install.Result{}, errParked
}

func (p *parking) ApplyAll(ctx context.Context, arts []install.Artifact) (install.Result, error) {
	for _, a := range arts {
		if err := p.park(a); err != nil {
			return install.Result{}, err
		}
	}
	return install.Result{}, errParked
}

func (p *parking) park(a install.Artifact) error {
	sum := a.Hashes["sha256"]
	if len(sum) == 0 {
		return fmt.Errorf("keep %s %s for the maintenance window: no sha256", a.App, a.Version)
	}
	if err := atomicfile.Rename(a.File, filepath.Join(p.cache, hex.EncodeToString(sum))); err != nil {
		return fmt.Errorf("keep %s %s for the maintenance window: %w", a.App, a.Version, err)
	}
	return nil
}

// The installers the agent builds, wrapped so that no install is
// cancelled: once a swap may begin, a shutdown waits for it (the install,
// its health check and any rollback) to finish. Each wrapper keeps every
// method the client looks for (ApplyAll, Revert, RevertAll), so a signed
// pull still switches back to a version kept on disk.
type (
	binaryNoCancel struct{ b *install.Binary }
	slotsNoCancel  struct{ s *install.Slots }
	// noCancel is the wrapper of any other installer.
	noCancel struct{ client.Installer }
)

var (
	_ install.Reverter      = binaryNoCancel{}
	_ client.MultiInstaller = slotsNoCancel{}
	_ install.Reverter      = slotsNoCancel{}
)

func keep(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (w binaryNoCancel) State(ctx context.Context) (install.State, error) {
	return w.b.State(keep(ctx))
}
func (w binaryNoCancel) Apply(ctx context.Context, a install.Artifact) (install.Result, error) {
	return w.b.Apply(keep(ctx), a)
}
func (w binaryNoCancel) Revert(ctx context.Context, a install.Artifact) (install.Result, error) {
	return w.b.Revert(keep(ctx), a)
}

func (w slotsNoCancel) State(ctx context.Context) (install.State, error) { return w.s.State(keep(ctx)) }
func (w slotsNoCancel) Apply(ctx context.Context, a install.Artifact) (install.Result, error) {
	return w.s.Apply(keep(ctx), a)
}
func (w slotsNoCancel) ApplyAll(ctx context.Context, arts []install.Artifact) (install.Result, error) {
	return w.s.ApplyAll(keep(ctx), arts)
}
func (w slotsNoCancel) Revert(ctx context.Context, a install.Artifact) (install.Result, error) {
	return w.s.Revert(keep(ctx), a)
}
func (w slotsNoCancel) RevertAll(ctx context.Context, arts []install.Artifact) (install.Result, error) {
	return w.s.RevertAll(keep(ctx), arts)
}

func (n noCancel) State(ctx context.Context) (install.State, error) {
	return n.Installer.State(keep(ctx))
}
func (n noCancel) Apply(ctx context.Context, a install.Artifact) (install.Result, error) {
	return n.Installer.Apply(keep(ctx), a)
}

// uninterrupted wraps inst so that no install is cancelled by ctx.
func uninterrupted(inst client.Installer) client.Installer {
	switch i := inst.(type) {
	case *install.Binary:
		return binaryNoCancel{i}
	case *install.Slots:
		return slotsNoCancel{i}
	}
	return noCancel{inst}
}
