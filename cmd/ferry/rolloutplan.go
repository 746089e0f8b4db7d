package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// planFlags are ferry rollout start's flags of a guarded rollout.
type planFlags struct {
	stages        string
	stageWait     time.Duration
	minHealthy    int
	budget        string
	checkInterval time.Duration
}

var planFlagNames = []string{"stages", "stage-wait", "min-healthy", "budget", "check-interval"}

func (p *planFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.stages, "stages", "", "a staged rollout guarded by the server: the shares of its stages in percent, rising, e.g. 1,10,50,100 (with --server)")
	f.DurationVar(&p.stageWait, "stage-wait", 0, "with --stages: the least time each stage lasts before the next, e.g. 30m")
	f.IntVar(&p.minHealthy, "min-healthy", guard.DefaultMinHealthy, "with --stages: the healthy reports a stage needs (from installations that started in it) to advance")
	f.StringVar(&p.budget, "budget", "", "the failure budget: the share of the started installations that may fail or go silent before the server halts the rollout; with --stages "+rollout.Percent(guard.DefaultBudget)+" unless given, and alone with --percent it makes a watched rollout (a plain --percent start has no plan and no budget)")
	f.DurationVar(&p.checkInterval, "check-interval", guard.DefaultCheckInterval, "the agents' check interval: an installation silent for twice this after it started the release counts as failed")
}

// plan returns the plan the flags give, or nil when no plan flag is set.
func (p *planFlags) plan(f *pflag.FlagSet) (*guard.Plan, error) {
	set := false
	for _, n := range planFlagNames {
		set = set || f.Changed(n)
	}
	if !set {
		return nil, nil
	}
	var out guard.Plan
	if p.stages != "" {
		s, err := guard.ParseStages(p.stages)
		if err != nil {
			return nil, fmt.Errorf("--stages: %w", err)
		}
		out.Stages = s
	} else {
		for _, n := range []string{"stage-wait", "min-healthy"} {
			if f.Changed(n) {
				return nil, fmt.Errorf("--%s goes with --stages", n)
			}
		}
	}
	budget := p.budget
	if budget == "" {
		budget = rollout.Percent(guard.DefaultBudget)
	}
	b, err := rollout.ParsePercent(budget)
	if err != nil || b == 0 {
		return nil, fmt.Errorf("--budget %q: want a share above 0 and at most 100%%, e.g. 5%% or 0.5", p.budget)
	}
	if p.minHealthy < 1 {
		return nil, fmt.Errorf("--min-healthy %d: a stage needs at least 1 healthy report to advance", p.minHealthy)
	}
	if p.checkInterval <= 0 || p.stageWait < 0 {
		return nil, fmt.Errorf("--check-interval must be positive and --stage-wait not negative")
	}
	out.StageWait, out.MinHealthy, out.Budget, out.CheckInterval = p.stageWait, p.minHealthy, b, p.checkInterval
	return &out, out.Check()
}

// describePlan says a plan in words: "stages 1% 10% 100%, each at least
// 30m with 20 healthy reports; halts above 5% failed (silent after 2h)".
func describePlan(p guard.Plan) string {
	p = p.WithDefaults()
	halt := fmt.Sprintf("halts above %s failed (silent for %v counts as failed)", rollout.Percent(p.Budget), 2*p.CheckInterval)
	if len(p.Stages) == 0 {
		return "watched: never widened; " + halt
	}
	shares := make([]string, len(p.Stages))
	for i, bp := range p.Stages {
		shares[i] = rollout.Percent(bp)
	}
	return fmt.Sprintf("stages %s, each at least %v and %d healthy reports; %s", strings.Join(shares, " "), p.StageWait, p.MinHealthy, halt)
}

// describeEvidence says the guard's counts in words.
func describeEvidence(s guard.Status) string {
	stage := ""
	if len(s.Plan.Stages) > 0 {
		stage = fmt.Sprintf("stage %d of %d since %s, %d healthy in it; ", s.Stage+1, len(s.Plan.Stages), s.StageSince.UTC().Format(time.RFC3339), s.StageHealthy)
	}
	if s.Evaluated.IsZero() {
		return stage + "no evidence counted yet"
	}
	return fmt.Sprintf("%s%d started: %d healthy, %d failed, %d silent, %d pending (failed share %.1f%%), evaluated %s",
		stage, s.Started, s.Healthy, s.Failed, s.Silent, s.Pending, 100*s.FailedShare, s.Evaluated.UTC().Format(time.RFC3339))
}
