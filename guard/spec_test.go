package guard_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// TestSpecStart: the starts ferry rollout start and the dashboard's form
// accept, and the one line that refuses the others, naming the fields as
// flags unless Names says otherwise.
func TestSpecStart(t *testing.T) {
	def := guard.Plan{MinHealthy: guard.DefaultMinHealthy, Budget: guard.DefaultBudget, CheckInterval: guard.DefaultCheckInterval}
	staged := def
	staged.Stages, staged.StageWait, staged.MinHealthy, staged.Budget, staged.CheckInterval = []int{100, 1000, 5000, rollout.Full}, 30*time.Minute, 5, 250, 10*time.Minute
	watched := def
	watched.Budget = 1000
	defStages := def
	defStages.Stages = []int{2000, rollout.Full}
	for _, c := range []struct {
		name string
		spec guard.Spec
		bp   int
		plan *guard.Plan
		err  string
	}{
		{"plain", guard.Spec{Percent: "5"}, 500, nil, ""},
		{"staged", guard.Spec{Stages: "1,10,50,100", StageWait: "30m0s", MinHealthy: "5", Budget: "2.5%", CheckInterval: "10m"}, 100, &staged, ""},
		{"staged, defaults", guard.Spec{Stages: "20,100"}, 2000, &defStages, ""},
		{"watched", guard.Spec{Percent: "5", Budget: "10"}, 500, &watched, ""},
		{"watched, budget and check interval", guard.Spec{Percent: "0.5", Budget: "5%", CheckInterval: "1h"}, 50, &def, ""},
		{"check interval alone", guard.Spec{Percent: "0.5", CheckInterval: "1h"}, 0, nil, "--check-interval goes with --stages, or with --budget for a watched rollout"},
		{"no share", guard.Spec{}, 0, nil, "no share: pass --percent P, or --stages S1,S2,... for a staged rollout"},
		{"no share, budget", guard.Spec{Budget: "5"}, 0, nil, "no share: pass --percent P"},
		{"bad percent", guard.Spec{Percent: "101"}, 0, nil, `--percent: invalid percent "101"`},
		{"both", guard.Spec{Percent: "5", Stages: "1,10"}, 0, nil, "use either --stages (the first stage is the share it starts at) or --percent, not both"},
		{"falling stages", guard.Spec{Stages: "10,1"}, 0, nil, `--stages: stages "10,1": stage 2 (1%) is not above stage 1 (10%): stages rise`},
		{"zero stage", guard.Spec{Stages: "0,10"}, 0, nil, `--stages: stages "0,10": stage 1 is 0 basis points`},
		{"budget 0", guard.Spec{Percent: "5", Budget: "0"}, 0, nil, `--budget "0": want a share above 0 and at most 100%, e.g. 5% or 0.5`},
		{"budget over 100", guard.Spec{Percent: "5", Budget: "100.01"}, 0, nil, `--budget "100.01": want a share above 0`},
		{"stage wait alone", guard.Spec{Percent: "5", StageWait: "1h"}, 0, nil, "--stage-wait goes with --stages"},
		{"min healthy alone", guard.Spec{Percent: "5", MinHealthy: "3"}, 0, nil, "--min-healthy goes with --stages"},
		{"min healthy 0", guard.Spec{Stages: "1,10", MinHealthy: "0"}, 0, nil, "--min-healthy 0: a stage needs at least 1 healthy report to advance"},
		{"min healthy words", guard.Spec{Stages: "1,10", MinHealthy: "many"}, 0, nil, `--min-healthy "many": want a whole number`},
		{"negative wait", guard.Spec{Stages: "1,10", StageWait: "-1m"}, 0, nil, "--check-interval must be positive and --stage-wait not negative"},
		{"zero interval", guard.Spec{Percent: "1", Budget: "5", CheckInterval: "0"}, 0, nil, "--check-interval must be positive and --stage-wait not negative"},
		{"interval words", guard.Spec{Percent: "1", Budget: "5", CheckInterval: "hourly"}, 0, nil, `--check-interval "hourly": want a duration such as 30m or 1h`},
		{"named as a form", guard.Spec{Percent: "5", StageWait: "1h", Names: map[string]string{"stage-wait": "stage wait", "stages": "stages"}}, 0, nil, "stage wait goes with stages"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bp, plan, err := c.spec.Start()
			if c.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.err) {
					t.Fatalf("Start() = %d, %+v, %v; want the error %q", bp, plan, err, c.err)
				}
				if plan != nil || bp != 0 {
					t.Errorf("refused, yet %d, %+v", bp, plan)
				}
				return
			}
			if err != nil || bp != c.bp || !reflect.DeepEqual(plan, c.plan) {
				t.Fatalf("Start() = %d, %+v, %v; want %d, %+v", bp, plan, err, c.bp, c.plan)
			}
		})
	}
	if _, _, err := (guard.Spec{Budget: "5"}).Start(); !errors.Is(err, guard.ErrNoShare) {
		t.Errorf("no share: %v, want ErrNoShare", err)
	}
}

// FuzzSpecStart: whatever is typed, Start refuses it or returns a share
// within 0..Full and a plan that Check accepts, whose first stage, if it
// has stages, is the share.
func FuzzSpecStart(f *testing.F) {
	f.Add("5", "", "", "", "", "")
	f.Add("", "1,10,50,100", "30m", "20", "5%", "1h")
	f.Add("0.5", "", "", "", "0.1", "-1s")
	f.Fuzz(func(t *testing.T, percent, stages, wait, healthy, budget, interval string) {
		s := guard.Spec{Percent: percent, Stages: stages, StageWait: wait, MinHealthy: healthy, Budget: budget, CheckInterval: interval}
		bp, plan, err := s.Start()
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("an error of more than one line: %q", err)
			}
			return
		}
		if bp < 0 || bp > rollout.Full {
			t.Fatalf("share %d", bp)
		}
		if plan == nil {
			if s.Planned() {
				t.Fatalf("plan fields given, no plan")
			}
			return
		}
		if err := plan.Check(); err != nil || plan.Budget < 1 || plan.MinHealthy < 1 || plan.CheckInterval <= 0 {
			t.Fatalf("plan %+v: %v", plan, err)
		}
		if len(plan.Stages) > 0 && plan.Stages[0] != bp {
			t.Fatalf("starts at %d, first stage %d", bp, plan.Stages[0])
		}
	})
}

// A guarded start as typed: to the dashboard's form or as flags of ferry
// rollout start --server, the same share and plan.
func ExampleSpec_Start() {
	s := guard.Spec{Stages: "1,10,50,100", StageWait: "30m", MinHealthy: "20", Budget: "5%", CheckInterval: "1h"}
	bp, plan, err := s.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rollout.Percent(bp))
	fmt.Println(plan.Describe())
	_, _, err = guard.Spec{Percent: "5", Budget: "0"}.Start()
	fmt.Println(err)
	// Output:
	// 1%
	// stages 1% 10% 50% 100%, each at least 30m0s and 20 healthy reports; halts above 5% failed (silent for 2h0m0s counts as failed)
	// --budget "0": want a share above 0 and at most 100%, e.g. 5% or 0.5
}
