package guard_test

import (
	"fmt"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// A release at its first stage (1%) for an hour, past its 30 minute wait,
// with 19 healthy installations and one whose health check failed: 5% of
// the started installations failed, which the budget allows, but one
// healthy report is missing, so the stage holds.
func ExampleEvaluate() {
	t0 := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	plan := guard.Plan{Stages: []int{100, 1000, rollout.Full}, StageWait: 30 * time.Minute, MinHealthy: 20, Budget: 500}
	cur := guard.Current{State: rollout.Active, BasisPoints: 100, StageSince: t0}
	var ev []guard.Outcome
	for i := range 19 {
		ev = append(ev, guard.Outcome{InstallID: fmt.Sprint("ok", i), Started: t0, Healthy: t0.Add(time.Minute)})
	}
	ev = append(ev, guard.Outcome{InstallID: "bad", Started: t0, Failed: t0.Add(time.Minute)})
	v := guard.Evaluate(plan, cur, ev, t0.Add(time.Hour))
	fmt.Println(v.Action, v.Status.Held)
	fmt.Println(v.Status.Reason)
	// Output:
	// none true
	// stage 1 of 3 (1%) holds: 19 of the 20 healthy reports it needs to advance; 1 of 20 failed, budget 5%
}
