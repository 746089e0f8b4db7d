package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/mod/semver"

	"github.com/ferry-updates/ferry/install"
)

// Installer puts a verified artifact in place. *install.Binary and
// *install.Slots satisfy it.
//
// State returns the installer's state after finishing or rolling back any
// install that a crash interrupted; an error (a busy lock, a rollback that
// failed and needs a human) makes Update install nothing. Apply must
// re-verify the bytes it installs against a.Length and a.Hashes; its error
// wraps install.ErrRolledBack when the new version failed and the previous
// one is back, or is a *install.RollbackError when even that failed.
type Installer interface {
	State(ctx context.Context) (install.State, error)
	Apply(ctx context.Context, a install.Artifact) (install.Result, error)
}

var (
	_ Installer = (*install.Binary)(nil)
	_ Installer = (*install.Slots)(nil)
)

// Outcome says what Update did.
type Outcome struct {
	// From is the version installed before: the higher of Config.Installed
	// and the installer's record ("" if neither knows one).
	From string
	// Release is the signed release that was installed or tried; nil when
	// there was nothing newer to install.
	Release *Release
	// Result is what the installer reported. On a rollback, Result.Version
	// is the version running again and Result.Reason says why.
	Result install.Result
	// Skipped lists newer signed versions that were not tried because they
	// are marked bad on this machine, with the recorded reason, oldest
	// first. A version marked bad is never retried; a newer release is.
	Skipped []Skipped
}

// Skipped is a release passed over because it failed here before.
type Skipped struct {
	Version string
	Reason  string
}

// Updated reports whether a new version is now installed.
func (o *Outcome) Updated() bool {
	return o != nil && o.Release != nil && !o.Result.RolledBack && !o.Result.Unchanged && o.Result.Version != ""
}

// Update checks for the newest release and installs it with inst, in one
// call:
//
//  1. inst.State finishes or rolls back an interrupted install and tells
//     which version is installed and which versions are marked bad;
//  2. the newest signed release above the installed version that is not
//     marked bad is picked (nil Release, nil error: nothing to do, nothing
//     downloaded or installed);
//  3. it is downloaded and verified into a private 0700 directory under
//     StateDir/staging, which is removed afterwards;
//  4. inst.Apply gets an install.Artifact whose Length and Hashes come from
//     the signed metadata, never from the file, and re-verifies the bytes it
//     installs.
//
// Apply's error is returned as is, with the Outcome filled in so far: test
// it with errors.Is(err, install.ErrRolledBack) and
// errors.As(err, new(*install.RollbackError)). After a successful update
// the Client treats the new version as installed.
func (c *Client) Update(ctx context.Context, inst Installer) (*Outcome, error) {
	if inst == nil {
		return nil, errors.New("update: no installer")
	}
	st, err := inst.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", c.cfg.App, err)
	}
	p := c.policy()
	p.installed = higher(p.installed, st.Installed)
	p.bad = map[string]bool{}
	for v := range st.Bad {
		p.bad[v] = true
	}
	out := &Outcome{From: p.installed}
	targets, err := c.targetsUnder(ctx)
	if err != nil {
		return out, fmt.Errorf("check %s: %w", c.cfg.App, err)
	}
	out.Skipped = skipped(targets, p, st.Bad)
	rel := pick(targets, p)
	if rel == nil {
		return out, nil
	}
	out.Release = rel
	res, err := c.install(ctx, inst, rel, p)
	out.Result = res
	if err != nil {
		return out, err
	}
	c.cfg.Installed = rel.Version
	return out, nil
}

// install downloads rel into a fresh private directory and applies it.
func (c *Client) install(ctx context.Context, inst Installer, rel *Release, p policy) (install.Result, error) {
	staging := filepath.Join(c.cfg.StateDir, "staging")
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return install.Result{}, fmt.Errorf("update %s: %w", c.cfg.App, err)
	}
	dir, err := os.MkdirTemp(staging, "update-") // 0700
	if err != nil {
		return install.Result{}, fmt.Errorf("update %s: %w", c.cfg.App, err)
	}
	defer os.RemoveAll(dir)
	file, signed, err := c.download(ctx, rel, dir, p)
	if err != nil {
		return install.Result{}, err
	}
	*rel = *signed
	return inst.Apply(ctx, artifact(signed, file))
}

// artifact describes the verified file for the installer. Length, hashes,
// version and kind come from signed metadata only.
func artifact(signed *Release, file string) install.Artifact {
	hashes := make(map[string][]byte, len(signed.Hashes))
	for alg, h := range signed.Hashes {
		hashes[alg] = append([]byte(nil), h...)
	}
	return install.Artifact{
		File:    file,
		Length:  signed.Length,
		Hashes:  hashes,
		App:     signed.App,
		Version: signed.Version,
		Kind:    signed.Kind,
		Name:    path.Base(signed.Path),
	}
}

// higher returns the higher of the configured version and the one the
// installer recorded (ignored unless it is semver): the installer's record
// can only raise the floor, so it never causes a downgrade.
func higher(cfg string, rec *install.Installed) string {
	if rec == nil || !semver.IsValid("v"+rec.Version) {
		return cfg
	}
	if cfg == "" || semver.Compare("v"+rec.Version, "v"+cfg) > 0 {
		return rec.Version
	}
	return cfg
}

// skipped lists the signed releases that p would offer if they were not
// marked bad, oldest first.
func skipped(targets map[string]*metadata.TargetFiles, p policy, bad map[string]install.Bad) []Skipped {
	if len(bad) == 0 {
		return nil
	}
	q := p
	q.bad = nil
	seen := map[string]bool{}
	var out []Skipped
	for path, tf := range targets {
		rel, err := q.release(path, tf)
		if err != nil || !q.allows(rel.Version) || !p.bad[rel.Version] || seen[rel.Version] {
			continue
		}
		seen[rel.Version] = true
		out = append(out, Skipped{Version: rel.Version, Reason: bad[rel.Version].Reason})
	}
	sort.Slice(out, func(i, j int) bool { return semver.Compare("v"+out[i].Version, "v"+out[j].Version) < 0 })
	return out
}
