package guard

import (
	"fmt"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// Outcome is what one enrolled installation reported about one release:
// when the server first received each kind of report from it (zero for
// none). The times are the server's receive times, not the times the
// installation wrote, so that no installation's clock decides how long it
// has been silent.
type Outcome struct {
	InstallID string
	Started   time.Time // install.started
	Healthy   time.Time // health.passed or install.done
	Failed    time.Time // health.failed, install.failed, install.rolled_back or install.rollback_failed
}

// first is the earliest report of o: the installation started the release
// then even if its install.started was lost.
func (o Outcome) first() time.Time {
	t := o.Started
	for _, u := range []time.Time{o.Healthy, o.Failed} {
		if !u.IsZero() && (t.IsZero() || u.Before(t)) {
			t = u
		}
	}
	return t
}

// Current is where a release's rollout stands: its signed decision and the
// stage of its plan.
type Current struct {
	State       rollout.State // the signed state: only an active rollout is acted on
	BasisPoints int           // the signed share
	Stage       int           // index into Plan.Stages of the stage it is in
	StageSince  time.Time     // when that stage was signed
}

// Action is what a Verdict asks the server to sign.
type Action int

const (
	None    Action = iota // sign nothing: it waits, holds, watches or is not active
	Halt                  // sign a halt: the budget is breached
	Advance               // sign a start at Verdict.BasisPoints, the next stage
)

func (a Action) String() string {
	switch a {
	case Halt:
		return "halt"
	case Advance:
		return "advance"
	}
	return "none"
}

// Verdict is Evaluate's answer: what to sign (Action, and for Advance the
// stage and share) and the Status that explains it.
type Verdict struct {
	Action      Action
	Stage       int // Advance: the index of the new stage
	BasisPoints int // Advance: its share
	Status      Status

	advanced string // Advance: the reason once signed, in the past tense
}

// Signed is v once the decision it asks for was signed as e at now: its
// status says the signed state and share, and after an Advance the new
// stage (begun now, no healthy report in it yet) and the advance in the
// past tense ("...; advanced to 10%"), not as still to come.
func (v *Verdict) Signed(e rollout.Entry, now time.Time) {
	st := &v.Status
	st.State, st.BasisPoints = e.State, e.BasisPoints
	if v.Action != Advance {
		return
	}
	st.Stage, st.StageSince, st.StageHealthy = v.Stage, now, 0
	st.Reason = v.advanced
}

// Evaluate decides, at now, what the rollout of a release with plan p in
// state cur must do, from the outcomes of the enrolled installations that
// reported on it (R68). Each installation counts once, by install ID,
// however many outcomes name it; one that reported a failure is failed
// even if it also reported healthy; one that started and reported neither
// for longer than two check intervals is silent, and counts as failed.
//
// A rollout that is not active gets None. An active one whose failed
// share (failed and silent over started) is above the budget gets Halt,
// whatever its stage. Otherwise a staged rollout whose stage has lasted
// StageWait gets Advance to the next stage once MinHealthy installations
// that started the release in this stage (since StageSince) reported
// healthy; with fewer it holds (Status.Held), and never advances on no
// data. The last stage, and a plan without stages, only watch the budget.
func Evaluate(p Plan, cur Current, ev []Outcome, now time.Time) Verdict {
	p = p.WithDefaults()
	st := Status{Plan: p, Stage: cur.Stage, StageSince: cur.StageSince, BasisPoints: cur.BasisPoints,
		State: cur.State, Evaluated: now}
	count(&st, p, cur, ev, now)
	v := decide(p, cur, Verdict{Status: st}, now)
	v.Status.Verdict = v.Action.String()
	return v
}

// decide sets v's action and reason from its counted evidence.
func decide(p Plan, cur Current, v Verdict, now time.Time) Verdict {
	st := v.Status
	if cur.State != rollout.Active {
		v.Status.Reason = fmt.Sprintf("%s: the guard acts only on an active rollout", cur.State)
		return v
	}
	failed := st.Failed + st.Silent
	if st.Started > 0 && failed*rollout.Full > p.Budget*st.Started {
		v.Action, v.Status.Breached = Halt, true
		v.Status.Reason = fmt.Sprintf("halted: failure budget of %s crossed: %d of %d installations failed (%d reported a failure, %d silent for over %v)",
			rollout.Percent(p.Budget), failed, st.Started, st.Failed, st.Silent, 2*p.CheckInterval)
		return v
	}
	evidence := fmt.Sprintf("%d of %d failed, budget %s", failed, st.Started, rollout.Percent(p.Budget))
	if cur.Stage+1 >= len(p.Stages) {
		v.Status.Reason = "watching the budget: " + evidence
		if len(p.Stages) > 0 {
			v.Status.Reason = "last stage, watching the budget: " + evidence
		}
		return v
	}
	stage := fmt.Sprintf("stage %d of %d (%s)", cur.Stage+1, len(p.Stages), rollout.Percent(p.Stages[cur.Stage]))
	if left := cur.StageSince.Add(p.StageWait).Sub(now); left > 0 {
		v.Status.Reason = fmt.Sprintf("%s: %v of its wait left; %d of %s; %s",
			stage, left.Round(time.Second), st.StageHealthy, reports(p.MinHealthy, "healthy"), evidence)
		return v
	}
	if st.StageHealthy < p.MinHealthy {
		v.Status.Held = true
		v.Status.Reason = fmt.Sprintf("%s holds: %d of the %s it needs to advance; %s",
			stage, st.StageHealthy, reports(p.MinHealthy, "healthy"), evidence)
		return v
	}
	v.Action, v.Stage, v.BasisPoints = Advance, cur.Stage+1, max(p.Stages[cur.Stage+1], cur.BasisPoints)
	done := fmt.Sprintf("%s done: %s, %s", stage, reports(st.StageHealthy, "healthy"), evidence)
	v.Status.Reason = done + "; advancing to " + rollout.Percent(v.BasisPoints)
	v.advanced = done + "; advanced to " + rollout.Percent(v.BasisPoints)
	return v
}

// reports is "1 healthy report", "20 healthy reports".
func reports(n int, kind string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s report", kind)
	}
	return fmt.Sprintf("%d %s reports", n, kind)
}

// count fills st's evidence from ev, each installation once.
func count(st *Status, p Plan, cur Current, ev []Outcome, now time.Time) {
	byID := make(map[string]Outcome, len(ev))
	for _, o := range ev {
		if o.first().IsZero() {
			continue
		}
		m, ok := byID[o.InstallID]
		if ok {
			o = Outcome{InstallID: o.InstallID, Started: earliest(m.Started, o.Started),
				Healthy: earliest(m.Healthy, o.Healthy), Failed: earliest(m.Failed, o.Failed)}
		}
		byID[o.InstallID] = o
	}
	for _, o := range byID {
		st.Started++
		switch {
		case !o.Failed.IsZero():
			st.Failed++
		case !o.Healthy.IsZero():
			st.Healthy++
			if !o.first().Before(cur.StageSince) {
				st.StageHealthy++
			}
		case now.Sub(o.first()) > 2*p.CheckInterval:
			st.Silent++
		default:
			st.Pending++
		}
	}
	if st.Started > 0 {
		st.FailedShare = float64(st.Failed+st.Silent) / float64(st.Started)
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
