package e2e_test

import (
	"context"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/agent"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// simClock is the agents' shared simulated clock. Time moves only when the
// simulation fires the earliest pending After; every After call is
// reported on blocked, so the simulation knows when the agent it woke has
// finished its cycle and waits again.
type simClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*simWaiter
	blocked chan struct{}
}

type simWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	w := &simWaiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	c.blocked <- struct{}{}
	return w.ch
}

// fireNext moves the clock to the earliest pending After (if it is not
// later than end) and fires it; false when there is none.
func (c *simClock) fireNext(end time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return false
	}
	i := slices.IndexFunc(c.waiters, func(w *simWaiter) bool {
		return !slices.ContainsFunc(c.waiters, func(o *simWaiter) bool { return o.at.Before(w.at) })
	})
	w := c.waiters[i]
	if w.at.After(end) {
		return false
	}
	c.waiters = slices.Delete(c.waiters, i, i+1)
	c.now = w.at
	w.ch <- w.at
	return true
}

// peek is the time of the earliest pending After (zero if none).
func (c *simClock) peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	for _, w := range c.waiters {
		if t.IsZero() || w.at.Before(t) {
			t = w.at
		}
	}
	return t
}

func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// simFerryAgent is one agent of the simulation: the real agent package
// (its schedule, its cycle, install.Binary) on the simulated clock.
type simFerryAgent struct {
	ag      *agent.Agent
	target  string
	startAt time.Duration
	sawAt   time.Duration // simulated time it installed 1.1.0 (-1: never)
	backAt  time.Duration // simulated time it was back on 1.0.0 after the pull (-1: never)
}

// TestHaltReachAgents: 50 real agents (package agent, each with its own
// state directory, install ID and executable, installing with
// install.Binary) on a 10 s interval with the default jitter (1 s),
// started at random moments of the first interval, on one simulated
// clock. hello 1.1.0 goes to 50% at 20 s, is halted at 25 s and pulled at
// 40 s. No agent installs it after the halt (the goal: none later than 20 s
// after it), at least one did before it, and every agent that runs it is
// back on 1.0.0 within 20 s of the pull. Figures of one run are in BENCHMARKS.md
// (FERRY_E2E_LONG=1 go test ./e2e -run TestHaltReachAgents -v). It takes
// 20-30 s (50 agents' installs, each fsynced), so it runs only with
// FERRY_E2E_LONG set, as .ci/run does; TestHaltReach is the quick
// client-level version that always runs.
func TestHaltReachAgents(t *testing.T) {
	if os.Getenv("FERRY_E2E_LONG") == "" {
		t.Skip("FERRY_E2E_LONG is unset: the 50-agent simulation takes 20-30 s (.ci/run sets it)")
	}
	const n, interval = 50, 10 * time.Second
	start, halt, pull, end := 20*time.Second, 25*time.Second, 40*time.Second, 65*time.Second
	s := newSite(t, nil)
	k := fileKey(t)
	s.publish("hello", "1.0.0", k)
	s.publishEntry("hello", "1.1.0", k, &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: 0, State: rollout.Active})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	epoch := time.Now()
	clock := &simClock{now: epoch, blocked: make(chan struct{})}
	rng := mrand.New(mrand.NewPCG(8, 8))
	agents := make([]*simFerryAgent, n)
	for i := range agents {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("agent%02d", i))
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "bin", "hello")
		conf := fmt.Sprintf("state_dir = %q\ninterval = %q\n\n[[app]]\nname = \"hello\"\nurls = [%q]\ntrusted_root = %q\nca = %q\nplatform = \"linux/amd64\"\n[app.install]\nstrategy = \"binary\"\ntarget = %q\n",
			filepath.Join(dir, "state"), interval.String(), s.srv.URL, repo.RootFile(s.dir), ca, target)
		cfg, err := agent.Parse(filepath.Join(dir, "agent.toml"), []byte(conf))
		if err != nil {
			t.Fatal(err)
		}
		seed := rng.Uint64()
		jitter := mrand.New(mrand.NewPCG(seed, 1))
		ag, err := agent.New(cfg, agent.Options{Clock: clock, Rand: jitter.Int64N})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ag.Close() })
		agents[i] = &simFerryAgent{ag: ag, target: target, startAt: time.Duration(rng.Int64N(int64(interval))), sawAt: -1, backAt: -1}
	}
	ctx, cancel := context.WithCancel(bg)
	exited := make(chan error, n)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	slices.SortFunc(agents, func(a, b *simFerryAgent) int { return int(a.startAt - b.startAt) })

	started, decided := 0, 0
	decisions := []struct {
		at time.Duration
		a  rollout.Action
	}{
		{start, rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 5000}},
		{halt, rollout.Action{Kind: "halt", Version: "1.1.0"}},
		{pull, rollout.Action{Kind: "pull", Version: "1.1.0"}},
	}
	// Each step runs one event in simulated-time order: an agent starts
	// (its first cycle), a decision is signed, or an agent's wait ends
	// (its next cycle). One agent runs at a time; the step ends when it
	// waits again.
	for {
		next := clock.peek()
		if started < n && (next.IsZero() || !epoch.Add(agents[started].startAt).After(next)) {
			next = epoch.Add(agents[started].startAt)
		}
		if decided < len(decisions) && !epoch.Add(decisions[decided].at).After(next) {
			clock.set(epoch.Add(decisions[decided].at))
			s.decide("hello", decisions[decided].a)
			decided++
			continue
		}
		if next.After(epoch.Add(end)) {
			break
		}
		if started < n && next.Equal(epoch.Add(agents[started].startAt)) {
			clock.set(next)
			a := agents[started]
			started++
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.ag.Run(ctx); ctx.Err() == nil {
					exited <- fmt.Errorf("agent returned before the end: %v", err)
				}
			}()
		} else if !clock.fireNext(epoch.Add(end)) {
			break
		}
		select {
		case <-clock.blocked:
		case err := <-exited:
			t.Fatal(err)
		}
		now := clock.Now().Sub(epoch)
		for _, a := range agents[:started] {
			b, err := os.ReadFile(a.target)
			switch {
			case err != nil:
			case string(b) == "hello 1.1.0\n" && a.sawAt < 0:
				a.sawAt = now
			case string(b) == "hello 1.0.0\n" && a.sawAt >= 0 && a.backAt < 0 && now >= pull:
				a.backAt = now
			}
		}
	}
	var before, after, back int
	var worst, worstBack time.Duration
	for _, a := range agents {
		switch {
		case a.sawAt < 0:
			continue
		case a.sawAt <= halt:
			before++
		default:
			after++
			worst = max(worst, a.sawAt-halt)
		}
		if a.backAt < 0 {
			t.Errorf("an agent that installed 1.1.0 at %v is not back on 1.0.0 %v after the pull", a.sawAt, end-pull)
			continue
		}
		back++
		worstBack = max(worstBack, a.backAt-pull)
	}
	t.Logf("halt reach, real agents: %d agents, interval %v, default jitter; 1.1.0 at 50%% at %v, halted at %v: %d installed it before the halt, %d after (worst %v after the halt); pulled at %v: %d back on 1.0.0, the last %v after the pull",
		n, interval, start, halt, before, after, worst, pull, back, worstBack)
	if before == 0 {
		t.Fatal("no agent installed 1.1.0 before the halt: the simulation shows nothing")
	}
	if after > 0 {
		t.Errorf("%d agents installed 1.1.0 after the halt, the last %v after it (goal: none later than 20 s)", after, worst)
	}
	if worstBack > 20*time.Second {
		t.Errorf("an agent went back to 1.0.0 %v after the pull (goal: within 20 s)", worstBack)
	}
}
