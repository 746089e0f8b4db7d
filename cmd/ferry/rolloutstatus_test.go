package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/server"
)

// TestRolloutStatusGuardedLastStage: a guarded release at its last stage,
// whose decision was pruned at 100%, shows "(guarded, last stage)", not
// "(no decision)" beside the plan the server carries out; its plan has no
// "each at least 0s" or "1 healthy reports".
func TestRolloutStatusGuardedLastStage(t *testing.T) {
	at := time.Date(2026, 12, 2, 13, 2, 45, 0, time.UTC)
	g := &guard.Status{App: "hello", Version: "1.4.0", Plan: guard.Plan{Stages: []int{5000, rollout.Full}, MinHealthy: 1}.WithDefaults(),
		Stage: 1, StageSince: at, BasisPoints: rollout.Full, State: rollout.Active, Evaluated: at,
		Reason: "last stage, watching the budget: 0 of 4 failed, budget 5%"}
	full := rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active}
	st := server.RolloutStatus{App: "hello", Releases: []server.ReleaseRollout{
		{Version: "1.4.0", Entry: full, Guard: g},
		{Version: "1.3.0", Entry: full},
	}}
	var b strings.Builder
	if err := printRolloutStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"1.4.0    stable   100%   active (guarded, last stage)\n",
		"1.3.0    stable   100%   active (no decision)\n",
		"1.4.0: guarded: stages 50% 100%, no stage wait, each at least 1 healthy report; ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the status lacks %q:\n%s", want, out)
		}
	}
}
