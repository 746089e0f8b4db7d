//go:build unix

package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ferry-updates/ferry/event"
)

// revertRig is one strategy with 1.0.0 then 2.0.0 installed; live is the
// path of the running executable.
type revertRig struct {
	name string
	inst interface {
		installer
		Reverter
	}
	h    *hooks
	live string
	dir  string
	art  map[string]Artifact // the signed artifacts installed, by version
	rec  *event.Recorder
}

// newRevertRig builds a Binary (KindBinary), or Slots of archives of kind,
// or of binary artifacts ("raw").
func newRevertRig(t *testing.T, kind string) *revertRig {
	t.Helper()
	dir := t.TempDir()
	r := &revertRig{name: kind, dir: dir, art: map[string]Artifact{}, rec: &event.Recorder{}}
	if kind == KindBinary {
		os.Mkdir(filepath.Join(dir, "bin"), 0o755)
		b := &Binary{App: "app", Target: filepath.Join(dir, "bin", "app"), StateDir: filepath.Join(dir, "state"), Events: r.rec}
		r.inst, r.h, r.live = b, &b.hooks, b.Target
	} else {
		s := &Slots{Root: filepath.Join(dir, "srv"), App: "app", Events: r.rec}
		r.inst, r.h, r.live = s, &s.hooks, filepath.Join(s.Current(), "app")
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		r.art[v] = r.artifact(t, v)
		if _, err := r.inst.Apply(context.Background(), r.art[v]); err != nil {
			t.Fatalf("%s: install %s: %v", kind, v, err)
		}
	}
	return r
}

func (r *revertRig) artifact(t *testing.T, v string) Artifact {
	if r.name == "raw" {
		return killArtifact(t, r.dir, KindBinary, v, 0)
	}
	return killArtifact(t, r.dir, r.name, v, 0)
}

// signed is v's signed artifact without its download: Revert must not
// need it.
func (r *revertRig) signed(v string) Artifact {
	a := r.art[v]
	a.File = filepath.Join(r.dir, "no-such-download")
	return a
}

func (r *revertRig) state(t *testing.T) State {
	t.Helper()
	st, err := r.inst.State(context.Background())
	if err != nil {
		t.Fatalf("%s: state: %v", r.name, err)
	}
	return st
}

var revertKinds = []string{KindBinary, KindTarGz, "raw"}

// TestRevertToPrevious: a version still on disk comes back without a
// download, is recorded like an install, and the newer one can come back
// the same way.
func TestRevertToPrevious(t *testing.T) {
	ctx := context.Background()
	for _, k := range revertKinds {
		t.Run(k, func(t *testing.T) {
			r := newRevertRig(t, k)
			res, err := r.inst.Revert(ctx, r.signed("1.0.0"))
			if err != nil || res.Version != "1.0.0" || res.Previous != "2.0.0" || !res.Reverted || res.Unchanged {
				t.Fatalf("revert to 1.0.0: %+v %v", res, err)
			}
			if got := run(t, r.live); got != "1.0.0" {
				t.Fatalf("after the revert the live program prints %q", got)
			}
			st := r.state(t)
			if st.Installed.Version != "1.0.0" || st.Previous.Version != "2.0.0" || st.Pending != nil || len(st.Bad) != 0 ||
				!slices.Equal(st.History, []string{"2.0.0", "1.0.0"}) {
				t.Fatalf("state after the revert: %+v", st)
			}
			var started *event.Event
			for _, e := range r.rec.Events() {
				if e.Kind == event.InstallStarted && e.Version == "1.0.0" && e.Evidence["source"] == "kept copy" {
					started = &e
				}
			}
			if started == nil || started.Evidence["from"] != "2.0.0" {
				t.Errorf("no install.started from 2.0.0 with source kept copy in %v", r.rec.Events())
			}
			// And forward again: 2.0.0 is now the kept one.
			if res, err := r.inst.Revert(ctx, r.signed("2.0.0")); err != nil || res.Version != "2.0.0" || !res.Reverted {
				t.Fatalf("revert to 2.0.0: %+v %v", res, err)
			}
			if got := run(t, r.live); got != "2.0.0" {
				t.Fatalf("live program prints %q, want 2.0.0", got)
			}
			if res, err := r.inst.Revert(ctx, r.signed("2.0.0")); err != nil || !res.Unchanged {
				t.Fatalf("revert to the installed version: %+v %v, want Unchanged", res, err)
			}
		})
	}
}

// TestRevertRefusesAlteredCopy_R49: a signed pull leads to a downgrade
// only onto the signed bytes. A kept copy that is not the signed artifact
// (another build, altered on disk, missing, or not the previous version)
// is ErrNotOnDisk and nothing changes; one altered after it hashed right
// is also ErrVerify and a security event.
func TestRevertRefusesAlteredCopy_R49(t *testing.T) {
	ctx := context.Background()
	type tamper func(t *testing.T, r *revertRig, a *Artifact)
	kept := func(r *revertRig) string {
		if r.name == KindBinary {
			return filepath.Join(r.dir, "bin", ".app.ferry-old")
		}
		return filepath.Join(r.dir, "srv", "app", "versions", "1.0.0", "app")
	}
	cases := []struct {
		name     string
		kinds    []string
		tamper   tamper
		security bool
	}{
		{"other build signed", revertKinds, func(t *testing.T, r *revertRig, a *Artifact) {
			a.Hashes = map[string][]byte{"sha256": make([]byte, 32)}
		}, false},
		{"copy altered", []string{KindBinary}, func(t *testing.T, r *revertRig, a *Artifact) {
			if err := os.WriteFile(kept(r), script("666", 0), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"copy missing", []string{KindBinary, KindTarGz}, func(t *testing.T, r *revertRig, a *Artifact) {
			gone := kept(r)
			if r.name != KindBinary {
				gone = filepath.Dir(gone) // the slot
			}
			if err := os.RemoveAll(gone); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"slot file altered", []string{"raw"}, func(t *testing.T, r *revertRig, a *Artifact) {
			if err := os.WriteFile(kept(r), script("666", 0), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"altered while copied", []string{KindBinary}, func(t *testing.T, r *revertRig, a *Artifact) {
			r.h.failpoint = func(fp string) {
				if fp == "copy" {
					evil := []byte(strings.Replace(string(script("1.0.0", 0)), "1.0.0", "6.6.6", 1))
					os.WriteFile(kept(r), evil, 0o755) // same length, same inode
					r.h.failpoint = nil
				}
			}
		}, true},
	}
	for _, c := range cases {
		for _, k := range c.kinds {
			t.Run(c.name+"/"+k, func(t *testing.T) {
				r := newRevertRig(t, k)
				before := r.state(t)
				a := r.signed("1.0.0")
				c.tamper(t, r, &a)
				res, err := r.inst.Revert(ctx, a)
				if !errors.Is(err, ErrNotOnDisk) || res.Version != "" {
					t.Fatalf("revert onto a copy that is not the signed one: %+v %v, want ErrNotOnDisk", res, err)
				}
				if c.security != errors.Is(err, ErrVerify) {
					t.Errorf("error %v: ErrVerify is %v, want %v", err, errors.Is(err, ErrVerify), c.security)
				}
				if got := run(t, r.live); got != "2.0.0" {
					t.Fatalf("live program prints %q, want 2.0.0 unchanged", got)
				}
				after := r.state(t)
				if after.Installed.Version != "2.0.0" || after.Pending != nil || !slices.Equal(after.History, before.History) || len(after.Bad) != 0 {
					t.Fatalf("state changed: %+v", after)
				}
				var security bool
				for _, e := range r.rec.Events() {
					security = security || e.Kind.Security()
				}
				if security != c.security {
					t.Errorf("security event %v, want %v: %v", security, c.security, r.rec.Kinds())
				}
				if leftovers, _ := filepath.Glob(filepath.Join(r.dir, "bin", ".app.ferry-new-*")); len(leftovers) > 0 {
					t.Errorf("staging left behind: %v", leftovers)
				}
			})
		}
	}
	// Only the previous version's slot has a recorded hash: an older kept
	// slot is downloaded again.
	r := newRevertRig(t, KindTarGz)
	r.art["3.0.0"] = r.artifact(t, "3.0.0")
	if _, err := r.inst.Apply(ctx, r.art["3.0.0"]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.inst.Revert(ctx, r.signed("1.0.0")); !errors.Is(err, ErrNotOnDisk) {
		t.Fatalf("revert to a slot whose hash is not recorded: %v, want ErrNotOnDisk", err)
	}
}

// TestRevertUnhealthyReturnsToNewer: a reverted version that fails its
// health check is rolled back to the version that ran, and marked bad.
func TestRevertUnhealthyReturnsToNewer(t *testing.T) {
	ctx := context.Background()
	for _, k := range revertKinds {
		t.Run(k, func(t *testing.T) {
			r := newRevertRig(t, k)
			r.h.healthFn = func(_ context.Context, env []string) error {
				if slices.Contains(env, "FERRY_VERSION=1.0.0") {
					return errors.New("1.0.0 does not start here")
				}
				return nil
			}
			res, err := r.inst.Revert(ctx, r.signed("1.0.0"))
			if !errors.Is(err, ErrRolledBack) || !res.RolledBack || res.Version != "2.0.0" || res.Failed != StepHealth || res.Reverted {
				t.Fatalf("unhealthy revert: %+v %v, want a rollback to 2.0.0", res, err)
			}
			if got := run(t, r.live); got != "2.0.0" {
				t.Fatalf("live program prints %q, want 2.0.0", got)
			}
			st := r.state(t)
			if st.Installed.Version != "2.0.0" || st.Pending != nil || st.Bad["1.0.0"].Reason == "" {
				t.Fatalf("state %+v", st)
			}
			if _, err := r.inst.Revert(ctx, r.signed("1.0.0")); !errors.Is(err, ErrMarkedBad) {
				t.Fatalf("revert to a version marked bad: %v, want ErrMarkedBad", err)
			}
		})
	}
}

// TestApplyOlderVersion: the installer does not refuse a downgrade (the
// client decides, on a signed pull only) and leaves no mark on the newer
// version, which installs again normally.
func TestApplyOlderVersion(t *testing.T) {
	ctx := context.Background()
	for _, k := range revertKinds {
		t.Run(k, func(t *testing.T) {
			r := newRevertRig(t, k)
			res, err := r.inst.Apply(ctx, r.art["1.0.0"])
			if err != nil || res.Version != "1.0.0" || res.Previous != "2.0.0" || res.Unchanged || res.Reverted {
				t.Fatalf("apply older 1.0.0: %+v %v", res, err)
			}
			if got := run(t, r.live); got != "1.0.0" {
				t.Fatalf("live program prints %q", got)
			}
			st := r.state(t)
			if st.Installed.Version != "1.0.0" || st.Previous.Version != "2.0.0" || len(st.Bad) != 0 || st.Failure != nil ||
				!slices.Equal(st.History, []string{"2.0.0", "1.0.0"}) {
				t.Fatalf("state after the downgrade: %+v", st)
			}
			if res, err := r.inst.Apply(ctx, r.art["2.0.0"]); err != nil || res.Version != "2.0.0" || res.Unchanged {
				t.Fatalf("the newer version again: %+v %v", res, err)
			}
			if got := run(t, r.live); got != "2.0.0" {
				t.Fatalf("live program prints %q", got)
			}
		})
	}
}

// TestKillDuringRevert_R42: the helper process reverts from 2.0.0 to the
// 1.0.0 kept on disk and SIGKILLs itself at each fail-point; after
// recovery 1.0.0 or 2.0.0 runs, the state agrees, and a 1.0.0 that fails
// its health check never stays live. Fail-points only (about 50 process
// starts): every file system operation of the journal is what
// TestPowerLossDuringRevert_R43 crashes at, in process.
func TestKillDuringRevert_R42(t *testing.T) {
	base := t.TempDir()
	var kills atomic.Int64
	var wg sync.WaitGroup
	for _, kind := range []string{KindBinary, KindTarGz} {
		for _, healthy := range []bool{true, false} {
			wg.Go(func() {
				for _, at := range failpoints {
					killed, err := revertKillOnce(t, base, kind, at, healthy)
					if err != nil {
						t.Error(err)
						return
					}
					if killed {
						kills.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d kills", kills.Load())
	if kills.Load() < 30 {
		t.Fatalf("only %d kills, want at least 30", kills.Load())
	}
}

// revertKillOnce installs 1.0.0 (healthy or not: its health is checked
// only at the revert) and 2.0.0, runs the helper to revert to 1.0.0 with a
// kill at the fail-point at, recovers and checks.
func revertKillOnce(t *testing.T, base, kind, at string, healthy bool) (killed bool, err error) {
	dir, err := os.MkdirTemp(base, "r")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	inst, h, live := killRig(dir, kind)
	check := h.healthFn
	h.healthFn = nil // 1.0.0 is installed without a check
	code := 0
	if !healthy {
		code = 1
	}
	one := killArtifact(t, dir, kind, "1.0.0", code)
	if _, err := inst.Apply(context.Background(), one); err != nil {
		return false, err
	}
	h.healthFn = check
	if _, err := inst.Apply(context.Background(), killArtifact(t, dir, kind, "2.0.0", 0)); err != nil {
		return false, err
	}
	one.File = ""
	a, _ := json.Marshal(one)
	os.WriteFile(filepath.Join(dir, "artifact.json"), a, 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=kill", "FERRY_OP=revert", "FERRY_DIR="+dir, "FERRY_KIND="+kind, "FERRY_KILL_AT=fp:"+at)
	cmd.Stderr = io.Discard
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			return false, fmt.Errorf("%s %s: helper failed: %v", kind, at, err)
		}
		killed = true
	} else if err != nil {
		return false, err
	}
	what := fmt.Sprintf("revert %s healthy=%v kill at %s", kind, healthy, at)
	if _, err := inst.Recover(context.Background()); err != nil && !errors.Is(err, ErrRolledBack) {
		return killed, fmt.Errorf("%s: recover: %v", what, err)
	}
	runs := intactScript(live)
	st, err := inst.State(context.Background())
	switch {
	case err != nil:
		return killed, fmt.Errorf("%s: state: %v", what, err)
	case runs != "1.0.0" && runs != "2.0.0":
		return killed, fmt.Errorf("%s: live program is %q: neither version", what, runs)
	case !healthy && runs == "1.0.0":
		return killed, fmt.Errorf("%s: unhealthy 1.0.0 stayed live", what)
	case !stateAgrees(st, runs, false):
		return killed, fmt.Errorf("%s: state %+v pending %+v bad %v disagrees with live %s", what, st.Installed, st.Pending, st.Bad, runs)
	case kind != KindBinary:
		return killed, unknownSlots(dir, st)
	}
	return killed, nil
}
