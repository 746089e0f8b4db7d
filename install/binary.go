package install

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/faultfs"
	"github.com/ferry-updates/ferry/release"
)

// Binary installs a new executable over Target: the running program
// (self-update) or any other path.
//
// The new bytes are copied from the open artifact into a staging file next
// to Target while being hashed, checked against the signed hashes from
// those copied bytes (R36), fsynced, and renamed over Target; the directory
// is fsynced. Before that, the old executable is hard-linked aside as
// ".NAME.ferry-old" (copied if the file system has no hard links), so there
// is never a moment without an executable at Target, and rollback has a
// verified copy to restore. On Windows the running executable is renamed
// aside first (see replace_windows.go).
type Binary struct {
	App      string // application name (required)
	Target   string // executable to replace (required)
	StateDir string // private directory for state.json and the lock (required; created 0700)
	Health   *Health
	Restart  []string       // run after a swap and after a rollback, e.g. systemctl restart hello
	MaxTries int            // interrupted health trials before rolling back; default 3
	Events   event.Observer // receives one event per step (see docs/install.md); nil: none

	hooks
}

// Apply installs a, a KindBinary artifact. It returns an error wrapping
// ErrBusy, ErrVerify, ErrMarkedBad or ErrRolledBack, or a *RollbackError.
func (b *Binary) Apply(ctx context.Context, a Artifact) (Result, error) {
	e, err := b.engineFor(a)
	if err != nil {
		return Result{}, err
	}
	return e.apply(ctx, &a)
}

// engineFor checks that a is an executable of this application and returns
// the engine that installs it (Apply and Revert).
func (b *Binary) engineFor(a Artifact) (*engine, error) {
	e, err := b.engine()
	if err != nil {
		return nil, err
	}
	if err := a.checkFor(b.App); err != nil {
		return nil, err
	}
	if a.Kind != KindBinary {
		return nil, fmt.Errorf("install %s/%s: kind %q cannot replace an executable", a.App, a.Version, a.Kind)
	}
	return e, nil
}

// Revert makes a.Version live again from the executable kept as
// .NAME.ferry-old next to Target (the one that was live before the last
// swap), if that file's SHA-256 is a's signed one: it is copied into a
// staging file while its length and every signed hash are checked, then
// installed as Apply installs a download, health trial and rollback
// included. See Reverter for the errors.
func (b *Binary) Revert(ctx context.Context, a Artifact) (Result, error) {
	e, err := b.engineFor(a)
	if err != nil {
		return Result{}, err
	}
	return e.revert(ctx, &a)
}

// Recover finishes or rolls back an install that a crash interrupted. Call
// it at start, before anything runs Target. It is cheap when there is
// nothing to do.
func (b *Binary) Recover(ctx context.Context) (Result, error) {
	e, err := b.engine()
	if err != nil {
		return Result{}, err
	}
	return e.recoverLocked(ctx)
}

// State returns the install state after recovery.
func (b *Binary) State(ctx context.Context) (State, error) {
	e, err := b.engine()
	if err != nil {
		return State{}, err
	}
	return e.state(ctx)
}

func (b *Binary) engine() (*engine, error) {
	if err := release.ValidApp(b.App); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	if b.Target == "" || b.StateDir == "" {
		return nil, errors.New("install: Binary needs Target and StateDir")
	}
	if err := mkdirDurable(b.fsys(), b.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	return &engine{
		app: b.App, s: &binStrategy{b: b},
		statePath: filepath.Join(b.StateDir, "state.json"),
		lockPath:  filepath.Join(b.StateDir, "lock"),
		locks:     []string{filepath.Join(filepath.Dir(b.Target), "."+filepath.Base(b.Target)+".ferry-lock")},
		health:    b.Health, restart: b.Restart, maxTries: tries(b.MaxTries),
		ev: event.Emitter{Observer: b.Events, Now: b.now, App: b.App}, h: &b.hooks,
	}, nil
}

func tries(n int) int {
	if n <= 0 {
		return 3
	}
	return n
}

type binStrategy struct {
	b      *Binary
	staged string
}

func (s *binStrategy) fs() faultfs.FS { return s.b.fsys() }
func (s *binStrategy) dir() string    { return filepath.Dir(s.b.Target) }
func (s *binStrategy) prefix() string { return "." + filepath.Base(s.b.Target) + ".ferry-" }
func (s *binStrategy) old() string    { return filepath.Join(s.dir(), s.prefix()+"old") }

func (s *binStrategy) tmpName(kind string) string {
	r := ""
	if s.b.randName != nil {
		r = s.b.randName()
	} else {
		var buf [8]byte
		rand.Read(buf[:])
		r = hex.EncodeToString(buf[:])
	}
	return filepath.Join(s.dir(), s.prefix()+kind+"-"+r)
}

func (s *binStrategy) stage(ctx context.Context, a *Artifact) (string, error) {
	src, err := s.fs().Open(a.File)
	if err != nil {
		return "", err
	}
	defer src.Close()
	name := s.tmpName("new")
	sha, err := s.copyTo(ctx, name, a, src)
	if err != nil {
		return "", err
	}
	s.staged = name
	return sha, nil
}

// kept stages the kept previous executable for Revert, if it is a's
// bytes: a cheap hash first, so that a kept copy of another version is
// ErrNotOnDisk without a staging file, then the verified copy.
func (s *binStrategy) kept(ctx context.Context, _ *State, a *Artifact) (string, error) {
	sum, ok := a.Hashes["sha256"]
	if !ok {
		return "", fmt.Errorf("%w: a revert needs the signed sha256", ErrNotOnDisk)
	}
	got, err := hashFile(s.fs(), s.old())
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: no kept executable %s", ErrNotOnDisk, s.old())
	}
	if err != nil {
		return "", err
	}
	if want := hex.EncodeToString(sum); got != want {
		return "", fmt.Errorf("%w: the kept executable %s is another version (sha256 %s, signed %s)", ErrNotOnDisk, s.old(), got, want)
	}
	k := *a
	k.File = s.old()
	sha, err := s.stage(ctx, &k)
	if errors.Is(err, ErrVerify) {
		// It hashed as a's bytes a moment ago: it was altered since, or
		// another signed hash disagrees. Refused, and not on disk either.
		return "", fmt.Errorf("%w: kept executable %s: %w", ErrNotOnDisk, s.old(), err)
	}
	return sha, err
}

// copyTo writes a new executable name from src, verified against a.
func (s *binStrategy) copyTo(ctx context.Context, name string, a *Artifact, src faultfs.File) (sha string, err error) {
	f, err := s.fs().Create(name, 0o755)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			s.fs().Remove(name)
		}
	}()
	if sha, err = copyVerified(ctx, f, src, a, s.b.fp); err != nil {
		return "", err
	}
	s.b.fp("binary.copied")
	if err = f.Sync(); err != nil {
		return "", err
	}
	return sha, f.Close()
}

func (s *binStrategy) swap(ctx context.Context, a *Artifact) error {
	if err := s.backup(ctx); err != nil {
		return fmt.Errorf("keep previous executable: %w", err)
	}
	s.b.fp("binary.backup")
	if err := replaceExe(s.fs(), s.staged, s.b.Target, s.tmpName("running")); err != nil {
		s.fs().Remove(s.staged)
		return err
	}
	return s.fs().SyncDir(s.dir())
}

// backup links (or copies) the live executable to .NAME.ferry-old.
func (s *binStrategy) backup(ctx context.Context) error {
	fsys := s.fs()
	if _, err := fsys.Lstat(s.b.Target); errors.Is(err, fs.ErrNotExist) {
		return nil // first install
	}
	if err := fsys.Remove(s.old()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := fsys.Link(s.b.Target, s.old()); err != nil {
		if err := s.copyFile(ctx, s.b.Target, s.old()); err != nil {
			return err
		}
	}
	return fsys.SyncDir(s.dir())
}

func (s *binStrategy) copyFile(ctx context.Context, from, to string) error {
	sha, err := hashFile(s.fs(), from)
	if err != nil {
		return err
	}
	return s.verifiedCopy(ctx, from, to, sha)
}

// verifiedCopy copies from to a staging file checked against sha, then
// renames it to to.
func (s *binStrategy) verifiedCopy(ctx context.Context, from, to, sha string) error {
	src, err := s.fs().Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	want, err := hex.DecodeString(sha)
	if err != nil {
		return fmt.Errorf("bad recorded hash %q", sha)
	}
	a := &Artifact{App: s.b.App, Version: "previous", Length: fi.Size(), Hashes: map[string][]byte{"sha256": want}}
	tmp := s.tmpName("new")
	if _, err := s.copyTo(ctx, tmp, a, src); err != nil {
		return err
	}
	if err := replaceExe(s.fs(), tmp, to, s.tmpName("running")); err != nil {
		s.fs().Remove(tmp)
		return err
	}
	return nil
}

func (s *binStrategy) active(ctx context.Context) (string, error) {
	return hashFile(s.fs(), s.b.Target)
}

func (s *binStrategy) id(v Installed) string         { return v.SHA256 }
func (s *binStrategy) fromID(id string) Installed    { return Installed{SHA256: id} }
func (s *binStrategy) runPath() string               { return s.b.Target }
func (s *binStrategy) prune(context.Context, *State) {}

// place has nothing to do: the staged file is renamed over Target by swap.
func (s *binStrategy) place(context.Context, *Artifact) error { return nil }

// discard has nothing to do: cleanup removes staging files.
func (s *binStrategy) discard(context.Context, *State, string) {}

// restore copies the kept executable back over Target after checking that
// it is byte for byte the version recorded as installed (R45).
func (s *binStrategy) restore(ctx context.Context, v Installed) error {
	if id, err := s.active(ctx); err == nil && id == v.SHA256 {
		return nil
	}
	if err := s.verifiedCopy(ctx, s.old(), s.b.Target, v.SHA256); err != nil {
		return fmt.Errorf("restore %s from %s: %w", s.b.Target, s.old(), err)
	}
	return s.fs().SyncDir(s.dir())
}

// cleanup removes staging files (and Windows' renamed-aside executables)
// that an interrupted install left next to Target.
func (s *binStrategy) cleanup(context.Context) {
	ents, err := s.fs().ReadDir(s.dir())
	if err != nil {
		return
	}
	for _, d := range ents {
		n := d.Name()
		if strings.HasPrefix(n, s.prefix()+"new-") || strings.HasPrefix(n, s.prefix()+"running-") {
			s.fs().Remove(filepath.Join(s.dir(), n))
		}
	}
}
