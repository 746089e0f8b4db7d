package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
	"github.com/ferry-updates/ferry/release"
	"github.com/ferry-updates/ferry/rollout"
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
	// From is the version installed before: the higher of App.Installed
	// and the installer's record ("" if neither knows one).
	From string
	// Release is the signed release that was installed or tried; nil when
	// there was nothing to install.
	Release *Release
	// Result is what the installer reported. On a rollback, Result.Version
	// is the version running again and Result.Reason says why.
	Result install.Result
	// Files are all the signed files of Release (one release may have
	// several: a binary, docs, an archive), sorted by path. Update
	// downloads and verifies every one before it installs any (R47).
	Files []*Release
	// Skipped lists newer signed versions that were not tried because they
	// are marked bad on this machine, with the recorded reason, oldest
	// first. A version marked bad is never retried; a newer release is.
	Skipped []Skipped
	// Choice is the rollout decision the update followed: the version
	// (or "" for nothing to do), whether it is a downgrade and why.
	Choice rollout.Choice
	// Held is the newest signed version the rollout decisions hold back
	// from this installation (see Offer.Held), or "".
	Held string
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

// Update checks what app should install (as Check does, on the trusted
// state of the last Refresh) and installs it with inst, in one call:
//
//  1. inst.State finishes or rolls back an interrupted install and tells
//     which version is installed and which versions are marked bad;
//  2. the rollout decision is taken over the signed releases that are not
//     marked bad (nil Release, nil error: nothing to do, nothing
//     downloaded or installed; Outcome.Choice says why);
//  3. a signed pull of the installed version leads to an older release
//     (Choice.Downgrade): an installer that is an install.Reverter first
//     tries to switch back to the copy it kept on disk, re-verified
//     against the signed length and hashes; when it has none
//     (install.ErrNotOnDisk) the release is downloaded and applied;
//  4. every signed file of the release (same app, version and platform)
//     is downloaded and verified into a private 0700 directory under
//     StateDir/staging, which is removed afterwards; if any one is missing
//     or bad, nothing is installed (R47);
//  5. the installer gets install.Artifacts whose Length and Hashes come
//     from the signed metadata, never from the files, and re-verifies the
//     bytes it installs: an installer with ApplyAll (install.Slots) gets
//     them all, to install into one slot; any other (install.Binary) gets
//     the one file named like the application, or the release's only
//     "binary" file, and the other files are ignored with a
//     release.file_ignored event. A release with several files and no
//     such one is refused.
//
// StateDir/staging and StateDir/downloads must be directories (not
// symlinks) that only this user can use: owned by it, with no group or
// other permissions (R51); otherwise Update refuses to download anything
// (a staging.refused event).
//
// Apply's error is returned as is, with the Outcome filled in so far: test
// it with errors.Is(err, install.ErrRolledBack) and
// errors.As(err, new(*install.RollbackError)).
func (r *Repository) Update(ctx context.Context, app App, inst Installer) (*Outcome, error) {
	if inst == nil {
		return nil, errors.New("update: no installer")
	}
	a, err := r.app(app)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", app.Name, err)
	}
	unlock, err := r.lock.acquire()
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", a.Name, err)
	}
	defer unlock()
	return r.newCall(a).update(ctx, inst, false)
}

// update is Update for c's application; refresh makes the check refresh
// the metadata first.
func (c *call) update(ctx context.Context, inst Installer, refresh bool) (*Outcome, error) {
	st, err := inst.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", c.a.Name, err)
	}
	if st.Lost && c.a.Installed == "" {
		// Without its record the installer cannot tell a downgrade or a
		// version that failed here before (R52): the caller must say
		// which version is installed.
		return nil, fmt.Errorf("update %s: %w; give the installed version (App.Installed or Config.Installed)", c.a.Name, install.ErrStateLost)
	}
	if rec := st.Installed; rec != nil && rec.Version == "" && rec.SHA256 != "" {
		c.live = &live{sha256: rec.SHA256}
	}
	c.p.installed = higher(c.p.installed, st.Installed)
	c.p.bad = map[string]bool{}
	for v := range st.Bad {
		c.p.bad[v] = true
	}
	out := &Outcome{From: c.p.installed}
	offer, v, err := c.check(ctx, refresh)
	if err != nil {
		return out, err
	}
	out.From = c.p.installed // the live version, once recognised
	out.Choice, out.Held = offer.Choice, offer.Held
	out.Skipped = skipped(v.sel.rels, c.p, st.Bad)
	if offer.Release == nil {
		return out, nil
	}
	out.Release, out.Files = offer.Release, offer.Files
	if offer.Choice.Downgrade {
		if res, done, err := c.revert(ctx, inst, out); done {
			out.Result = res
			return out, err
		}
	}
	res, err := c.install(ctx, inst, out)
	out.Result = res
	return out, err
}

// live is what an installer whose record names no version (an adopted
// executable, or a state rebuilt from disk after a loss, R52) knows of
// what runs: its sha256.
type live struct{ sha256 string }

// recognise takes the signed release (of this application and platform)
// whose file has the live sha256 as installed, unless the installed
// version is already higher: a given Installed below what runs (the
// version before a first install, say) is no permission to downgrade
// (R49). A live file that is no signed release leaves Installed as given.
func (c *call) recognise(v *view) {
	for _, rel := range v.sel.rels {
		if hex.EncodeToString(rel.Hashes["sha256"]) != c.live.sha256 {
			continue
		}
		if c.p.installed == "" || release.CompareVersions(rel.Version, c.p.installed) > 0 {
			c.p.installed = rel.Version
		}
		return
	}
}

// MultiInstaller is an Installer that installs all files of one release
// together; *install.Slots satisfies it.
type MultiInstaller interface {
	Installer
	ApplyAll(ctx context.Context, arts []install.Artifact) (install.Result, error)
}

var _ MultiInstaller = (*install.Slots)(nil)

// install downloads every file of out.Release into a fresh private
// directory, verifying each, and only then applies them (R47).
func (c *call) install(ctx context.Context, inst Installer, out *Outcome) (install.Result, error) {
	multi, isMulti := inst.(MultiInstaller)
	files := out.Files
	if !isMulti {
		one, err := c.single(out.Release, files)
		if err != nil {
			return install.Result{}, err
		}
		files = []*Release{one} // the others are still downloaded: all or nothing
	}
	dir, err := c.stagingDir()
	if err != nil {
		return install.Result{}, fmt.Errorf("update %s: %w", c.a.Name, err)
	}
	defer os.RemoveAll(dir)
	arts := make(map[string]install.Artifact, len(out.Files))
	for _, f := range out.Files {
		file, signed, err := c.download(ctx, f, dir)
		if err != nil {
			return install.Result{}, fmt.Errorf("update %s %s: file %s of the release: %w; nothing installed", c.a.Name, f.Version, f.Path, err)
		}
		*f = *signed
		arts[f.Path] = artifact(signed, file)
	}
	*out.Release = *files[0]
	if !isMulti {
		return inst.Apply(ctx, arts[files[0].Path])
	}
	all := make([]install.Artifact, len(files))
	for i, f := range files {
		all[i] = arts[f.Path]
	}
	return multi.ApplyAll(ctx, all)
}

// single chooses the file an installer of one executable gets: the one
// named like the application (or APP.exe), else the only "binary" file,
// else the only file. The others are logged as ignored.
func (c *call) single(rel *Release, files []*Release) (*Release, error) {
	var named, bins []*Release
	for _, f := range files {
		if base := path.Base(f.Path); base == rel.App || base == rel.App+".exe" {
			named = append(named, f)
		}
		if f.Kind == release.KindBinary {
			bins = append(bins, f)
		}
	}
	var one *Release
	switch {
	case len(files) == 1:
		one = files[0]
	case len(named) == 1:
		one = named[0]
	case len(bins) == 1:
		one = bins[0]
	default:
		return nil, fmt.Errorf("update %s %s: release %w: %d files and none of them is the executable (named %q, or the only binary); install it with an installer of several files", rel.App, rel.Version, ErrRefused, len(files), rel.App)
	}
	for _, f := range files {
		if f != one {
			c.ev.Emit(event.FileIgnored, f.Version, "installing one executable: "+one.Path, "target", f.Path)
		}
	}
	return one, nil
}

// releaseFiles returns every release among rels (sorted by path) of
// version ver, in the same order.
func releaseFiles(rels []*Release, ver string) []*Release {
	var out []*Release
	for _, rel := range rels {
		if rel.Version == ver {
			out = append(out, rel)
		}
	}
	return out
}

// stagingDir checks that StateDir/staging and StateDir/downloads are
// private to this user (R51) and returns a fresh 0700 directory in
// staging.
func (c *call) stagingDir() (string, error) {
	staging := filepath.Join(c.r.cfg.StateDir, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	for _, d := range []string{staging, c.r.downloads} {
		if err := checkPrivate(d); err != nil {
			c.ev.Emit(event.StagingRefused, "", err.Error(), "dir", d)
			return "", err
		}
	}
	return os.MkdirTemp(staging, "update-") // 0700, random name
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
// installer recorded (ignored unless it is a valid version): the
// installer's record can only raise the floor, so it never causes a
// downgrade.
func higher(cfg string, rec *install.Installed) string {
	if rec == nil || release.ValidVersion(rec.Version) != nil {
		return cfg
	}
	if cfg == "" || release.CompareVersions(rec.Version, cfg) > 0 {
		return rec.Version
	}
	return cfg
}

// skipped lists the releases among rels above the installed version that
// are marked bad, oldest first.
func skipped(rels []*Release, p policy, bad map[string]install.Bad) []Skipped {
	if len(bad) == 0 {
		return nil
	}
	q := p
	q.bad, q.chosen = nil, ""
	seen := map[string]bool{}
	var out []Skipped
	for _, rel := range rels {
		if !q.allows(rel.Version) || !p.bad[rel.Version] || seen[rel.Version] {
			continue
		}
		seen[rel.Version] = true
		out = append(out, Skipped{Version: rel.Version, Reason: bad[rel.Version].Reason})
	}
	slices.SortFunc(out, func(a, b Skipped) int { return release.CompareVersions(a.Version, b.Version) })
	return out
}
