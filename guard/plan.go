package guard

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// Defaults of a Plan's zero fields.
const (
	DefaultMinHealthy    = 20
	DefaultBudget        = 500 // basis points of the started installations: 5%
	DefaultCheckInterval = time.Hour
)

// Plan is how one release's rollout proceeds. Stages are shares in basis
// points, ascending, the last one at most rollout.Full; an empty Stages is a
// rollout the guard only watches (it halts on a breached budget, and never
// widens).
type Plan struct {
	Stages        []int         `json:"stages,omitempty"`     // e.g. 100, 1000, 5000, 10000
	StageWait     time.Duration `json:"stage_wait,omitempty"` // minimum time in each stage
	MinHealthy    int           `json:"min_healthy"`          // healthy reports needed to advance (DefaultMinHealthy)
	Budget        int           `json:"budget"`               // failed share, in basis points of started, that halts (DefaultBudget)
	CheckInterval time.Duration `json:"check_interval"`       // the agents' interval: silence for twice this counts as failed
}

// WithDefaults returns p with its zero MinHealthy, Budget and
// CheckInterval set to the defaults.
func (p Plan) WithDefaults() Plan {
	if p.MinHealthy == 0 {
		p.MinHealthy = DefaultMinHealthy
	}
	if p.Budget == 0 {
		p.Budget = DefaultBudget
	}
	if p.CheckInterval == 0 {
		p.CheckInterval = DefaultCheckInterval
	}
	return p
}

// Check reports what is wrong with p, in one line: stages must rise
// strictly within 1..rollout.Full, and no field may be negative or the
// budget above rollout.Full.
func (p Plan) Check() error {
	for i, bp := range p.Stages {
		switch {
		case bp < 1 || bp > rollout.Full:
			return fmt.Errorf("stage %d is %d basis points: want 1..%d (0.01%% to 100%%)", i+1, bp, rollout.Full)
		case i > 0 && bp <= p.Stages[i-1]:
			return fmt.Errorf("stage %d (%s) is not above stage %d (%s): stages rise", i+1, rollout.Percent(bp), i, rollout.Percent(p.Stages[i-1]))
		}
	}
	switch {
	case p.StageWait < 0:
		return errors.New("the stage wait is negative")
	case p.MinHealthy < 0:
		return errors.New("the healthy-report minimum is negative")
	case p.Budget < 0 || p.Budget > rollout.Full:
		return fmt.Errorf("the failure budget of %d basis points is not within 0..%d", p.Budget, rollout.Full)
	case p.CheckInterval < 0:
		return errors.New("the check interval is negative")
	}
	return nil
}

// ParseStages parses a list of shares in percent, "1,10,50,100", into
// basis points, checked as Plan.Check does.
func ParseStages(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		bp, err := rollout.ParsePercent(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("stages %q: %w", s, err)
		}
		out = append(out, bp)
	}
	if err := (Plan{Stages: out}).Check(); err != nil {
		return nil, fmt.Errorf("stages %q: %w", s, err)
	}
	return out, nil
}

// FormatStages writes stages as ParseStages reads them.
func FormatStages(stages []int) string {
	var b strings.Builder
	for i, bp := range stages {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.TrimSuffix(rollout.Percent(bp), "%"))
	}
	return b.String()
}
