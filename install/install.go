package install

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferry-updates/ferry/internal/faultfs"
	"github.com/ferry-updates/ferry/internal/sentinel"
	"github.com/ferry-updates/ferry/release"
)

// Kinds of artifact, as package release defines them.
const (
	KindBinary = release.KindBinary
	KindTarGz  = release.KindTarGz
	KindTarZst = release.KindTarZst
	KindZip    = release.KindZip
)

// Artifact describes one downloaded release file and the signed facts about
// it. The installer trusts only Length and Hashes (from signed metadata): it
// re-hashes the bytes it copies out of File and installs nothing that does
// not match.
type Artifact struct {
	File    string            // local path of the downloaded bytes
	Length  int64             // signed length
	Hashes  map[string][]byte // signed hashes: "sha256" and/or "sha512"; unknown names are ignored
	App     string            // application name (release.ValidApp)
	Version string            // version (release.ValidVersion); becomes a directory name for Slots
	Kind    string            // KindBinary, KindTarGz, KindTarZst or KindZip
	Name    string            // for KindBinary in a slot: the file name inside it (release.ValidFile; default App)
}

// Result says what an Apply, Revert or Recover did.
type Result struct {
	App        string
	Version    string // the version now installed
	Previous   string // the version it replaced ("" if none)
	Path       string // the executable (Binary) or the slot directory (Slots)
	Unchanged  bool   // the version was already installed
	Reverted   bool   // Revert: the version came back from the copy kept on disk
	RolledBack bool   // the new version failed and the previous one is back
	// Reason says why it rolled back, as State.Bad records it
	// ("health check: ..."). A caller that words the failure itself uses
	// Failed and Detail; it never takes Reason apart.
	Reason string
	Failed Step   // with RolledBack: the step that failed
	Detail string // with RolledBack: that step's error, without the step's name
	// RestartErr is set when the Restart command run after a rollback
	// failed: the previous version is in place but may not be running.
	RestartErr error
}

// Step names the step of a trial that failed, so that a caller can say
// what happened without parsing Result.Reason.
type Step string

const (
	StepHealth    Step = "health"     // the health check failed
	StepRestart   Step = "restart"    // the Restart command failed
	StepCrashLoop Step = "crash_loop" // MaxTries trials were interrupted before one decided
	StepRecovery  Step = "recovery"   // an interrupted install left an unknown version live
)

// The reasons recorded in state.json (pending.rollback, bad.reason,
// rollback_failed.reason) are "PREFIX DETAIL"; a reason without a known
// prefix is a recovery's.
var stepPrefixes = []struct {
	step   Step
	prefix string
}{{StepHealth, "health check: "}, {StepRestart, "restart: "}, {StepCrashLoop, "crash loop: "}}

// reason is the recorded text of a failure of step.
func reason(step Step, detail string) string {
	for _, p := range stepPrefixes {
		if p.step == step {
			return p.prefix + detail
		}
	}
	return detail
}

// parseReason is the inverse of reason, for a reason read back from the
// state after a crash.
func parseReason(r string) (Step, string) {
	for _, p := range stepPrefixes {
		if d, ok := strings.CutPrefix(r, p.prefix); ok {
			return p.step, d
		}
	}
	return StepRecovery, r
}

// Reverter is an installer that can switch back to a version still on
// disk: *Binary (its kept previous executable) and *Slots (the previous
// version's slot). Revert re-verifies that copy against a's signed length
// and hashes (a.File is not read), then switches to it exactly as Apply
// switches to a download: the intent is recorded first, the health trial
// runs, and a failing version is rolled back to the one that was live,
// so a crash or a failure leaves the old or the new version. It does not
// compare versions: the caller decides that a downgrade is wanted.
//
// It returns an error wrapping ErrNotOnDisk, with nothing changed, when no
// kept copy is a's bytes (the caller then downloads a and Applies it); the
// error also wraps ErrVerify when a kept copy that should have been a
// turned out altered. Otherwise its errors are Apply's.
type Reverter interface {
	Revert(ctx context.Context, a Artifact) (Result, error)
}

var (
	_ Reverter = (*Binary)(nil)
	_ Reverter = (*Slots)(nil)
)

var (
	// ErrBusy means another process or goroutine is installing the same
	// application (R50). It is client.ErrBusy and repo.ErrBusy (one value,
	// see internal/sentinel).
	ErrBusy = sentinel.ErrBusy
	// ErrVerify means the copied bytes do not match the signed length or
	// hashes; nothing was installed.
	ErrVerify = errors.New("artifact does not match its signed length and hashes")
	// ErrUnsafeArchive means an archive entry was refused; nothing was installed.
	ErrUnsafeArchive = errors.New("unsafe archive")
	// ErrMarkedBad means the version failed before on this machine.
	ErrMarkedBad = errors.New("version is marked bad on this machine")
	// ErrStateLost means the state file and its copy were both corrupt, so
	// the installed version and the versions marked bad are unknown (see
	// State.Lost).
	ErrStateLost = errors.New("install state and its copy were corrupt: the installed version and the versions marked bad are lost")
	// ErrRolledBack means the new version failed its health check and the
	// previous version was restored.
	ErrRolledBack = errors.New("new version failed and was rolled back")
	// ErrNotOnDisk means Revert found no copy of the version on disk that
	// matches its signed hashes; nothing changed.
	ErrNotOnDisk = errors.New("version is not on disk")
)

// VerifyError carries the evidence of a length or hash mismatch.
type VerifyError struct {
	App, Version string
	What         string // "length", "sha256", "sha512" or "hashes"
	Want, Got    string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify %s/%s: %s mismatch: want %s, got %s", e.App, e.Version, e.What, e.Want, e.Got)
}

func (e *VerifyError) Unwrap() error { return ErrVerify }

// RollbackError means that restoring the previous version failed too. The
// state file records it, and it needs a human: it is never silent (R45).
type RollbackError struct {
	App, Version string // the version that failed
	Reason       string // why it was being rolled back
	Err          error  // why the rollback failed
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("ROLLBACK FAILED for %s/%s (rolling back because: %s): %v", e.App, e.Version, e.Reason, e.Err)
}

func (e *RollbackError) Unwrap() error { return e.Err }

// check refuses an artifact whose names do not follow package release's
// rules (each is safe as one path element anywhere) or without a usable
// signed hash.
func (a *Artifact) check() error {
	if err := release.ValidApp(a.App); err != nil {
		return err
	}
	if err := release.ValidVersion(a.Version); err != nil {
		return err
	}
	if err := release.ValidKind(a.Kind); err != nil {
		return err
	}
	if a.Length < 0 {
		return fmt.Errorf("invalid length %d", a.Length)
	}
	if a.Name != "" {
		if err := release.ValidFile(a.Name); err != nil {
			return err
		}
	}
	_, err := a.hashers()
	return err
}

// checkFor checks a and that it is for the installer of app.
func (a *Artifact) checkFor(app string) error {
	if err := a.check(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if a.App != app {
		return fmt.Errorf("install: artifact is for app %q, installer for %q", a.App, app)
	}
	return nil
}

// fileName is the name of a binary artifact inside a slot.
func (a *Artifact) fileName() string { return cmp.Or(a.Name, a.App) }

// hashers returns a hash for every known algorithm in a.Hashes. It fails if
// there is none: an artifact without a usable signed hash is never installed.
func (a *Artifact) hashers() (map[string]hash.Hash, error) {
	hs := map[string]hash.Hash{}
	for alg := range a.Hashes {
		switch alg {
		case "sha256":
			hs[alg] = sha256.New()
		case "sha512":
			hs[alg] = sha512.New()
		}
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("%s/%s: no sha256 or sha512 among the signed hashes", a.App, a.Version)
	}
	return hs, nil
}

// copyVerified copies at most a.Length+1 bytes from src to dst, hashing them
// as they pass, and checks length and every known signed hash from those
// bytes. It returns the SHA-256 of the copied bytes.
func copyVerified(ctx context.Context, dst io.Writer, src io.Reader, a *Artifact, fp func(string)) (string, error) {
	hs, err := a.hashers()
	if err != nil {
		return "", err
	}
	own := hs["sha256"]
	all := make([]hash.Hash, 0, 2)
	for _, h := range hs {
		all = append(all, h)
	}
	if own == nil {
		own = sha256.New()
		all = append(all, own)
	}
	r := &ctxReader{ctx: ctx, r: io.LimitReader(src, a.Length+1), fp: fp}
	n, err := hashCopy(dst, r, all)
	if err != nil {
		return "", fmt.Errorf("copy %s/%s: %w", a.App, a.Version, err)
	}
	if n != a.Length {
		got := fmt.Sprint(n)
		if n > a.Length {
			got = fmt.Sprintf("more than %d", a.Length)
		}
		return "", &VerifyError{App: a.App, Version: a.Version, What: "length", Want: fmt.Sprint(a.Length), Got: got}
	}
	for alg, h := range hs {
		if got := h.Sum(nil); !equal(got, a.Hashes[alg]) {
			return "", &VerifyError{App: a.App, Version: a.Version, What: alg,
				Want: hex.EncodeToString(a.Hashes[alg]), Got: hex.EncodeToString(got)}
		}
	}
	return hex.EncodeToString(own.Sum(nil)), nil
}

// hashCopy copies r to dst and feeds every byte to hs, hashing one chunk
// while the next write runs, so hashing costs little wall time.
func hashCopy(dst io.Writer, r io.Reader, hs []hash.Hash) (int64, error) {
	bufs := [2][]byte{make([]byte, 1<<20), make([]byte, 1<<20)}
	var total int64
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		buf := bufs[i%2]
		n, rerr := io.ReadFull(r, buf)
		chunk := buf[:n]
		wg.Wait() // the previous chunk is hashed: its buffer is free again
		if n > 0 {
			wg.Go(func() {
				for _, h := range hs {
					h.Write(chunk)
				}
			})
			if _, err := dst.Write(chunk); err != nil {
				wg.Wait()
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			wg.Wait()
			return total, nil
		}
		if rerr != nil {
			wg.Wait()
			return total, rerr
		}
	}
}

func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// ctxReader stops a copy when ctx is done and calls the copy fail-point.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	fp  func(string)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	c.fp("copy")
	return c.r.Read(p)
}

// hashFile returns the SHA-256 of a file.
func hashFile(fsys faultfs.FS, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 256<<10)); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// mkdirDurable creates dir and any missing parents, and fsyncs the parent
// of each directory it created, so that they survive a power loss.
func mkdirDurable(fsys faultfs.FS, dir string, perm fs.FileMode) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, perm); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// hooks are test seams shared by both strategies.
type hooks struct {
	fs        faultfs.FS                                    // nil: the OS
	failpoint func(name string)                             // called at every named fail-point
	wrapArch  func(io.ReaderAt) io.ReaderAt                 // wraps the verified copy given to a decompressor
	now       func() time.Time                              // nil: time.Now
	randName  func() string                                 // nil: random
	healthFn  func(ctx context.Context, env []string) error // nil: Health; else replaces Health
}

func (h *hooks) fsys() faultfs.FS {
	if h.fs == nil {
		return faultfs.OS{}
	}
	return h.fs
}

func (h *hooks) fp(name string) {
	if h.failpoint != nil {
		h.failpoint(name)
	}
}

func (h *hooks) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now().UTC()
}
