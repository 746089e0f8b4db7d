package install

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCancelledApply: an Apply whose context is cancelled at any step
// (the download done, during the verified copy or the unpacking, after
// staging, after the intent or the swap, during the health trial, during a
// rollback) leaves the old or the new version live and a state file that
// says which: before the intent nothing changed and nothing is left;
// after the swap the new version is live with its trial pending, which
// the next Recover resumes; a rollback is never left halfway. The agent
// does not cancel a running install on SIGTERM, but a caller may.
func TestCancelledApply(t *testing.T) {
	points := []string{"before", "copy", "extract", "slots.unpacked", "staged", "intent", "swapped", "trial", "health", "rollback"}
	for _, c := range memCases {
		for _, healthy := range []bool{true, false} {
			for _, at := range points {
				if at == "rollback" && healthy || at == "extract" && (c.kind == KindBinary || c.kind == "raw") ||
					at == "slots.unpacked" && c.kind == KindBinary {
					continue // not on this path
				}
				t.Run(fmt.Sprintf("%s/healthy=%v/%s", c.name, healthy, at), func(t *testing.T) {
					cancelledApply(t, c, healthy, at)
				})
			}
		}
	}
}

func cancelledApply(t *testing.T, c memCase, healthy bool, at string) {
	r := newMemRig(t, c, healthy)
	r.install1()
	a := r.artifact("2.0.0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reached := at == "before"
	r.h.failpoint = func(fp string) {
		if fp == at {
			reached = true
			cancel()
		}
	}
	check := r.h.healthFn
	if at == "health" {
		r.h.healthFn = func(hctx context.Context, env []string) error {
			if strings.Contains(strings.Join(env, " "), "FERRY_VERSION=2.0.0") {
				reached = true
				cancel()
				return hctx.Err()
			}
			return check(hctx, env)
		}
	}
	if at == "before" {
		cancel()
	}
	res, err := r.inst.Apply(ctx, a)
	r.h.failpoint, r.h.healthFn = nil, check
	if !reached {
		t.Fatalf("%s: fail-point %s not reached", c.name, at)
	}
	st, _, lerr := loadState(r.m, r.statePath(), "app")
	if lerr != nil {
		t.Fatalf("state after the cancelled apply: %v", lerr)
	}
	live := r.live()
	switch at {
	case "before", "copy", "extract", "slots.unpacked", "staged":
		if !errors.Is(err, context.Canceled) || live != "1.0.0" || st.Pending != nil || !r.agrees(*st, "1.0.0") {
			t.Fatalf("cancelled before the switch: %+v %v; live %q, state %+v pending %+v; want 1.0.0 untouched", res, err, live, st.Installed, st.Pending)
		}
		r.noStaging(t)
	case "rollback":
		var re *RollbackError
		if !errors.Is(err, ErrRolledBack) || errors.As(err, &re) || live != "1.0.0" || st.Pending != nil {
			t.Fatalf("cancelled during the rollback: %+v %v; live %q, pending %+v; want the rollback finished", res, err, live, st.Pending)
		}
	default:
		// The switch may have happened: the state names what is live.
		switch {
		case !errors.Is(err, context.Canceled) && !errors.Is(err, ErrRolledBack) && err != nil:
			t.Fatalf("cancelled at %s: %v", at, err)
		case st.Pending != nil && (live != st.Pending.Version || st.Pending.Rollback != ""):
			t.Fatalf("live %q but pending %+v", live, st.Pending)
		case st.Pending == nil && !r.agrees(*st, live):
			t.Fatalf("live %q but state %+v", live, st.Installed)
		}
	}
	r.check("after recovery", healthy)
}

func (r *memRig) statePath() string {
	if r.c.kind == KindBinary {
		return "/state/state.json"
	}
	return "/srv/app/state.json"
}

// noStaging fails if staging files are left, before any recovery.
func (r *memRig) noStaging(t *testing.T) {
	t.Helper()
	for _, dir := range []string{"/bin", "/srv/app"} {
		ents, _ := r.m.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), "ferry-new") || e.Name() == ".staging" {
				t.Fatalf("staging left: %s/%s", dir, e.Name())
			}
		}
	}
}
