package e2e_test

import (
	"crypto/x509"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
)

// simAgent is one agent of the halt simulation: its own client.Repository
// (its own state directory and trust state) on a simulated clock, checking
// every interval plus a random jitter.
type simAgent struct {
	id        string
	rep       *client.Repository
	next      time.Duration // simulated time of its next check
	installed string
	sawHalt   time.Duration // its first check after the halt
}

// haltSim is the halt-reach simulation's parameters.
type haltSim struct {
	agents   int
	interval time.Duration
	jitter   time.Duration // each wait is interval + [0, jitter)
	start    time.Duration // rollout start at 50%
	halt     time.Duration // rollout halt
	end      time.Duration
	seed     uint64
}

// haltResult is what the simulation measured.
type haltResult struct {
	installedBefore, installedAfter int
	worstInstallLag                 time.Duration // latest install after the halt, minus the halt (0: none)
	worstReach                      time.Duration // latest first check after the halt, minus the halt
	checks                          int
}

// runHaltSim runs the simulation against a fresh repository served over
// HTTPS: hello 1.0.0 everywhere, 1.1.0 published at 0%, started at 50% at
// p.start and halted at p.halt (both signed with the online rollout key,
// between two simulated checks), each agent installing what its check
// offers. The clock is simulated: every agent's client reads it (for
// metadata expiry), and the agents' checks run in simulated-time order.
func runHaltSim(t *testing.T, p haltSim) haltResult {
	t.Helper()
	s := newSite(t, nil)
	k := fileKey(t)
	s.publish("hello", "1.0.0", k)
	s.publishEntry("hello", "1.1.0", k, &rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: 0, State: rollout.Active})
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	var mu sync.Mutex
	epoch, sim := time.Now(), time.Duration(0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return epoch.Add(sim) }
	rng := mrand.New(mrand.NewPCG(p.seed, 1))
	agents := make([]*simAgent, p.agents)
	for i := range agents {
		rep, err := client.NewRepository(client.RepositoryConfig{
			URLs: []string{s.srv.URL}, TrustedRootFile: repo.RootFile(s.dir), RootCAs: pool,
			StateDir: filepath.Join(t.TempDir(), fmt.Sprintf("agent%d", i)), Now: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		agents[i] = &simAgent{id: newInstallID(t), rep: rep, installed: "1.0.0", sawHalt: -1,
			next: time.Duration(rng.Int64N(int64(p.interval)))}
	}
	var res haltResult
	started, halted := false, false
	for {
		a := slices.MinFunc(agents, func(x, y *simAgent) int { return int(x.next - y.next) })
		if a.next > p.end {
			break
		}
		mu.Lock()
		sim = a.next
		mu.Unlock()
		if !started && sim >= p.start {
			s.decide("hello", rollout.Action{Kind: "start", Version: "1.1.0", BasisPoints: 5000})
			started = true
		}
		if !halted && sim >= p.halt {
			s.decide("hello", rollout.Action{Kind: "halt", Version: "1.1.0"})
			halted = true
		}
		res.checks++
		if _, err := a.rep.Refresh(bg); err != nil {
			t.Fatalf("agent %s at %v: refresh: %v", a.id, sim, err)
		}
		off, err := a.rep.Check(bg, client.App{Name: "hello", Platform: "linux/amd64", Installed: a.installed, InstallID: a.id})
		if err != nil {
			t.Fatalf("agent %s at %v: check: %v", a.id, sim, err)
		}
		if halted && a.sawHalt < 0 {
			a.sawHalt = sim
			res.worstReach = max(res.worstReach, sim-p.halt)
		}
		if v := offerChoice(off).Version; v == "1.1.0" {
			a.installed = v
			if halted {
				res.installedAfter++
				res.worstInstallLag = max(res.worstInstallLag, sim-p.halt)
			} else {
				res.installedBefore++
			}
		}
		a.next += p.interval + time.Duration(rng.Int64N(int64(p.jitter)))
	}
	for _, a := range agents {
		if a.sawHalt < 0 {
			t.Fatalf("agent %s never checked after the halt", a.id)
		}
	}
	return res
}

// TestHaltReach: 50 agents on a 10 s interval (plus up to 1 s of jitter);
// hello 1.1.0 is started at 50% and halted 5 s later, when about half of
// its cohort has installed it. No agent installs it after the halt (the
// goal allows 20 s), and every agent has seen the halt within an interval
// and its jitter. BENCHMARKS.md reports the figures of one run
// (go test ./e2e -run TestHaltReach -v).
func TestHaltReach(t *testing.T) {
	p := haltSim{agents: 50, interval: 10 * time.Second, jitter: time.Second,
		start: 20 * time.Second, halt: 25 * time.Second, end: 60 * time.Second, seed: 8}
	res := runHaltSim(t, p)
	t.Logf("halt reach: %d agents, interval %v + jitter < %v, %d checks: %d installed 1.1.0 before the halt, %d after; worst install lag after the halt %v; every agent saw the halt within %v",
		p.agents, p.interval, p.jitter, res.checks, res.installedBefore, res.installedAfter, res.worstInstallLag, res.worstReach)
	if res.installedBefore == 0 {
		t.Fatal("no agent installed 1.1.0 before the halt: the simulation shows nothing")
	}
	if res.installedAfter > 0 {
		t.Errorf("%d agents installed 1.1.0 after the halt, the last %v after it (goal: none later than 20 s)", res.installedAfter, res.worstInstallLag)
	}
	if res.worstReach > p.interval+p.jitter {
		t.Errorf("an agent first checked %v after the halt, more than its interval and jitter", res.worstReach)
	}
}
