package main

import (
	"fmt"
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

func (p *planFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.stages, "stages", "", "a staged rollout guarded by the server: the shares of its stages in percent, rising, e.g. 1,10,50,100 (with --server)")
	f.DurationVar(&p.stageWait, "stage-wait", 0, "with --stages: the least time each stage lasts before the next, e.g. 30m")
	f.IntVar(&p.minHealthy, "min-healthy", guard.DefaultMinHealthy, "with --stages: the healthy reports a stage needs (from installations that started in it) to advance")
	f.StringVar(&p.budget, "budget", "", "the failure budget: the share of the started installations that may fail or go silent before the server halts the rollout; with --stages "+rollout.Percent(guard.DefaultBudget)+" unless given, and alone with --percent it makes a watched rollout (a plain --percent start has no plan and no budget)")
	f.DurationVar(&p.checkInterval, "check-interval", guard.DefaultCheckInterval, "the agents' check interval: an installation silent for twice this after it started the release counts as failed")
}

// spec is the start the flags give, as the text given (what the
// dashboard's start form gives too): a flag not given is "". guard.Spec's
// Start parses and checks it, the same for both.
func (p *planFlags) spec(f *pflag.FlagSet, percent string) guard.Spec {
	given := func(name string) string {
		if !f.Changed(name) {
			return ""
		}
		return f.Lookup(name).Value.String()
	}
	return guard.Spec{Percent: percent, Stages: given("stages"), StageWait: given("stage-wait"), MinHealthy: given("min-healthy"),
		Budget: given("budget"), CheckInterval: given("check-interval")}
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
