package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/store"
)

// guardFixture is the admin fixture with a real SQLite store, a guard on
// a clock the test moves, and hello 1.1.0 published.
type guardFixture struct {
	*adminFixture
	st      store.Store
	g       *Guard
	metrics *Metrics
	mu      sync.Mutex
	now     time.Time
	seqs    map[string]uint64
}

var guardT0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func newGuardFixture(t *testing.T) *guardFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gf := &guardFixture{st: st, now: guardT0, seqs: map[string]uint64{}}
	gf.metrics, err = NewMetrics(MetricsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	gf.adminFixture = newAdminFixture(t, func(c *AdminConfig) {
		g, err := NewGuard(GuardConfig{Repo: c.Repo, Store: st, Metrics: gf.metrics, Logger: c.Logger, Now: gf.clock})
		if err != nil {
			t.Fatal(err)
		}
		gf.g, c.Guard = g, g
	})
	if _, err := gf.client(t, gf.hello).Publish(ctx, "hello", gf.signed(t, "1.1.0", "hello 1.1.0")); err != nil {
		t.Fatal(err)
	}
	h := hashToken("enroll-secret")
	if err := st.CreateToken(ctx, store.Token{ID: "enr", Kind: store.Enroll, Scope: "*", Hash: h, Created: guardT0}); err != nil {
		t.Fatal(err)
	}
	return gf
}

func (gf *guardFixture) clock() time.Time {
	gf.mu.Lock()
	defer gf.mu.Unlock()
	return gf.now
}

func (gf *guardFixture) set(d time.Duration) {
	gf.mu.Lock()
	gf.now = guardT0.Add(d)
	gf.mu.Unlock()
}

// report has installation id (enrolled on first use) report kinds about
// hello 1.1.0, received now on the fixture's clock.
func (gf *guardFixture) report(t *testing.T, id string, kinds ...event.Kind) {
	t.Helper()
	ctx := context.Background()
	if _, ok := gf.seqs[id]; !ok {
		in := store.Installation{ID: id, CredentialHash: hashToken("cred-" + id), Enrolled: guardT0}
		if err := gf.st.Enroll(ctx, in, hashToken("enroll-secret")); err != nil {
			t.Fatal(err)
		}
	}
	var batch []store.Event
	for _, k := range kinds {
		gf.seqs[id]++
		seq := gf.seqs[id]
		batch = append(batch, store.Event{Seq: seq, Hash: fmt.Sprintf("%s-%d", id, seq), Received: gf.clock(),
			Event: event.Event{Time: gf.clock(), Kind: k, App: "hello", Version: "1.1.0"}})
	}
	if _, err := gf.st.AppendEvents(ctx, id, batch); err != nil {
		t.Fatal(err)
	}
}

func (gf *guardFixture) healthy(t *testing.T, prefix string, n int) {
	t.Helper()
	for i := range n {
		gf.report(t, fmt.Sprintf("%s%d", prefix, i), event.InstallStarted, event.Swapped, event.HealthPassed, event.InstallDone)
	}
}

// start starts hello 1.1.0 through the admin API with plan.
func (gf *guardFixture) start(t *testing.T, bp int, plan *guard.Plan) {
	t.Helper()
	if _, err := gf.client(t, gf.roll).RolloutPlanned(context.Background(), "hello", rollout.Action{Kind: rollout.Start, Version: "1.1.0", BasisPoints: bp}, plan); err != nil {
		t.Fatal(err)
	}
}

// evaluate runs one pass of the guard and returns hello 1.1.0's signed
// entry and the guard's status of it.
func (gf *guardFixture) evaluate(t *testing.T) (rollout.Entry, guard.Status) {
	t.Helper()
	ctx := context.Background()
	if err := gf.g.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	doc, err := gf.repo.Rollouts("hello")
	if err != nil {
		t.Fatal(err)
	}
	sts, err := gf.g.Status(ctx, "hello")
	if err != nil || len(sts) != 1 {
		t.Fatalf("Status = %+v, %v; want hello 1.1.0's", sts, err)
	}
	return entryOf(doc, "1.1.0"), sts[0]
}

// entryOf is the decision about version v in doc: with no entry, everyone
// in stable, active (an entry equal to that is pruned).
func entryOf(doc *rollout.Doc, v string) rollout.Entry {
	if e, ok := doc.Releases[v]; ok {
		return e
	}
	return rollout.Entry{Channel: rollout.DefaultChannel, BasisPoints: rollout.Full, State: rollout.Active}
}

var staged = guard.Plan{Stages: []int{1000, 5000, rollout.Full}, StageWait: 10 * time.Minute, MinHealthy: 3, Budget: 2000, CheckInterval: time.Hour}

// TestGuardHaltsOnBudget_R68: installations whose health check failed make
// the guard sign a halt with the online rollout key in the pass that
// finds the budget crossed; the status says why (and keeps saying it),
// the log and the metrics show it.
func TestGuardHaltsOnBudget_R68(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "ok", 4)
	gf.report(t, "bad0", event.InstallStarted, event.HealthFailed, event.RolledBack)
	if e, st := gf.evaluate(t); e.State != rollout.Active || st.Breached || st.Failed != 1 || st.Started != 5 {
		t.Fatalf("1 failed of 5, at the budget of 20%%: %+v, status %+v", e, st)
	}
	gf.set(time.Minute)
	gf.report(t, "bad1", event.InstallStarted, event.InstallFailed)
	e, st := gf.evaluate(t)
	if e.State != rollout.Halted || e.BasisPoints != 1000 || !st.Breached || st.State != rollout.Halted {
		t.Fatalf("2 failed of 6, above the budget: entry %+v, status %+v; want halted", e, st)
	}
	if !strings.Contains(st.Reason, "failure budget of 20% crossed: 2 of 6") {
		t.Errorf("reason %q", st.Reason)
	}
	gf.set(2 * time.Minute)
	if _, again := gf.evaluate(t); !again.Breached || again.Reason != st.Reason {
		t.Errorf("the next pass says %q (breached %v), want the halt's reason", again.Reason, again.Breached)
	}
	if !strings.Contains(gf.logs.String(), `"msg":"guard: rollout halted","app":"hello","version":"1.1.0"`) {
		t.Errorf("the halt is not logged:\n%s", gf.logs)
	}
	if n := gf.actions(t, "halt"); n != 1 {
		t.Errorf("ferry_rollout_guard_actions_total{action=halt} = %v, want 1", n)
	}
	// The rollout status of the admin API shows the guard's finding.
	rs, err := gf.client(t, gf.hello).Rollouts(context.Background(), "hello")
	if err != nil || rs.Releases[0].Version != "1.1.0" || rs.Releases[0].Guard == nil || !rs.Releases[0].Guard.Breached {
		t.Fatalf("rollout status = %+v, %v; want 1.1.0 with the guard's breach", rs, err)
	}
}

// TestGuardSilenceCounts_R68: an installation that started the release
// and said nothing more for two check intervals counts as failed.
func TestGuardSilenceCounts_R68(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "ok", 2)
	gf.report(t, "quiet", event.InstallStarted)
	gf.set(2 * time.Hour)
	if e, st := gf.evaluate(t); e.State != rollout.Active || st.Pending != 1 || st.Silent != 0 {
		t.Fatalf("after exactly two intervals: entry %+v, status %+v; want it pending", e, st)
	}
	gf.report(t, "quiet2", event.InstallStarted) // started now: not silent for two more hours
	gf.set(2*time.Hour + time.Second)
	e, st := gf.evaluate(t)
	if e.State != rollout.Halted || st.Silent != 1 || st.Pending != 1 {
		t.Fatalf("silent for over two intervals: entry %+v, status %+v; want halted, 1 silent", e, st)
	}
}

// TestGuardAdvancesOnEvidence_R68: a stage advances once its wait is over
// and it has MinHealthy healthy installations that started in it; not
// before the wait, not on healthy reports of an earlier stage, and a stage
// without enough of them holds.
func TestGuardAdvancesOnEvidence_R68(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "a", 3)
	gf.set(5 * time.Minute)
	if e, st := gf.evaluate(t); e.BasisPoints != 1000 || st.Held || st.StageHealthy != 3 {
		t.Fatalf("during the wait: entry %+v, status %+v; want 10%%, not held", e, st)
	}
	gf.set(10 * time.Minute)
	e, st := gf.evaluate(t)
	if e.BasisPoints != 5000 || e.State != rollout.Active || st.Stage != 1 || !st.StageSince.Equal(guardT0.Add(10*time.Minute)) {
		t.Fatalf("wait over with 3 healthy: entry %+v, status %+v; want stage 2 at 50%%", e, st)
	}
	if !strings.HasSuffix(st.Reason, "; advanced to 50%") {
		t.Errorf("after the advance the reason says %q, want it in the past tense", st.Reason)
	}
	if n := gf.actions(t, "advance"); n != 1 {
		t.Errorf("ferry_rollout_guard_actions_total{action=advance} = %v, want 1", n)
	}
	// Stage 2: the healthy reports of stage 1 do not count again.
	gf.set(30 * time.Minute)
	gf.healthy(t, "b", 2)
	e, st = gf.evaluate(t)
	if e.BasisPoints != 5000 || !st.Held || st.StageHealthy != 2 || st.Healthy != 5 {
		t.Fatalf("stage 2 with 2 new healthy: entry %+v, status %+v; want it held at 50%%", e, st)
	}
	if !strings.Contains(gf.logs.String(), `"msg":"guard: stage holds"`) {
		t.Errorf("the hold is not logged:\n%s", gf.logs)
	}
	gf.healthy(t, "c", 1)
	if e, st := gf.evaluate(t); e.BasisPoints != rollout.Full || st.Stage != 2 {
		t.Fatalf("stage 2 with 3 new healthy: entry %+v, status %+v; want the last stage, 100%%", e, st)
	}
	gf.set(2 * time.Hour)
	if e, st := gf.evaluate(t); e.BasisPoints != rollout.Full || st.Verdict != "none" || !strings.Contains(st.Reason, "last stage") {
		t.Fatalf("at the last stage: %+v, %+v", e, st)
	}
}

// TestGuardHoldsWithoutReports_R68: no report at all never advances.
func TestGuardHoldsWithoutReports_R68(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.set(24 * time.Hour)
	e, st := gf.evaluate(t)
	if e.BasisPoints != 1000 || !st.Held || st.Started != 0 {
		t.Fatalf("a day without reports: entry %+v, status %+v; want held at 10%%", e, st)
	}
	if n := gf.actions(t, "advance"); n != 0 {
		t.Errorf("advances counted: %v", n)
	}
}

// TestGuardLeavesDecisionsAlone: the guard acts on an active rollout only:
// an operator's halt is not undone by evidence that would advance it; a
// plain start removes the plan; a plan only goes with start, and a staged
// plan starts at its first stage.
func TestGuardLeavesDecisionsAlone(t *testing.T) {
	gf := newGuardFixture(t)
	ctx := context.Background()
	c := gf.client(t, gf.roll)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "a", 5)
	if _, err := c.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	gf.set(time.Hour)
	if e, st := gf.evaluate(t); e.State != rollout.Halted || e.BasisPoints != 1000 || st.Breached {
		t.Fatalf("after an operator's halt: entry %+v, status %+v; want it left halted", e, st)
	}
	for _, body := range []string{
		`{"action":"halt","version":"1.1.0","basis_points":0,"channel":"","plan":{"budget":500,"min_healthy":1,"check_interval":0}}`,
		`{"action":"start","version":"1.1.0","basis_points":500,"channel":"","plan":{"stages":[1000,5000],"budget":500,"min_healthy":1,"check_interval":0}}`,
		`{"action":"start","version":"1.1.0","basis_points":1000,"channel":"","plan":{"stages":[1000,500],"budget":500,"min_healthy":1,"check_interval":0}}`,
		`{"action":"start","version":"1.1.0","basis_points":1000,"channel":"","plan":{"budget":20000,"min_healthy":1,"check_interval":0}}`,
	} {
		if code, msg := gf.rolloutPost(t, gf.roll, body); code != 400 {
			t.Errorf("%s: %d %s, want 400", body, code, msg)
		}
	}
	if _, err := c.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Start, Version: "1.1.0", BasisPoints: 2000}); err != nil {
		t.Fatal(err)
	}
	if sts, err := gf.g.Status(ctx, "hello"); err != nil || len(sts) != 0 {
		t.Fatalf("after a plain start: Status = %+v, %v; want no plan", sts, err)
	}
}

// A guard without a store's admin API refuses plans; ticks are bounded.
func TestGuardConfig(t *testing.T) {
	f := newAdminFixture(t, nil)
	body := `{"action":"start","version":"1.0.0","basis_points":1000,"channel":"","plan":{"stages":[1000],"budget":500,"min_healthy":1,"check_interval":0}}`
	if code, msg := f.rolloutPost(t, f.roll, body); code != 400 || !strings.Contains(msg, "no guard") {
		t.Errorf("a plan to a server without a guard: %d %s", code, msg)
	}
	for _, tick := range []time.Duration{-time.Second, MaxGuardTick + time.Millisecond} {
		if _, err := NewGuard(GuardConfig{Repo: f.repo, Store: nil, Tick: tick}); err == nil {
			t.Errorf("tick %v accepted", tick)
		}
	}
}

// actions is the value of ferry_rollout_guard_actions_total for hello and
// action, as gathered for a scrape (0 if the series does not exist).
func (gf *guardFixture) actions(t *testing.T, action string) float64 {
	t.Helper()
	fams, err := gf.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "ferry_rollout_guard_actions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["app"] == "hello" && labels["action"] == action {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// refusingRepo is a Rollouter whose signing fails while fail is set (a
// missing key, say).
type refusingRepo struct {
	Rollouter
	mu   sync.Mutex
	fail bool
}

func (r *refusingRepo) Rollout(ctx context.Context, app string, a rollout.Action) (rollout.Entry, error) {
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail {
		return rollout.Entry{}, fmt.Errorf("sign %s: %w", a.Kind, repo.ErrMissingKey)
	}
	return r.Rollouter.Rollout(ctx, app, a)
}

// TestGuardHaltNotSignedRetried: a halt that cannot be signed is said in
// the status, logged once (not every tick), and signed at the first tick
// that can.
func TestGuardHaltNotSignedRetried(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.report(t, "bad", event.InstallStarted, event.HealthFailed)
	rr := &refusingRepo{Rollouter: gf.repo, fail: true}
	g, err := NewGuard(GuardConfig{Repo: rr, Store: gf.st, Logger: gf.g.log, Now: gf.clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if err := g.Evaluate(ctx); err == nil {
			t.Fatal("a halt that could not be signed: no error")
		}
	}
	sts, _ := g.Status(ctx, "hello")
	if len(sts) != 1 || !strings.Contains(sts[0].Reason, "the halt could not be signed") || sts[0].State != rollout.Active {
		t.Fatalf("status = %+v", sts)
	}
	if n := strings.Count(gf.logs.String(), `"msg":"guard: halt not signed"`); n != 1 {
		t.Errorf("the failure was logged %d times in 3 ticks, want once", n)
	}
	rr.mu.Lock()
	rr.fail = false
	rr.mu.Unlock()
	if err := g.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	if doc, err := gf.repo.Rollouts("hello"); err != nil || doc.Releases["1.1.0"].State != rollout.Halted {
		t.Fatalf("after the key is back: %+v, %v; want halted", doc, err)
	}
}
