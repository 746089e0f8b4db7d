package guard

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// Spec is the start of a rollout as a person types it: the share and plan
// flags of ferry rollout start (--percent, --stages, --stage-wait,
// --min-healthy, --budget, --check-interval) and the fields of the same
// names in the dashboard's start form. Both read it with Start, so that a
// start means the same, and is refused for the same reasons, wherever it
// was typed. Each field is the text given, "" when not given.
type Spec struct {
	Percent       string // the share, "5" or "0.5%"; not with Stages
	Stages        string // "1,10,50,100": staged, starting at the first
	StageWait     string // "30m": with Stages, the least time in each stage
	MinHealthy    string // "20": with Stages, the healthy reports a stage needs; DefaultMinHealthy
	Budget        string // "5%": the failure budget; DefaultBudget
	CheckInterval string // "1h": the agents' check interval; DefaultCheckInterval

	// Names names the fields in errors, by their flag names ("stage-wait"
	// for StageWait); a name it lacks is the flag, "--stage-wait".
	Names map[string]string
}

// ErrNoShare is a start that gives neither a share nor stages.
var ErrNoShare = errors.New("no share")

// Planned reports whether s gives a plan field: a guarded start.
func (s Spec) Planned() bool {
	return s.Stages != "" || s.StageWait != "" || s.MinHealthy != "" || s.Budget != "" || s.CheckInterval != ""
}

func (s Spec) name(flag string) string {
	if n, ok := s.Names[flag]; ok {
		return n
	}
	return "--" + flag
}

// Start returns the share a start signs, in basis points, and its plan:
// nil without a plan field (a share set by hand), a watched rollout with a
// budget but no stages (never widened), and a staged one with stages, which
// starts at the first. Without stages, --stage-wait and --min-healthy are
// refused, and so is --check-interval without --budget: only a budget
// given makes a watched rollout. The error says in one line what is wrong.
func (s Spec) Start() (int, *Plan, error) {
	var plan *Plan
	if s.Planned() {
		p, err := s.plan()
		if err != nil {
			return 0, nil, err
		}
		plan = &p
	}
	switch {
	case plan != nil && len(plan.Stages) > 0 && s.Percent != "":
		return 0, nil, fmt.Errorf("use either %s (the first stage is the share it starts at) or %s, not both", s.name("stages"), s.name("percent"))
	case plan != nil && len(plan.Stages) > 0:
		return plan.Stages[0], plan, nil
	case s.Percent == "":
		return 0, nil, fmt.Errorf("%w: pass %s P, or %s S1,S2,... for a staged rollout", ErrNoShare, s.name("percent"), s.name("stages"))
	}
	bp, err := rollout.ParsePercent(s.Percent)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", s.name("percent"), err) // the error names the value and the rule
	}
	return bp, plan, nil
}

// plan is the plan of s's plan fields, checked.
func (s Spec) plan() (Plan, error) {
	out := Plan{MinHealthy: DefaultMinHealthy, Budget: DefaultBudget, CheckInterval: DefaultCheckInterval}
	if s.Stages != "" {
		st, err := ParseStages(s.Stages)
		if err != nil {
			return Plan{}, fmt.Errorf("%s: %w", s.name("stages"), err)
		}
		out.Stages = st
	} else {
		switch {
		case s.StageWait != "":
			return Plan{}, fmt.Errorf("%s goes with %s", s.name("stage-wait"), s.name("stages"))
		case s.MinHealthy != "":
			return Plan{}, fmt.Errorf("%s goes with %s", s.name("min-healthy"), s.name("stages"))
		case s.Budget == "":
			// A check interval alone would make a watched rollout with a
			// budget nobody asked for: a guarded start says its budget.
			return Plan{}, fmt.Errorf("%s goes with %s, or with %s for a watched rollout", s.name("check-interval"), s.name("stages"), s.name("budget"))
		}
	}
	if s.Budget != "" {
		b, err := rollout.ParsePercent(s.Budget)
		if err != nil || b == 0 {
			return Plan{}, fmt.Errorf("%s %q: want a share above 0 and at most 100%%, e.g. 5%% or 0.5", s.name("budget"), s.Budget)
		}
		out.Budget = b
	}
	if s.MinHealthy != "" {
		n, err := strconv.Atoi(s.MinHealthy)
		if err != nil {
			return Plan{}, fmt.Errorf("%s %q: want a whole number of healthy reports, e.g. 20", s.name("min-healthy"), s.MinHealthy)
		}
		if n < 1 {
			return Plan{}, fmt.Errorf("%s %d: a stage needs at least 1 healthy report to advance", s.name("min-healthy"), n)
		}
		out.MinHealthy = n
	}
	var err error
	if out.StageWait, err = s.duration("stage-wait", s.StageWait, 0); err != nil {
		return Plan{}, err
	}
	if out.CheckInterval, err = s.duration("check-interval", s.CheckInterval, DefaultCheckInterval); err != nil {
		return Plan{}, err
	}
	if out.CheckInterval <= 0 || out.StageWait < 0 {
		return Plan{}, fmt.Errorf("%s must be positive and %s not negative", s.name("check-interval"), s.name("stage-wait"))
	}
	return out, out.Check()
}

// duration parses a duration field ("30m", "1h30m"); def when not given.
func (s Spec) duration(flag, v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want a duration such as 30m or 1h", s.name(flag), v)
	}
	return d, nil
}

// Describe says p in words: "stages 1% 10% 100%, each at least 30m0s and
// 20 healthy reports; halts above 5% failed (silent for 2h0m0s counts as
// failed)" ("no stage wait, each at least 1 healthy report; ..." without
// a stage wait), or "watched: never widened; halts above ..." without
// stages.
func (p Plan) Describe() string {
	p = p.WithDefaults()
	halt := fmt.Sprintf("halts above %s failed (silent for %v counts as failed)", rollout.Percent(p.Budget), 2*p.CheckInterval)
	if len(p.Stages) == 0 {
		return "watched: never widened; " + halt
	}
	shares := make([]string, len(p.Stages))
	for i, bp := range p.Stages {
		shares[i] = rollout.Percent(bp)
	}
	each := "no stage wait, each at least "
	if p.StageWait > 0 {
		each = fmt.Sprintf("each at least %v and ", p.StageWait)
	}
	return fmt.Sprintf("stages %s, %s%s; %s", strings.Join(shares, " "), each, reports(p.MinHealthy, "healthy"), halt)
}
