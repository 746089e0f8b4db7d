package install

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// newRevertMemRig installs 1.0.0 and 2.0.0 on a faultfs.Mem; with
// !healthy, 1.0.0 fails its health check from then on (at the revert).
func newRevertMemRig(t *testing.T, c memCase, healthy bool) *memRig {
	r := newMemRig(t, c, true)
	r.install1()
	if _, err := r.inst.Apply(context.Background(), r.artifact("2.0.0")); err != nil {
		t.Fatalf("%s: install 2.0.0: %v", c.name, err)
	}
	if !healthy {
		r.h.healthFn = func(_ context.Context, env []string) error {
			if slices.Contains(env, "FERRY_VERSION=1.0.0") {
				return errors.New("unhealthy")
			}
			return nil
		}
	}
	return r
}

// forEachRevertOp reverts from 2.0.0 to 1.0.0 once per mutating
// operation, with inject arming a fault at that operation, until a revert
// runs to its end without reaching it. It returns the operations faulted
// per case.
func forEachRevertOp(t *testing.T, inject func(r *memRig, op int), after func(r *memRig, what string, healthy bool, res Result, err error)) map[string]int {
	points := map[string]int{}
	for _, c := range memCases {
		for _, healthy := range []bool{true, false} {
			for n := 1; ; n++ {
				r := newRevertMemRig(t, c, healthy)
				a := r.artifact("1.0.0")
				a.File = "/dl/none" // a revert reads the kept copy only
				base := r.m.Ops()
				inject(r, base+n)
				res, err := r.inst.(Reverter).Revert(context.Background(), a)
				what := fmt.Sprintf("revert %s healthy=%v op %d (err %v)", c.name, healthy, n, err)
				reached := r.m.Ops() >= base+n
				after(r, what, healthy, res, err)
				if !reached {
					break
				}
				points[fmt.Sprintf("%s healthy=%v", c.name, healthy)]++
			}
		}
	}
	for name, n := range points {
		if n < 10 {
			t.Errorf("%s: only %d operations faulted", name, n)
		}
	}
	if len(points) != 2*len(memCases) {
		t.Errorf("faulted cases %v, want every case", points)
	}
	return points
}

// checkRevert recovers and checks: 1.0.0 or 2.0.0 is live and intact, an
// unhealthy 1.0.0 is not, the state records the live version with nothing
// pending, the newer version is kept intact while 1.0.0 runs, and no
// staging is left.
func (r *memRig) checkRevert(what string, healthy bool) {
	t := r.t
	t.Helper()
	ctx := context.Background()
	if _, err := r.inst.Recover(ctx); err != nil && !errors.Is(err, ErrRolledBack) {
		t.Fatalf("%s: recover: %v", what, err)
	}
	live := r.live()
	st, err := r.inst.State(ctx)
	switch {
	case err != nil:
		t.Fatalf("%s: state: %v", what, err)
	case live == "":
		t.Fatalf("%s: neither version is live and intact", what)
	case !healthy && live != "2.0.0":
		t.Fatalf("%s: unhealthy %s stayed live", what, live)
	case st.Pending != nil || st.Installed == nil || st.Installed.Version != live:
		t.Fatalf("%s: state %+v / pending %+v disagrees with live %s", what, st.Installed, st.Pending, live)
	case live == "1.0.0" && !r.kept("2.0.0"):
		t.Fatalf("%s: the newer version is not kept intact", what)
	}
	if _, bad := st.Bad[live]; bad {
		t.Fatalf("%s: live %s is marked bad", what, live)
	}
	for _, dir := range []string{"/bin", "/srv/app"} {
		ents, _ := r.m.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "ferry-new") || e.Name() == ".staging" || e.Name() == ".current-new" {
				t.Fatalf("%s: leftover %s/%s", what, dir, e.Name())
			}
		}
	}
}

// revertAgrees checks, before recovery, that a revert's Result and error
// say what the state file says.
func (r *memRig) revertAgrees(what string, res Result, err error) {
	r.t.Helper()
	name := "/state/state.json"
	if r.c.kind != KindBinary {
		name = "/srv/app/state.json"
	}
	st, _, lerr := loadState(r.m, name, "app")
	if lerr != nil {
		return
	}
	committed := st.Installed != nil && st.Installed.Version == "1.0.0" && st.Pending == nil
	var re *RollbackError
	switch {
	case err == nil && (!committed || res.Version != "1.0.0"):
		r.t.Fatalf("%s: Revert succeeded with %+v, state installed %+v pending %+v", what, res, st.Installed, st.Pending)
	case err != nil && committed && !errors.As(err, &re):
		r.t.Fatalf("%s: Revert failed (%v) but the state committed 1.0.0", what, err)
	}
}

// TestPowerLossDuringRevert_R43 loses power at every operation of a
// revert (Binary, Binary over an adopted 1.0.0, Slots of archives and of a
// binary): after the reboot and recovery the old or the new version runs.
func TestPowerLossDuringRevert_R43(t *testing.T) {
	points := forEachRevertOp(t, func(r *memRig, op int) { r.m.CrashAt(op) }, func(r *memRig, what string, healthy bool, _ Result, _ error) {
		r.m.Reboot()
		r.checkRevert("power loss "+what, healthy)
	})
	t.Logf("operations faulted: %v", points)
}

// TestFaultsDuringRevert_R46 fails every operation of a revert in turn.
func TestFaultsDuringRevert_R46(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		forEachRevertOp(t, func(r *memRig, op int) { r.m.FailAt(op, errno) }, func(r *memRig, what string, healthy bool, res Result, err error) {
			r.revertAgrees(errno.Error()+" "+what, res, err)
			r.checkRevert(errno.Error()+" "+what, healthy)
		})
	}
}
