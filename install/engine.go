package install

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/internal/atomicfile"
	"github.com/ferry-updates/ferry/internal/faultfs"
)

// strategy is what differs between Binary and Slots; engine runs the state
// machine that is common to both (see docs/install.md):
//
//	staged -> intent saved (pending) -> swapped -> trial (tries++ saved)
//	       -> restart, health -> committed | rollback begun -> restored -> rolled back
type strategy interface {
	// stage verifies the artifact while copying it into place next to the
	// live version and returns its SHA-256; nothing live changes.
	stage(ctx context.Context, a *Artifact) (string, error)
	// kept is stage for Revert: it prepares the copy of a kept on disk,
	// verified against a, or fails with ErrNotOnDisk; nothing live changes.
	kept(ctx context.Context, st *State, a *Artifact) (string, error)
	// place moves the staged version next to the live one; it runs after
	// the intent is saved, so recovery knows what it may have left.
	place(ctx context.Context, a *Artifact) error
	// discard removes what place left of a version that never went live.
	discard(ctx context.Context, st *State, version string)
	// swap makes the staged version live in one atomic rename.
	swap(ctx context.Context, a *Artifact) error
	// active identifies the live version on disk (fs.ErrNotExist if none).
	active(ctx context.Context) (string, error)
	id(v Installed) string
	fromID(id string) Installed
	// restore makes v live again.
	restore(ctx context.Context, v Installed) error
	// cleanup removes leftovers of interrupted stagings.
	cleanup(ctx context.Context)
	// prune removes old versions after a commit.
	prune(ctx context.Context, st *State)
	runPath() string
}

type engine struct {
	app       string
	s         strategy
	statePath string
	lockPath  string
	// locks are further locks taken after lockPath: for Binary, one next
	// to Target, so installers of one Target with different StateDirs
	// are serialized too (R50).
	locks    []string
	health   *Health
	restart  []string
	maxTries int
	ev       event.Emitter
	h        *hooks
}

func (e *engine) fs() faultfs.FS { return e.h.fsys() }

func (e *engine) save(st *State) error { return saveState(e.fs(), e.statePath, st) }

// lock takes the per-application lock and the further locks, in order
// (R50).
func (e *engine) lock() (func(), error) {
	var held []io.Closer
	unlock := func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Close()
		}
	}
	for _, name := range append([]string{e.lockPath}, e.locks...) {
		l, err := e.fs().Lock(name)
		if errors.Is(err, faultfs.ErrLocked) {
			unlock()
			return nil, fmt.Errorf("install %s: %w: another install of this application is running (%v)", e.app, ErrBusy, err)
		}
		if err != nil {
			unlock()
			return nil, fmt.Errorf("install %s: lock: %w", e.app, err)
		}
		held = append(held, l)
	}
	return unlock, nil
}

// load reads the state and finishes or rolls back an interrupted install.
func (e *engine) load(ctx context.Context) (*State, Result, error) {
	st, status, err := loadState(e.fs(), e.statePath, e.app)
	if err != nil {
		return nil, Result{}, err
	}
	e.s.cleanup(ctx)
	switch status {
	case stateFromCopy:
		e.ev.Emit(event.StateCorrupt, "", "the state file was torn, corrupt or missing: its copy is used",
			"state", e.statePath, "recovered_from", e.statePath+copySuffix)
		if err := e.save(st); err != nil {
			return nil, Result{}, err
		}
	case stateLost:
		// R52: nothing from the corrupt files is trusted; the live version
		// on disk is the installed one, and the state says the record is
		// lost so that nobody mistakes it for the full history.
		e.ev.Emit(event.StateLost, "", ErrStateLost.Error(), "state", e.statePath, "moved_to", e.statePath+".corrupt")
		if id, err := e.s.active(ctx); err == nil {
			v := e.s.fromID(id)
			st.Installed = &v
		}
		if err := e.save(st); err != nil {
			return nil, Result{}, err
		}
	}
	res, err := e.recover(ctx, st)
	return st, res, err
}

func (e *engine) recover(ctx context.Context, st *State) (Result, error) {
	p := st.Pending
	if p == nil {
		return e.result(st), nil
	}
	id, err := e.s.active(ctx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("recover %s: %w", e.app, err)
	}
	switch {
	case p.Rollback != "":
		e.recovered(p, "finish_rollback", "an interrupted rollback is finished")
		return e.rollback(ctx, st, p.Rollback)
	case e.swapped(ctx, st):
		e.recovered(p, "resume_trial", "the interrupted install is live: its trial resumes")
		return e.finish(ctx, st)
	case (err == nil && st.Installed != nil && id == e.s.id(*st.Installed)) || (err != nil && st.Installed == nil):
		e.recovered(p, "abort", "the interrupted install never went live: it is dropped")
		st.Pending = nil
		e.s.discard(ctx, st, p.Version)
		return e.result(st), e.save(st)
	default:
		e.recovered(p, "rollback", "an unknown version is live: the installed one is restored")
		return e.rollback(ctx, st, "an interrupted install left an unknown version live")
	}
}

func (e *engine) recovered(p *Pending, action, cause string) {
	e.ev.Emit(event.Recovered, p.Version, cause, "action", action, "tries", strconv.Itoa(p.Tries))
}

func (e *engine) result(st *State) Result {
	r := Result{App: e.app, Path: e.s.runPath()}
	if st.Installed != nil {
		r.Version = st.Installed.Version
	}
	if st.Previous != nil {
		r.Previous = st.Previous.Version
	}
	return r
}

// apply runs one install under the lock.
func (e *engine) apply(ctx context.Context, a *Artifact) (Result, error) {
	return e.run(ctx, a, false)
}

// revert switches to the copy of a kept on disk, as apply switches to a
// download: the same journal, trial and rollback.
func (e *engine) revert(ctx context.Context, a *Artifact) (Result, error) {
	r, err := e.run(ctx, a, true)
	r.Reverted = err == nil && !r.Unchanged
	return r, err
}

func (e *engine) run(ctx context.Context, a *Artifact, revert bool) (Result, error) {
	unlock, err := e.lock()
	if err != nil {
		return Result{}, e.fail(a.Version, err)
	}
	defer unlock()
	st, _, err := e.load(ctx)
	if err != nil && !errors.Is(err, ErrRolledBack) {
		return Result{}, e.fail(a.Version, err)
	}
	if bad, ok := st.Bad[a.Version]; ok {
		return Result{}, e.fail(a.Version, fmt.Errorf("install %s/%s: %w: %s", a.App, a.Version, ErrMarkedBad, bad.Reason))
	}
	if st.Installed != nil && st.Installed.Version == a.Version {
		e.ev.Emit(event.InstallUnchanged, a.Version, "already installed")
		r := e.result(st)
		r.Unchanged = true
		return r, nil
	}
	if err := e.adopt(ctx, st); err != nil {
		return Result{}, e.fail(a.Version, fmt.Errorf("install %s/%s: %w", a.App, a.Version, err))
	}
	if !revert && e.alreadyLive(st, a) {
		return e.record(st, a)
	}
	source, prepare := "download", e.s.stage
	if revert {
		source, prepare = "kept copy", func(ctx context.Context, a *Artifact) (string, error) { return e.s.kept(ctx, st, a) }
	}
	e.ev.Emit(event.InstallStarted, a.Version, "", "from", installedVersion(st), "to", a.Version, "source", source)
	sha, err := prepare(ctx, a)
	if err != nil {
		return Result{}, e.refused(a, fmt.Errorf("install %s/%s: %w", a.App, a.Version, err))
	}
	e.h.fp("staged")
	if err := ctx.Err(); err != nil {
		// Stopped before the intent: nothing live changed, and nothing
		// staged is left.
		e.s.cleanup(ctx)
		return Result{}, e.fail(a.Version, fmt.Errorf("install %s/%s: %w; nothing changed", a.App, a.Version, err))
	}
	return e.switchTo(ctx, st, a, sha)
}

// switchTo records the intent, makes the prepared version live and runs
// its trial.
func (e *engine) switchTo(ctx context.Context, st *State, a *Artifact, sha string) (Result, error) {
	from := installedVersion(st)
	st.Pending = &Pending{Version: a.Version, SHA256: sha, Started: e.h.clock()}
	if err := e.save(st); err != nil {
		return Result{}, e.fail(a.Version, fmt.Errorf("install %s/%s: %w", a.App, a.Version, err))
	}
	e.h.fp("intent")
	if err := e.s.place(ctx, a); err != nil {
		_, rerr := e.recover(ctx, st)
		return Result{}, e.fail(a.Version, errors.Join(fmt.Errorf("install %s/%s: %w", a.App, a.Version, err), rerr))
	}
	var notDurable []string
	if err := e.s.swap(ctx, a); err != nil {
		if !e.swapped(ctx, st) {
			// Whatever part of the swap happened, recovery puts disk and
			// state back in agreement; the old version is live.
			res, rerr := e.recover(ctx, st)
			return res, e.fail(a.Version, errors.Join(fmt.Errorf("install %s/%s: swap: %w", a.App, a.Version, err), rerr))
		}
		// The rename happened and only a directory sync failed
		// (atomicfile.ErrNotDurable): the new version is live, so its
		// trial runs now, as recovery would run it, and the Result and
		// error say what the state says.
		notDurable = []string{"not_durable", err.Error()}
	}
	e.h.fp("swapped")
	e.ev.Emit(event.Swapped, a.Version, "", append([]string{"from", from, "to", a.Version}, notDurable...)...)
	return e.finish(ctx, st)
}

// installedVersion is the installed version for events ("" if none or unknown).
func installedVersion(st *State) string {
	if st.Installed == nil {
		return ""
	}
	return st.Installed.Version
}

// fail reports an install that stopped with err and returns err. A
// *RollbackError was reported as install.rollback_failed already.
func (e *engine) fail(version string, err error) error {
	if re := (*RollbackError)(nil); !errors.As(err, &re) {
		e.ev.Emit(event.InstallFailed, version, err.Error())
	}
	return err
}

// refused reports why a version could not be prepared: refused bytes or
// archive entries (security), a planted staging area (security), no copy
// on disk, or any other failure; and returns err.
func (e *engine) refused(a *Artifact, err error) error {
	var ve *VerifyError
	var se *stagingError
	switch {
	case errors.As(err, &ve):
		e.ev.Emit(event.InstallRejected, a.Version, err.Error(), "what", ve.What, "expected", ve.Want, "got", ve.Got)
	case errors.Is(err, ErrVerify), errors.Is(err, ErrUnsafeArchive):
		e.ev.Emit(event.InstallRejected, a.Version, err.Error())
	case errors.As(err, &se):
		e.ev.Emit(event.StagingRefused, a.Version, se.err.Error(), "dir", se.dir)
	case errors.Is(err, ErrNotOnDisk):
		e.ev.Emit(event.NotOnDisk, a.Version, err.Error())
	default:
		return e.fail(a.Version, err)
	}
	return err
}

// stagingError is a staging directory refused because others could use
// it (R51).
type stagingError struct {
	dir string
	err error
}

func (e *stagingError) Error() string { return "staging: " + e.err.Error() }
func (e *stagingError) Unwrap() error { return e.err }

// swapped reports whether the pending version is live on disk.
func (e *engine) swapped(ctx context.Context, st *State) bool {
	p := st.Pending
	id, err := e.s.active(ctx)
	return err == nil && id == e.s.id(Installed{Version: p.Version, SHA256: p.SHA256})
}

// adopt records a live version that ferry did not install (a program put
// in place by a package manager, self-updating for the first time) as the
// installed one, with an unknown version, so that the intent saved next
// names it: a failed trial or a crash then restores it from the copy that
// swap keeps, instead of treating the install as a first one (R42, R44).
// Only when nothing is live is an install a first install.
func (e *engine) adopt(ctx context.Context, st *State) error {
	if st.Installed != nil {
		return nil
	}
	id, err := e.s.active(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("identify the live version: %w", err)
	}
	v := e.s.fromID(id)
	st.Installed = &v
	e.ev.Emit(event.Adopted, "", "a live program ferry did not install is the installed version", "id", id)
	return nil
}

// alreadyLive reports whether the live version, which the state knows only
// by its hash (adopted, or rebuilt from disk), is byte for byte the
// artifact: its SHA-256 is the signed one. Installing it again would only
// swap identical bytes and keep a backup of them (ferry update --out, then
// --install binary on the same file).
func (e *engine) alreadyLive(st *State, a *Artifact) bool {
	sum, ok := a.Hashes["sha256"]
	if !ok || st.Installed == nil || st.Installed.Version != "" || st.Pending != nil {
		return false
	}
	return e.s.id(*st.Installed) == e.s.id(Installed{Version: a.Version, SHA256: hex.EncodeToString(sum)})
}

// record notes that the live bytes are version a.Version, without touching
// them: the version is installed, nothing changed on disk.
func (e *engine) record(st *State, a *Artifact) (Result, error) {
	prev, lost := st.Previous, st.Lost
	st.commitVersion(Installed{Version: a.Version, SHA256: st.Installed.SHA256})
	st.Previous, st.Lost = prev, lost
	if err := e.save(st); err != nil {
		return Result{}, fmt.Errorf("install %s/%s: %w", a.App, a.Version, err)
	}
	e.ev.Emit(event.InstallUnchanged, a.Version, "the live executable is this version's signed bytes: recorded, nothing changed",
		"sha256", st.Installed.SHA256)
	r := e.result(st)
	r.Unchanged = true
	return r, nil
}

// finish runs the health trial of the pending version, then commits it or
// rolls it back.
func (e *engine) finish(ctx context.Context, st *State) (Result, error) {
	p := st.Pending
	if e.health == nil && len(e.restart) == 0 && e.h.healthFn == nil {
		return e.commit(ctx, st)
	}
	if p.Tries >= e.maxTries {
		detail := fmt.Sprintf("%d trials were interrupted", p.Tries)
		e.ev.Emit(event.HealthFailed, p.Version, detail, "step", string(StepCrashLoop), "tries", strconv.Itoa(p.Tries))
		return e.rollback(ctx, st, reason(StepCrashLoop, detail))
	}
	p.Tries++
	if err := e.save(st); err != nil { // R44: counted before the new version starts
		return Result{}, e.fail(p.Version, fmt.Errorf("install %s/%s: %w", e.app, p.Version, err))
	}
	e.h.fp("trial")
	step, detail := e.trial(ctx, p.Version)
	if ctx.Err() != nil {
		// Interrupted, not failed: the trial resumes at the next Recover.
		return Result{}, e.fail(p.Version, fmt.Errorf("install %s/%s: trial: %w", e.app, p.Version, ctx.Err()))
	}
	e.h.fp("checked")
	tries := strconv.Itoa(p.Tries)
	if step != "" {
		e.ev.Emit(event.HealthFailed, p.Version, detail, "step", string(step), "tries", tries)
		return e.rollback(ctx, st, reason(step, detail))
	}
	e.ev.Emit(event.HealthPassed, p.Version, "", "tries", tries)
	return e.commit(ctx, st)
}

// trial restarts the new version and checks its health; it returns the
// step that failed and why, or "" if both passed.
func (e *engine) trial(ctx context.Context, version string) (Step, string) {
	env := e.env(version)
	if len(e.restart) > 0 {
		if err := runCmd(ctx, e.restart, env, defaultTimeout); err != nil {
			return StepRestart, err.Error()
		}
	}
	if err := e.check(ctx, env); err != nil {
		return StepHealth, err.Error()
	}
	return "", ""
}

func (e *engine) check(ctx context.Context, env []string) error {
	switch {
	case e.h.healthFn != nil:
		return e.h.healthFn(ctx, env)
	case e.health != nil:
		return e.health.check(ctx, env)
	}
	return nil
}

func (e *engine) env(version string) []string {
	return []string{"FERRY_APP=" + e.app, "FERRY_VERSION=" + version, "FERRY_PATH=" + e.s.runPath()}
}

func (e *engine) commit(ctx context.Context, st *State) (Result, error) {
	p := st.Pending
	from := installedVersion(st)
	st.commitVersion(Installed{Version: p.Version, SHA256: p.SHA256})
	var notDurable []string
	if err := e.save(st); errors.Is(err, atomicfile.ErrNotDurable) {
		// The committed state is in place (only the directory sync
		// failed), so the Result says committed; if a power loss undoes
		// it, recovery resumes the trial and commits again.
		notDurable = []string{"not_durable", err.Error()}
	} else if err != nil {
		return Result{}, e.fail(p.Version, fmt.Errorf("install %s/%s: commit: %w", e.app, p.Version, err))
	}
	e.h.fp("committed")
	e.ev.Emit(event.InstallDone, p.Version, "", append([]string{"from", from, "to", p.Version, "sha256", p.SHA256}, notDurable...)...)
	e.s.prune(ctx, st)
	return e.result(st), nil
}

// rollback restores the installed (previous live) version, marks the
// pending one bad and records why (R44). If the restore fails it returns a
// *RollbackError and leaves the rollback pending so that the next Recover
// tries again (R45).
//
// It runs to its end even when ctx is cancelled: putting back the version
// that ran is never left halfway because the caller is stopping.
func (e *engine) rollback(ctx context.Context, st *State, why string) (Result, error) {
	ctx = context.WithoutCancel(ctx)
	p := st.Pending
	p.Rollback = why
	if err := e.save(st); err != nil {
		return Result{}, e.rollbackFailed(st, why, err)
	}
	e.h.fp("rollback")
	if st.Installed == nil {
		return e.keepOnly(st, why)
	}
	if err := e.s.restore(ctx, *st.Installed); err != nil {
		return Result{}, e.rollbackFailed(st, why, err)
	}
	e.h.fp("restored")
	if st.Bad == nil {
		st.Bad = map[string]Bad{}
	}
	st.Bad[p.Version] = Bad{Reason: why, At: e.h.clock()}
	st.Pending, st.Failure = nil, nil
	if err := e.save(st); err != nil {
		st.Pending = p // on disk the rollback is still pending: Recover finishes it
		delete(st.Bad, p.Version)
		return Result{}, e.rollbackFailed(st, why, err)
	}
	e.h.fp("rolledback")
	r := e.result(st)
	r.RolledBack, r.Reason = true, why
	r.Failed, r.Detail = parseReason(why)
	ev := []string{"from", p.Version, "to", st.Installed.Version, "step", string(r.Failed)}
	if len(e.restart) > 0 {
		if err := runCmd(ctx, e.restart, e.env(st.Installed.Version), defaultTimeout); err != nil {
			r.RestartErr = fmt.Errorf("restart after rollback: %w", err)
			ev = append(ev, "restart_error", err.Error())
		}
	}
	e.ev.Emit(event.RolledBack, p.Version, why, ev...)
	e.s.prune(ctx, st)
	err := fmt.Errorf("install %s/%s: %w: %s", e.app, p.Version, ErrRolledBack, why)
	if r.RestartErr != nil {
		err = fmt.Errorf("%w; %w", err, r.RestartErr)
	}
	return r, err
}

// keepOnly handles a failed first install: there is nothing to roll back
// to, so the only version there is stays live and installed, marked bad,
// and the caller gets a *RollbackError. A newer release installs normally.
func (e *engine) keepOnly(st *State, reason string) (Result, error) {
	p := st.Pending
	if st.Bad == nil {
		st.Bad = map[string]Bad{}
	}
	st.Bad[p.Version] = Bad{Reason: reason, At: e.h.clock()}
	err := e.rollbackFailed(st, reason, errors.New("no previous version to roll back to"))
	st.Installed, st.Pending = &Installed{Version: p.Version, SHA256: p.SHA256}, nil
	if serr := e.save(st); serr != nil {
		return Result{}, errors.Join(err, serr)
	}
	return e.result(st), err
}

func (e *engine) rollbackFailed(st *State, reason string, err error) error {
	re := &RollbackError{App: e.app, Version: st.Pending.Version, Reason: reason, Err: err}
	st.Failure = &RollbackFailed{Version: re.Version, Reason: reason, Error: err.Error(), At: e.h.clock()}
	e.save(st) // best effort: the error is returned either way
	step, _ := parseReason(reason)
	e.ev.Emit(event.RollbackFailed, re.Version, err.Error(), "reason", reason, "step", string(step))
	return re
}

// recoverLocked takes the lock and runs recovery.
func (e *engine) recoverLocked(ctx context.Context) (Result, error) {
	unlock, err := e.lock()
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	_, res, err := e.load(ctx)
	return res, err
}

// state returns the current state after recovery; if recovery fails, the
// state that records the failure and the error.
func (e *engine) state(ctx context.Context) (State, error) {
	unlock, err := e.lock()
	if err != nil {
		return State{}, err
	}
	defer unlock()
	st, _, err := e.load(ctx)
	if st == nil {
		return State{}, err
	}
	if errors.Is(err, ErrRolledBack) {
		err = nil
	}
	return *st, err // with a *RollbackError, the state shows the failure
}
