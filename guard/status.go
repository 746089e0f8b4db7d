// Package guard decides, from the health reports of enrolled installations,
// whether a staged rollout may advance, must hold, or must halt (R68). It is
// pure: it is given a plan, the evidence and the time, and answers a Verdict;
// the server signs what the verdict asks for with its online rollout key.
package guard

import (
	"fmt"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// Status is what the guard last found for one release's rollout: what the
// dashboard shows and the metrics export. Only a release with a plan has
// one; a plan without Stages is a watched rollout (Stage 0: the guard
// halts it on a crossed budget and never widens it).
type Status struct {
	App         string        `json:"app"`
	Version     string        `json:"version"`
	Plan        Plan          `json:"plan"`  // the stages, waits, budget and report minimum
	Stage       int           `json:"stage"` // index into Plan.Stages of the share signed now
	StageSince  time.Time     `json:"stage_since"`
	BasisPoints int           `json:"basis_points"` // share signed now (500 = 5%)
	State       rollout.State `json:"state"`        // the signed state (active, halted, pulled)

	// The evidence, each installation counted once, only enrolled ones.
	Started int `json:"started"` // installations that reported starting this release
	Healthy int `json:"healthy"` // of those, reported healthy
	Failed  int `json:"failed"`  // reported a failed health check, a failed install or a roll-back
	Silent  int `json:"silent"`  // started, neither healthy nor failed, for longer than two check intervals
	Pending int `json:"pending"` // started, neither healthy nor failed, not silent yet

	// StageHealthy are the healthy installations that started the release
	// in the current stage (at or after StageSince): what advancing needs.
	StageHealthy int `json:"stage_healthy"`

	// FailedShare is (Failed+Silent)/Started, 0 when Started is 0.
	FailedShare float64 `json:"failed_share"`
	Breached    bool    `json:"breached"` // FailedShare crossed Plan.Budget: the guard halted the rollout
	Held        bool    `json:"held"`     // the stage's wait is over but it lacks Plan.MinHealthy healthy reports
	Reason      string  `json:"reason"`   // one line: why it halted, holds, or what it waits for
	Verdict     string  `json:"verdict"`  // what the guard signed or would sign: "none", "halt" or "advance"
	// NotSigned is why the decision Verdict asks for could not be signed
	// (the server cannot open its rollout key, say); "" when it was signed
	// or none was needed. A breached release with it set is NOT halted.
	NotSigned string `json:"not_signed,omitempty"`
	// Retired: the guard no longer evaluates this rollout, halted, pulled,
	// no longer signed, or offered to everyone long enough (Reason says
	// which), until a decision about it changes its state or share.
	Retired   bool      `json:"retired,omitempty"`
	Evaluated time.Time `json:"evaluated"`
}

// Phase says in a few words where the guard is with the rollout: "guarded,
// stage 2 of 4", "guarded, last stage", "guarded, watched" (no stages), or
// "guard retired" once it no longer evaluates it. It is what a status
// shows beside a release the guard carries out, whose decision may have
// been pruned once it reached the whole channel (it is then "no decision").
func (s Status) Phase() string {
	switch {
	case s.Retired:
		return "guard retired"
	case len(s.Plan.Stages) == 0:
		return "guarded, watched"
	case s.Stage+1 >= len(s.Plan.Stages):
		return "guarded, last stage"
	}
	return fmt.Sprintf("guarded, stage %d of %d", s.Stage+1, len(s.Plan.Stages))
}
