//go:build unix

package install

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/event"
)

// TestEvents checks that every step of an install, a refusal and a
// rollback emits one typed event carrying the evidence, and that the
// Result names the failed step without anyone parsing Reason.
func TestEvents(t *testing.T) {
	ctx := context.Background()
	var rec event.Recorder
	b, dir := newBinary(t)
	b.Events = &rec
	if _, err := b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Kinds(), []event.Kind{event.InstallStarted, event.Swapped, event.InstallDone}; !slices.Equal(got, want) {
		t.Fatalf("first install: events %v, want %v", got, want)
	}
	for _, e := range rec.Events() {
		if e.App != "hello" || e.Version != "1.0.0" || e.Time.IsZero() {
			t.Errorf("event not stamped: %+v", e)
		}
	}
	steps := func(f func()) []event.Event {
		n := len(rec.Events())
		f()
		return rec.Events()[n:]
	}

	bad := artifact(t, dir, "hello", "1.1.0", KindBinary, script("1.1.0", 0))
	bad.Hashes["sha256"][0] ^= 1
	ev := steps(func() { b.Apply(ctx, bad) })
	if len(ev) != 2 || ev[1].Kind != event.InstallRejected || !ev[1].Kind.Security() ||
		ev[1].Evidence["what"] != "sha256" || ev[1].Evidence["expected"] == "" || ev[1].Evidence["got"] == "" {
		t.Fatalf("refused artifact: events %+v, want install.started and one install.rejected with the evidence", ev)
	}

	b.Health = &Health{Cmd: []string{"false"}}
	var res Result
	ev = steps(func() { res, _ = b.Apply(ctx, artifact(t, dir, "hello", "1.2.0", KindBinary, script("1.2.0", 0))) })
	kinds := []event.Kind{}
	for _, e := range ev {
		kinds = append(kinds, e.Kind)
	}
	if want := []event.Kind{event.InstallStarted, event.Swapped, event.HealthFailed, event.RolledBack}; !slices.Equal(kinds, want) {
		t.Fatalf("rollback: events %v, want %v", kinds, want)
	}
	hf, rb := ev[2], ev[3]
	if hf.Evidence["step"] != "health" || !strings.Contains(hf.Cause, "exit status 1") {
		t.Errorf("health.failed %+v, want step health and the check's failure as cause", hf)
	}
	if rb.Version != "1.2.0" || rb.Evidence["from"] != "1.2.0" || rb.Evidence["to"] != "1.0.0" || !strings.Contains(rb.Cause, "exit status 1") {
		t.Errorf("install.rolled_back %+v, want from 1.2.0 to 1.0.0 with the cause", rb)
	}
	if res.Failed != StepHealth || !strings.Contains(res.Detail, "exit status 1") || strings.HasPrefix(res.Detail, "health check") {
		t.Errorf("Result %+v: want Failed=health and Detail = the check's error alone", res)
	}

	b.Health = nil
	ev = steps(func() { b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))) })
	if len(ev) != 1 || ev[0].Kind != event.InstallUnchanged {
		t.Errorf("re-apply: events %+v, want one install.unchanged", ev)
	}
	damage(t, filepath.Join(b.StateDir, "state.json"), stateMangles["flipped"])
	ev = steps(func() { b.State(ctx) })
	if len(ev) != 1 || ev[0].Kind != event.StateCorrupt || ev[0].Evidence["recovered_from"] == "" {
		t.Errorf("corrupt state file: events %+v, want one install.state_corrupt", ev)
	}
	b.failpoint = func(n string) {
		if n == "swapped" {
			panic("crash")
		}
	}
	func() {
		defer func() { recover() }()
		b.Apply(ctx, artifact(t, dir, "hello", "1.4.0", KindBinary, script("1.4.0", 0)))
	}()
	b.failpoint = nil
	ev = steps(func() { b.Recover(ctx) })
	if len(ev) < 2 || ev[0].Kind != event.Recovered || ev[0].Evidence["action"] != "resume_trial" || ev[len(ev)-1].Kind != event.InstallDone {
		t.Errorf("recovery after a crash once 1.4.0 was live: events %+v, want install.recovered (resume_trial) ... install.done", ev)
	}
	b.Restart = []string{"false"}
	b.Apply(ctx, artifact(t, dir, "hello", "1.5.0", KindBinary, script("1.5.0", 0)))
	ev = rec.Events()
	if last := ev[len(ev)-1]; last.Kind != event.RolledBack || last.Evidence["step"] != "restart" || last.Evidence["restart_error"] == "" {
		t.Errorf("restart failure: last event %+v, want a rollback from the restart step that also says the restart after it failed", last)
	}
}
