package server

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

// guardSim is one run of the fleet simulation: n installations checking
// every interval (each at its own offset) on a simulated clock, a guarded
// rollout of hello 1.1.0 signed by the real repository, a real SQLite
// store, and the guard evaluating every tick of simulated time. An
// installation offered the release (active, and its bucket below the
// signed share) installs it and reports, at once, that it started and
// whether its health check passed (failRate of them fail).
type guardSim struct {
	n        int
	interval time.Duration
	tick     time.Duration
	end      time.Duration
	failRate float64
	plan     guard.Plan
	seed     uint64
}

type simResult struct {
	halted, full   time.Duration // when the rollout was halted, reached 100% (-1: never)
	startedAtHalt  int           // installations that had started it when it was halted
	startedAfter   int           // installations that started it after the halt
	installed      int           // installations running it at the end
	status         guard.Status
	stagesAdvanced []time.Duration
}

func runGuardSim(t *testing.T, p guardSim) simResult {
	gf := newGuardFixture(t)
	ctx := context.Background()
	gf.start(t, p.plan.Stages[0], &p.plan)
	doc, err := gf.repo.Rollouts("hello")
	if err != nil {
		t.Fatal(err)
	}
	salt := doc.Releases["1.1.0"].Salt
	rng := mrand.New(mrand.NewPCG(p.seed, 2))
	type inst struct {
		id      string
		offset  time.Duration
		running bool
	}
	fleet := make([]*inst, p.n)
	for i := range fleet {
		fleet[i] = &inst{id: fmt.Sprintf("%032x", i), offset: time.Duration(rng.Int64N(int64(p.interval)))}
	}
	// Which installations fail does not depend on the random salt: of
	// those that start it, every (1/failRate)th fails, starting with the
	// third, so the share is the one asked for whatever the cohort.
	every := 0
	if p.failRate > 0 {
		every = int(math.Round(1 / p.failRate))
	}
	res := simResult{halted: -1, full: -1}
	started, stage := 0, 0
	for now := time.Duration(0); now <= p.end; now += p.tick {
		gf.set(now)
		entry := entryOf(doc, "1.1.0")
		for _, in := range fleet {
			// Checks at offset, offset+interval, ...: one within this tick?
			due := (now-in.offset)%p.interval < p.tick && now >= in.offset
			if in.running || !due || entry.State != rollout.Active || rollout.Bucket(in.id, salt) >= entry.BasisPoints {
				continue
			}
			started++
			if res.halted >= 0 {
				res.startedAfter++
			}
			if every > 0 && started%every == 3%every {
				gf.report(t, in.id, event.InstallStarted, event.HealthFailed, event.RolledBack)
				in.running = false
				in.offset = -1 // a rolled-back release is not retried
				continue
			}
			gf.report(t, in.id, event.InstallStarted, event.HealthPassed, event.InstallDone)
			in.running = true
		}
		if err := gf.g.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
		if doc, err = gf.repo.Rollouts("hello"); err != nil {
			t.Fatal(err)
		}
		e := entryOf(doc, "1.1.0")
		if e.State == rollout.Halted && res.halted < 0 {
			res.halted, res.startedAtHalt = now, started
		}
		if res.halted >= 0 && now > res.halted+2*p.interval {
			break // every installation has checked twice since the halt
		}
		if e.BasisPoints == rollout.Full && res.full < 0 {
			res.full = now
		}
		if sts, _ := gf.g.Status(ctx, "hello"); len(sts) == 1 && sts[0].Stage > stage {
			stage = sts[0].Stage
			res.stagesAdvanced = append(res.stagesAdvanced, now)
		}
	}
	for _, in := range fleet {
		if in.running {
			res.installed++
		}
	}
	sts, err := gf.g.Status(ctx, "hello")
	if err != nil || len(sts) != 1 {
		t.Fatalf("Status = %+v, %v", sts, err)
	}
	res.status = sts[0]
	return res
}

var simPlan = guard.Plan{Stages: []int{500, 2500, rollout.Full}, StageWait: 30 * time.Minute, MinHealthy: 5, Budget: 500, CheckInterval: 10 * time.Minute}

// TestGuardFleetSimulation_R68: 400 installations checking every 10
// minutes, a plan of 5% -> 25% -> 100% with 30 minute waits, 5 healthy
// reports per stage and a 5% budget, the guard evaluating every simulated
// minute. A good release goes through every stage to the whole fleet; one
// whose health check fails on a fifth of the installations is halted in
// its first stage, having reached only part of that stage's cohort, and
// no installation starts it after the halt.
func TestGuardFleetSimulation_R68(t *testing.T) {
	t.Parallel()
	base := guardSim{n: 400, interval: 10 * time.Minute, tick: time.Minute, end: 100 * time.Minute, plan: simPlan, seed: 68}
	t.Run("good release", func(t *testing.T) {
		t.Parallel()
		r := runGuardSim(t, base)
		t.Logf("good release: stages advanced at %v, 100%% at %v, %d of %d installations run it; %s", r.stagesAdvanced, r.full, r.installed, base.n, r.status.Reason)
		if r.full < 0 || r.halted >= 0 || r.installed != base.n || len(r.stagesAdvanced) != 2 {
			t.Fatalf("good release: 100%% at %v, halted at %v, %d of %d installed, stages %v; want every stage and the whole fleet",
				r.full, r.halted, r.installed, base.n, r.stagesAdvanced)
		}
		for i, at := range r.stagesAdvanced {
			if i > 0 && at-r.stagesAdvanced[i-1] < simPlan.StageWait {
				t.Errorf("stage %d lasted %v, less than the wait", i+1, at-r.stagesAdvanced[i-1])
			}
		}
	})
	t.Run("bad release", func(t *testing.T) {
		t.Parallel()
		p := base
		p.failRate = 0.2
		r := runGuardSim(t, p)
		t.Logf("bad release: halted at %v with %d of %d installations started (%d failed), %d started after; %s",
			r.halted, r.startedAtHalt, p.n, r.status.Failed, r.startedAfter, r.status.Reason)
		if r.halted < 0 || r.full >= 0 || len(r.stagesAdvanced) != 0 || r.startedAfter != 0 {
			t.Fatalf("bad release: halted at %v, 100%% at %v, stages %v, %d started after the halt; want halted in stage 1, none after", r.halted, r.full, r.stagesAdvanced, r.startedAfter)
		}
		if max := p.n * simPlan.Stages[0] / rollout.Full * 3; r.startedAtHalt > max {
			t.Errorf("%d installations started it before the halt, more than 3 times the first stage's expected cohort (%d)", r.startedAtHalt, max/3)
		}
	})
}
