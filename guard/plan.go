package guard

import "time"

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
