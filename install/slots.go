package install

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/faultfs"
	"github.com/ferry-updates/ferry/internal/safefile"
	"github.com/ferry-updates/ferry/release"
)

// Slots installs each version into its own directory and switches between
// them with a symlink:
//
//	ROOT/APP/versions/VERSION/   one per kept version, never changed once in place
//	ROOT/APP/current             symlink to versions/VERSION, replaced atomically
//	ROOT/APP/state.json          install state
//	ROOT/APP/lock                the per-application lock
//	ROOT/APP/.staging/           private (0700) work area
//
// An artifact is copied into .staging while being hashed; only when its
// length and hashes match does any byte reach a decompressor (R39). It is
// unpacked with os.Root containment and Limits, fsynced, renamed into
// versions/, and then current is swapped by renaming a new symlink over it.
type Slots struct {
	Root     string // required
	App      string // required
	Keep     int    // versions kept, including current and previous; default 3, at least 2
	Limits   Limits
	Health   *Health
	Restart  []string
	MaxTries int            // interrupted health trials before rolling back; default 3
	Events   event.Observer // receives one event per step (see docs/install.md); nil: none

	hooks
}

// Apply installs a into a new slot and makes it current. Errors are as for
// Binary.Apply, plus ErrUnsafeArchive.
func (s *Slots) Apply(ctx context.Context, a Artifact) (Result, error) {
	e, err := s.engine()
	if err != nil {
		return Result{}, err
	}
	if err := s.check(&a); err != nil {
		return Result{}, err
	}
	return e.apply(ctx, &a)
}

// ApplyAll installs all artifacts of one release (same App and Version)
// into one new slot and makes it current: every artifact is verified and
// unpacked before anything goes live, and if any one fails, nothing is
// installed (R47). Binary artifacts become files named Name (default App);
// archives are unpacked into the slot's root. The same file in two
// artifacts, or a file where another artifact has a directory, refuses the
// release. Errors are as for Apply.
func (s *Slots) ApplyAll(ctx context.Context, arts []Artifact) (Result, error) {
	e, ptrs, err := s.prepare(arts)
	if err != nil {
		return Result{}, err
	}
	return e.apply(ctx, ptrs[0])
}

// prepare checks the artifacts of one release and gives the engine the
// further ones.
func (s *Slots) prepare(arts []Artifact) (*engine, []*Artifact, error) {
	if len(arts) == 0 {
		return nil, nil, errors.New("install: no artifacts")
	}
	e, err := s.engine()
	if err != nil {
		return nil, nil, err
	}
	ptrs := make([]*Artifact, len(arts))
	names := map[string]bool{}
	for i := range arts {
		a := &arts[i]
		if err := s.check(a); err != nil {
			return nil, nil, err
		}
		if a.Version != arts[0].Version {
			return nil, nil, fmt.Errorf("install %s: artifacts of versions %s and %s in one release", s.App, arts[0].Version, a.Version)
		}
		if a.Kind == KindBinary {
			n := a.fileName()
			if names[n] {
				return nil, nil, fmt.Errorf("install %s/%s: two binary artifacts named %q", s.App, a.Version, n)
			}
			names[n] = true
		}
		ptrs[i] = a
	}
	e.s.(*slotStrategy).more = ptrs[1:]
	return e, ptrs, nil
}

// Revert makes a.Version current again from its slot, if the state
// records that slot as holding a: it must be the previous version's slot
// (the one version besides the installed one whose artifact hash the
// state keeps) and its recorded SHA-256 must be a's signed one. A binary
// artifact's file in the slot is hashed again and checked against a's
// signed length and hashes; an unpacked archive cannot be re-hashed as a
// whole, so for archives the recorded hash is the check (slots are never
// changed once in place). Then current is switched as for Apply, health
// trial and rollback included. See Reverter for the errors.
func (s *Slots) Revert(ctx context.Context, a Artifact) (Result, error) {
	return s.RevertAll(ctx, []Artifact{a})
}

// RevertAll is Revert for a release of several artifacts installed with
// ApplyAll, given in the same order.
func (s *Slots) RevertAll(ctx context.Context, arts []Artifact) (Result, error) {
	e, ptrs, err := s.prepare(arts)
	if err != nil {
		return Result{}, err
	}
	return e.revert(ctx, ptrs[0])
}

func (s *Slots) check(a *Artifact) error {
	return a.checkFor(s.App)
}

// Recover finishes or rolls back an install that a crash interrupted.
func (s *Slots) Recover(ctx context.Context) (Result, error) {
	e, err := s.engine()
	if err != nil {
		return Result{}, err
	}
	return e.recoverLocked(ctx)
}

// State returns the install state after recovery.
func (s *Slots) State(ctx context.Context) (State, error) {
	e, err := s.engine()
	if err != nil {
		return State{}, err
	}
	return e.state(ctx)
}

// Current returns the path of the current slot link, ROOT/APP/current.
func (s *Slots) Current() string { return filepath.Join(s.Root, s.App, "current") }

func (s *Slots) engine() (*engine, error) {
	if err := release.ValidApp(s.App); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if s.Root == "" {
		return nil, errors.New("install: Slots needs Root")
	}
	dir := filepath.Join(s.Root, s.App)
	if err := mkdirDurable(s.fsys(), dir, 0o755); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	return &engine{
		app: s.App, s: &slotStrategy{s: s, dir: dir},
		statePath: filepath.Join(dir, "state.json"),
		lockPath:  filepath.Join(dir, "lock"),
		health:    s.Health, restart: s.Restart, maxTries: tries(s.MaxTries),
		ev: event.Emitter{Observer: s.Events, Now: s.now, App: s.App}, h: &s.hooks,
	}, nil
}

type slotStrategy struct {
	s    *Slots
	dir  string      // ROOT/APP
	more []*Artifact // further artifacts of the release, staged into the same slot
	tree string      // the staged, unpacked tree
}

// releaseSum identifies a release of several artifacts in the state: the
// SHA-256 of their SHA-256s, in order.
func releaseSum(sums []string) string {
	h := sha256.New()
	for _, s := range sums {
		io.WriteString(h, s+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (t *slotStrategy) fs() faultfs.FS             { return t.s.fsys() }
func (t *slotStrategy) versions() string           { return filepath.Join(t.dir, "versions") }
func (t *slotStrategy) slot(v string) string       { return filepath.Join(t.versions(), v) }
func (t *slotStrategy) staging() string            { return filepath.Join(t.dir, ".staging") }
func (t *slotStrategy) runPath() string            { return t.s.Current() }
func (t *slotStrategy) id(v Installed) string      { return v.Version }
func (t *slotStrategy) fromID(id string) Installed { return Installed{Version: id} }

func (t *slotStrategy) stage(ctx context.Context, a *Artifact) (sha string, err error) {
	fsys := t.fs()
	if err := mkdirDurable(fsys, t.versions(), 0o755); err != nil {
		return "", err
	}
	if err := t.privateStaging(); err != nil {
		return "", err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	work := filepath.Join(t.staging(), a.Version+"-"+hex.EncodeToString(rnd[:]))
	if err := fsys.Mkdir(work, 0o700); err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			fsys.RemoveAll(t.staging()) // we hold the lock: nothing else uses it
		}
	}()
	tree := filepath.Join(work, "tree")
	if err := fsys.Mkdir(tree, 0o755); err != nil {
		return "", err
	}
	arts := append([]*Artifact{a}, t.more...)
	dirs := map[string]bool{}
	sums := make([]string, len(arts))
	for i, a := range arts {
		if a.Kind == KindBinary {
			sums[i], err = t.stageBinary(ctx, a, tree)
		} else {
			sums[i], err = t.stageArchive(ctx, a, filepath.Join(work, fmt.Sprintf("artifact-%d", i)), tree, dirs)
		}
		if err != nil {
			return "", err
		}
	}
	sha = sums[0]
	if len(arts) > 1 {
		sha = releaseSum(sums)
	}
	t.s.fp("slots.unpacked")
	t.tree = tree
	return sha, nil
}

// privateStaging creates ROOT/APP/.staging (0700) if missing and refuses
// it unless it is a directory itself, not a symlink, owned by this user
// with no group or other permissions: a planted or shared staging area
// would let someone else swap files between verification and install
// (R36, R51). A refused one is left as it is.
func (t *slotStrategy) privateStaging() error {
	fsys, dir := t.fs(), t.staging()
	fi, err := fsys.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := fsys.Mkdir(dir, 0o700); err != nil {
			return err
		}
		fi, err = fsys.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if err := safefile.CheckPrivateDirInfo(dir, fi); err != nil {
		return &stagingError{dir: dir, err: err}
	}
	return nil
}

func (t *slotStrategy) stageBinary(ctx context.Context, a *Artifact, tree string) (string, error) {
	src, err := t.fs().Open(a.File)
	if err != nil {
		return "", err
	}
	defer src.Close()
	f, err := t.fs().Create(filepath.Join(tree, a.fileName()), 0o755)
	if err != nil {
		return "", err
	}
	sha, err := copyVerified(ctx, f, src, a, t.s.fp)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = t.fs().SyncDir(tree)
	}
	return sha, err
}

// stageArchive copies the artifact into the private work directory while
// hashing it, and unpacks that verified copy only if it matches: the
// downloaded file is read once, so swapping it later changes nothing (R36),
// and unverified bytes never reach a decompressor (R39).
func (t *slotStrategy) stageArchive(ctx context.Context, a *Artifact, copyName, tree string, dirs map[string]bool) (string, error) {
	src, err := t.fs().Open(a.File)
	if err != nil {
		return "", err
	}
	cp, err := t.fs().Create(copyName, 0o600)
	if err != nil {
		src.Close()
		return "", err
	}
	defer cp.Close()
	sha, err := copyVerified(ctx, cp, src, a, t.s.fp)
	src.Close()
	if err != nil {
		return "", err
	}
	t.s.fp("slots.copied")
	tr, err := t.fs().OpenTree(tree)
	if err != nil {
		return "", err
	}
	defer tr.Close()
	var r io.ReaderAt = cp
	if t.s.wrapArch != nil {
		r = t.s.wrapArch(cp)
	}
	if err := extract(ctx, tr, r, a.Length, a.Kind, t.s.Limits, dirs, t.s.fp); err != nil {
		return "", err
	}
	return sha, t.fs().SyncDir(tree)
}

// kept checks, for Revert, that the previous version's slot holds the
// release of a (and t.more): the SHA-256 the state recorded for it when
// it was installed is the signed one, the slot is a directory, and every
// binary artifact's file in it still has its signed length and hashes.
// There is nothing to place: the slot is in place already.
func (t *slotStrategy) kept(ctx context.Context, st *State, a *Artifact) (string, error) {
	arts := append([]*Artifact{a}, t.more...)
	sums := make([]string, len(arts))
	for i, x := range arts {
		sum, ok := x.Hashes["sha256"]
		if !ok {
			return "", fmt.Errorf("%w: a revert needs the signed sha256", ErrNotOnDisk)
		}
		sums[i] = hex.EncodeToString(sum)
	}
	want := sums[0]
	if len(arts) > 1 {
		want = releaseSum(sums)
	}
	p := st.Previous
	if p == nil || p.Version != a.Version {
		return "", fmt.Errorf("%w: %s is not the previous version, the only one whose slot's hash is recorded", ErrNotOnDisk, a.Version)
	}
	if p.SHA256 != want {
		return "", fmt.Errorf("%w: the slot of %s holds another build (recorded sha256 %q, signed %s)", ErrNotOnDisk, a.Version, p.SHA256, want)
	}
	dir := t.slot(a.Version)
	if fi, err := t.fs().Lstat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: no slot %s", ErrNotOnDisk, dir)
	}
	for _, x := range arts {
		if x.Kind != KindBinary {
			continue
		}
		if err := t.verifyFile(ctx, filepath.Join(dir, x.fileName()), x); err != nil {
			return "", fmt.Errorf("%w: slot %s: %w", ErrNotOnDisk, dir, err)
		}
	}
	return want, nil
}

// verifyFile checks a file against a's signed length and hashes.
func (t *slotStrategy) verifyFile(ctx context.Context, name string, a *Artifact) error {
	f, err := t.fs().Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = copyVerified(ctx, io.Discard, f, a, t.s.fp)
	return err
}

// place renames the unpacked tree to versions/VERSION and removes the
// staging area. The engine calls it only after the intent naming VERSION is
// saved, so a crash leaves no slot the state does not know of: recovery
// discards it.
func (t *slotStrategy) place(ctx context.Context, a *Artifact) error {
	if t.tree == "" {
		return nil // Revert: the slot is in place
	}
	defer t.fs().RemoveAll(t.staging())
	return t.placeTree(a.Version, t.tree)
}

func (t *slotStrategy) placeTree(version, tree string) error {
	fsys, dst := t.fs(), t.slot(version)
	if _, err := fsys.Lstat(dst); err == nil {
		// A leftover of an install that never committed, or a pruned
		// version's remains; never the live one (Apply returns Unchanged).
		if live, err := t.active(context.Background()); err == nil && live == version {
			return fmt.Errorf("slot %s is live", dst)
		}
		if err := fsys.RemoveAll(dst); err != nil {
			return err
		}
	}
	if err := fsys.Rename(tree, dst); err != nil {
		return err
	}
	return fsys.SyncDir(t.versions())
}

func (t *slotStrategy) swap(ctx context.Context, a *Artifact) error {
	return t.link(a.Version)
}

// link points current at versions/VERSION: a new symlink renamed over it.
func (t *slotStrategy) link(version string) error {
	fsys := t.fs()
	tmp := filepath.Join(t.dir, ".current-new")
	if err := fsys.RemoveAll(tmp); err != nil {
		return err
	}
	if err := fsys.Symlink("versions/"+version, tmp); err != nil {
		return err
	}
	t.s.fp("slots.linked")
	if err := fsys.Rename(tmp, t.s.Current()); err != nil {
		return err
	}
	return fsys.SyncDir(t.dir)
}

func (t *slotStrategy) active(context.Context) (string, error) {
	target, err := t.fs().Readlink(t.s.Current())
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(filepath.ToSlash(target), "versions/")
	if !ok || release.ValidVersion(v) != nil {
		return "", fmt.Errorf("current points to %q, not to a slot", target)
	}
	return v, nil
}

func (t *slotStrategy) restore(ctx context.Context, v Installed) error {
	fi, err := t.fs().Lstat(t.slot(v.Version))
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("slot of %s is missing: %v", v.Version, err)
	}
	return t.link(v.Version)
}

// discard removes the slot of an install that never became live, unless
// the state still needs that version.
func (t *slotStrategy) discard(ctx context.Context, st *State, version string) {
	for _, v := range []*Installed{st.Installed, st.Previous} {
		if v != nil && v.Version == version {
			return
		}
	}
	if live, err := t.active(ctx); err == nil && live == version {
		return
	}
	t.fs().RemoveAll(t.slot(version))
}

func (t *slotStrategy) cleanup(context.Context) {
	t.fs().RemoveAll(t.staging())
	t.fs().RemoveAll(filepath.Join(t.dir, ".current-new"))
}

// prune keeps the installed and previous versions and the newest of the
// other committed versions up to Keep in all; it removes older committed
// versions and versions marked bad. Directories it knows nothing about
// (for example after a lost state file) are left alone.
func (t *slotStrategy) prune(ctx context.Context, st *State) {
	keep := max(t.s.Keep, 2)
	if t.s.Keep <= 0 {
		keep = 3
	}
	kept := map[string]bool{}
	if live, err := t.active(ctx); err == nil {
		kept[live] = true
	}
	for _, v := range []*Installed{st.Installed, st.Previous} {
		if v != nil {
			kept[v.Version] = true
		}
	}
	if st.Pending != nil {
		kept[st.Pending.Version] = true
	}
	hist := slices.Clone(st.History)
	slices.Reverse(hist)
	for _, v := range hist {
		if len(kept) >= keep {
			break
		}
		kept[v] = true
	}
	ents, err := t.fs().ReadDir(t.versions())
	if err != nil {
		return
	}
	for _, d := range ents {
		n := d.Name()
		_, bad := st.Bad[n]
		if !kept[n] && (bad || slices.Contains(st.History, n)) {
			t.s.fp("slots.prune")
			t.fs().RemoveAll(filepath.Join(t.versions(), n))
		}
	}
}
