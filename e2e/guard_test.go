package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/report"
	"github.com/ferry-updates/ferry/rollout"
)

// The guard end to end (R68): a real ferry serve over HTTPS on 127.0.0.1
// evaluating guarded rollouts every second, real agents (ferry agent
// --once) enrolled with a real enrollment token and reporting their
// events, each with its own health check, and hello 1.1.0 published at 0%
// with a salt the agents' install IDs are chosen against, so that every
// agent is in the first stage (50%) whatever the random salt.

// guardSite is a fleet site whose server runs the guard every second, with
// an enrollment token for hello's installations.
type guardSite struct {
	*fleetSite
	enroll string // the enrollment token file
	salt   string // hello 1.1.0's
}

func newGuardSite(t *testing.T) *guardSite {
	t.Helper()
	f := newFerryCmd(t)
	f.run("init", "repo")
	s := &fleetSite{ferryCmd: f, apps: []string{"hello"}, tokens: map[string]string{}, rollouts: map[string]string{}}
	s.publishLocal("hello", "1.0.0")
	s.publishLocal("hello", "1.1.0", "--percent", "0")
	tok := f.run("token", "create", "--repo", "repo", "--app", "hello")
	s.tokens["hello"] = f.write("hello.token", strings.TrimSpace(tok)+"\n", 0o600)
	tok = f.run("token", "create", "--repo", "repo", "--rollout", "--app", "hello")
	s.rollouts["hello"] = f.write("hello.rollout-token", strings.TrimSpace(tok)+"\n", 0o600)
	enr := f.run("token", "create", "--repo", "repo", "--enroll", "--app", "hello", "--expires", "1h", "--uses", "20")
	g := &guardSite{fleetSite: s, enroll: f.write("enroll.token", strings.TrimSpace(enr)+"\n", 0o600)}
	s.srv = f.serve("repo", "--guard-tick", "1s")
	g.salt = s.salt("hello", "1.1.0")
	return g
}

// Health checks: healthy passes, failing fails 1.1.0, and hanging blocks
// 1.1.0's check on a FIFO nobody writes (the agent goes silent).
const (
	healthPass = "#!/bin/sh\nexit 0\n"
	healthFail = "#!/bin/sh\n[ \"$FERRY_VERSION\" = 1.1.0 ] && { echo 'broken release' >&2; exit 1; }\nexit 0\n"
	healthHang = "#!/bin/sh\nif [ \"$FERRY_VERSION\" = 1.1.0 ]; then read x < \"$(dirname \"$0\")/never\"; fi\nexit 0\n"
)

// machine makes an agent whose install ID is in hello 1.1.0's first 50%
// (its state directory is made with it), with the given health check,
// enrolls it, and runs it once: it installs hello 1.0.0.
func (g *guardSite) machine(name, health string) *machine {
	g.t.Helper()
	script := g.write(filepath.Join("health", name+".sh"), health, 0o755)
	if health == healthHang {
		if err := mkfifo(g.path("health", "never")); err != nil {
			g.t.Fatal(err)
		}
	}
	id := newInstallID(g.t)
	for rollout.Bucket(id, g.salt) >= 5000 {
		id = newInstallID(g.t)
	}
	g.write(filepath.Join(name, "state", "install-id"), id+"\n", 0o600)
	if err := os.Chmod(g.path(name, "state"), 0o700); err != nil {
		g.t.Fatal(err)
	}
	a := g.agent(name, script)
	g.run("agent", "enroll", "--server", g.srv.url, "--ca", g.srv.ca, "--token-file", g.enroll, "--config", a.config)
	a.once()
	if v := a.runs("hello"); v != "1.0.0" {
		g.t.Fatalf("agent %s runs hello %s after its first run, want 1.0.0", name, v)
	}
	return a
}

// guardStatus is what ferry rollout status --json says of hello 1.1.0.
type guardStatus struct {
	State       rollout.State `json:"state"`
	BasisPoints int           `json:"basis_points"`
	Guard       *struct {
		Stage        int       `json:"stage"`
		Started      int       `json:"started"`
		Healthy      int       `json:"healthy"`
		Failed       int       `json:"failed"`
		Silent       int       `json:"silent"`
		StageHealthy int       `json:"stage_healthy"`
		Breached     bool      `json:"breached"`
		Held         bool      `json:"held"`
		Reason       string    `json:"reason"`
		Evaluated    time.Time `json:"evaluated"`
	} `json:"guard"`
}

func (g *guardSite) status() guardStatus {
	g.t.Helper()
	args := []string{"rollout", "status", "--server", g.srv.url, "--ca", g.srv.ca, "--token-file", g.tokens["hello"], "--app", "hello", "--json"}
	out, errs, err := g.try(args...)
	for i := 0; err != nil && strings.Contains(errs, "429 Too Many Requests") && i < 5; i++ {
		time.Sleep(2 * time.Second) // the token's rate: one request every 2 s past its burst
		out, errs, err = g.try(args...)
	}
	if err != nil {
		g.t.Fatalf("ferry %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	var st struct {
		Releases []struct {
			Version string `json:"version"`
			guardStatus
		} `json:"releases"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.t.Fatalf("ferry rollout status --json: %v\n%s", err, out)
	}
	for _, r := range st.Releases {
		if r.Version == "1.1.0" && r.Guard != nil {
			return r.guardStatus
		}
	}
	g.t.Fatalf("ferry rollout status --json has no guarded hello 1.1.0:\n%s", out)
	return guardStatus{}
}

// await polls the rollout status until cond holds for a status the guard
// evaluated after since, and returns it; it fails the test after 30 s.
func (g *guardSite) await(what string, since time.Time, cond func(guardStatus) bool) guardStatus {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := g.status()
		if st.Guard.Evaluated.After(since) && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s: not within 30 s; last status %+v, guard %+v", what, st, *st.Guard)
		}
		time.Sleep(500 * time.Millisecond) // a poll interval (the admin API's token rate), not the condition
	}
}

// startGuarded starts hello 1.1.0 with plan flags through the server.
func (g *guardSite) startGuarded(flags ...string) {
	g.t.Helper()
	g.rollout("start", "hello", "1.1.0", flags...)
}

// tryOnce runs the agent once and returns its error (a rolled-back
// install exits with status 2).
func (a *machine) tryOnce() error {
	_, _, err := a.s.try("agent", "--config", a.config, "--once")
	return err
}

// TestGuardHaltsFailingRollout_R68: two agents install hello 1.1.0 and
// pass their health check; a third fails it and rolls back, which puts
// one of three over the 30% budget: the server halts the rollout itself
// (a signed halt), and the agent that runs after it is not offered 1.1.0.
func TestGuardHaltsFailingRollout_R68(t *testing.T) {
	t.Parallel()
	g := newGuardSite(t)
	a, b := g.machine("a", healthPass), g.machine("b", healthPass)
	c, d := g.machine("c", healthFail), g.machine("d", healthPass)
	g.startGuarded("--stages", "50,100", "--min-healthy", "10", "--budget", "30%", "--check-interval", "1h")
	a.once()
	b.once()
	expect(t, "two healthy agents", map[*machine]map[string]string{a: {"hello": "1.1.0"}, b: {"hello": "1.1.0"}})
	before := g.await("the guard counts the two healthy agents", time.Now(), func(st guardStatus) bool { return st.Guard.Healthy == 2 })
	if before.State != rollout.Active || before.Guard.Breached {
		t.Fatalf("two healthy of two: %+v, guard %+v; want active", before, *before.Guard)
	}
	if err := c.tryOnce(); err == nil {
		t.Fatal("agent c's run with a failing health check exited 0, want the roll-back's status")
	}
	failed := time.Now()
	expect(t, "the failing agent rolled back", map[*machine]map[string]string{c: {"hello": "1.0.0"}})
	st := g.await("the guard halts the rollout", failed, func(st guardStatus) bool { return st.State == rollout.Halted })
	if !st.Guard.Breached || st.Guard.Failed != 1 || st.Guard.Started != 3 || !strings.Contains(st.Guard.Reason, "failure budget of 30% crossed: 1 of 3") {
		t.Errorf("halted with guard %+v; want 1 failed of 3 started, breached", *st.Guard)
	}
	if st.BasisPoints != 5000 {
		t.Errorf("halted at %d bp, want the stage's 5000", st.BasisPoints)
	}
	d.once()
	expect(t, "after the halt", map[*machine]map[string]string{a: {"hello": "1.1.0"}, b: {"hello": "1.1.0"}, c: {"hello": "1.0.0"}, d: {"hello": "1.0.0"}})
	g.srv.stop()
	reported, halted := haltLag(t, g.srv.stderr.String())
	t.Logf("the server halted %v after it accepted the failing agent's last events (guard tick 1 s): %s",
		halted.Sub(reported).Round(time.Millisecond), st.Guard.Reason)
	if halted.Sub(reported) > 10*time.Second {
		t.Errorf("halted %v after the report that crossed the budget, more than 10 s", halted.Sub(reported))
	}
}

// haltLag reads, from ferry serve's log, when the guard logged the halt
// and when the server last answered an events request before it.
func haltLag(t *testing.T, log string) (reported, halted time.Time) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Time   time.Time `json:"time"`
			Msg    string    `json:"msg"`
			Path   string    `json:"path"`
			Status int       `json:"status"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		switch {
		case l.Msg == "request" && l.Path == "/api/v1/events" && l.Status == 200:
			reported = l.Time
		case l.Msg == "guard: rollout halted":
			if reported.IsZero() {
				t.Fatalf("the guard halted before any report:\n%s", log)
			}
			return reported, l.Time
		}
	}
	t.Fatalf("the server did not log the halt:\n%s", log)
	return
}

// TestGuardSilentAgentCounts_R68: an agent that installs hello 1.1.0 and
// then says nothing (its health check hangs, then it is killed) counts as failed once two
// check intervals (here 1 s each) have passed since it started: one
// healthy and one silent are 50%, over the budget, and the server halts.
func TestGuardSilentAgentCounts_R68(t *testing.T) {
	t.Parallel()
	g := newGuardSite(t)
	a, q, b := g.machine("a", healthPass), g.machine("q", healthHang), g.machine("b", healthPass)
	g.startGuarded("--stages", "50,100", "--min-healthy", "10", "--budget", "30%", "--check-interval", "1s")
	a.once()
	g.await("the guard counts the healthy agent", time.Now(), func(st guardStatus) bool { return st.Guard.Healthy == 1 })
	// The daemon, not --once: its uploader sends install.started while the
	// health check hangs. It is killed below, as a machine that died would be.
	p := g.start("agent", "--config", q.config)
	st := g.await("the silent agent halts the rollout", time.Now(), func(st guardStatus) bool { return st.State == rollout.Halted })
	if st.Guard.Silent != 1 || st.Guard.Failed != 0 || !strings.Contains(st.Guard.Reason, "0 reported a failure, 1 silent for over 2s") {
		t.Errorf("halted with guard %+v; want 1 silent, 0 failed", *st.Guard)
	}
	select {
	case <-p.done:
		t.Fatalf("the silent agent exited (%v): its health check did not hang; stderr:\n%s", p.err, p.stderr)
	default:
	}
	p.cmd.Process.Kill()
	// Its health check, orphaned, still waits on the FIFO: let it end.
	if fifo, err := os.OpenFile(g.path("health", "never"), os.O_RDWR, 0); err == nil {
		fifo.WriteString("\n")
		defer fifo.Close()
	}
	b.once()
	expect(t, "after the halt", map[*machine]map[string]string{a: {"hello": "1.1.0"}, b: {"hello": "1.0.0"}})
}

// TestGuardStageHoldsWithoutReports_R68: a stage whose wait is over
// advances only on enough healthy reports: with two of the three it needs
// it holds at 50% (and says so); the third agent's report advances it to
// 100%, and an agent outside the first stage's cohort gets it then.
func TestGuardStageHoldsWithoutReports_R68(t *testing.T) {
	t.Parallel()
	g := newGuardSite(t)
	a, b, c := g.machine("a", healthPass), g.machine("b", healthPass), g.machine("c", healthPass)
	g.startGuarded("--stages", "50,100", "--stage-wait", "0s", "--min-healthy", "3", "--budget", "30%", "--check-interval", "1h")
	a.once()
	b.once()
	st := g.await("the guard counts two healthy agents", time.Now(), func(st guardStatus) bool { return st.Guard.StageHealthy == 2 })
	if st.State != rollout.Active || st.BasisPoints != 5000 || !st.Guard.Held || !strings.Contains(st.Guard.Reason, "holds: 2 of the 3 healthy reports") {
		t.Fatalf("two of three healthy reports: %+v, guard %+v; want held at 50%%", st, *st.Guard)
	}
	c.once()
	st = g.await("the third healthy report advances the stage", time.Now(), func(st guardStatus) bool { return st.BasisPoints == rollout.Full })
	if st.Guard.Stage != 1 || st.State != rollout.Active {
		t.Errorf("after advancing: %+v, guard %+v; want stage 2, active", st, *st.Guard)
	}
	g.srv.stop()
	log := g.srv.stderr.String()
	if !strings.Contains(log, `"msg":"guard: stage holds"`) || !strings.Contains(log, `"msg":"guard: rollout advanced"`) {
		t.Errorf("the server did not log the hold and the advance:\n%s", log)
	}
}

// fakeLines are audit-log lines, as an installation's log writes them, of
// n events of kind about hello 1.1.0, a chain from its start.
func fakeLines(t *testing.T, kind event.Kind, n int) []report.Item {
	t.Helper()
	var items []report.Item
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{OnAppend: func(line []byte, st audit.State) {
		items = append(items, report.Item{Seq: st.Seq, Hash: st.Hash, Line: append([]byte(nil), line...)})
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		l.Observe(event.Event{Time: time.Now(), Kind: kind, App: "hello", Version: "1.1.0"})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return items
}

// TestFakedReportsCannotHaltOrAdvance_R68: three agents report healthy;
// the plan needs five healthy reports and halts above 40% failed. Reports
// without a credential, with a wrong one, or for another installation than
// the credential's are refused and count for nothing; an installation
// enrolled with the real token that repeats 50 healthy reports, then 50
// failures, counts once: the stage still holds at 50% and is not halted.
func TestFakedReportsCannotHaltOrAdvance_R68(t *testing.T) {
	t.Parallel()
	g := newGuardSite(t)
	ctx := context.Background()
	agents := []*machine{g.machine("a", healthPass), g.machine("b", healthPass), g.machine("c", healthPass)}
	g.startGuarded("--stages", "50,100", "--stage-wait", "0s", "--min-healthy", "5", "--budget", "40%", "--check-interval", "1h")
	for _, a := range agents {
		a.once()
	}
	g.await("the guard counts three healthy agents", time.Now(), func(st guardStatus) bool { return st.Guard.StageHealthy == 3 })

	ca, err := os.ReadFile(g.srv.ca)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := report.NewClient(g.srv.url, ca)
	if err != nil {
		t.Fatal(err)
	}
	real, err := report.LoadCredentials(g.path("a", "state"))
	if err != nil {
		t.Fatal(err)
	}
	healthy, failed := fakeLines(t, event.HealthPassed, 50), fakeLines(t, event.HealthFailed, 50)
	for _, c := range []struct {
		name string
		cred report.Credentials
		want int
	}{
		{"no credential", report.Credentials{InstallID: newInstallID(t)}, 401},
		{"an unenrolled installation", report.Credentials{InstallID: "0123456789abcdef0123456789abcdef", Credential: "ferryi_0123456789abcdef0123456789abcdef." + strings.Repeat("A", 43)}, 401},
		{"a wrong credential of an enrolled one", report.Credentials{InstallID: real.InstallID, Credential: "ferryi_" + real.InstallID + "." + strings.Repeat("B", 43)}, 401},
		{"another installation's id", report.Credentials{InstallID: newInstallID(t), Credential: real.Credential}, 403},
	} {
		for _, items := range [][]report.Item{healthy, failed} {
			_, err := rc.Send(ctx, c.cred, items, nil)
			var ae *report.APIError
			if !errors.As(err, &ae) || ae.Status != c.want {
				t.Errorf("faked report with %s: %v, want %d", c.name, err, c.want)
			}
		}
	}
	// One installation, enrolled with the real token, repeating itself.
	liar, err := rc.Enroll(ctx, strings.TrimSpace(string(must(os.ReadFile(g.enroll)))), newInstallID(t), "liar", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Send(ctx, liar, healthy, nil); err != nil {
		t.Fatalf("the enrolled installation's 50 healthy reports: %v", err)
	}
	sent := time.Now()
	st := g.await("the guard counts the repeating installation once", sent, func(st guardStatus) bool { return st.Guard.StageHealthy == 4 })
	if st.BasisPoints != 5000 || !st.Guard.Held || st.Guard.Started != 4 {
		t.Fatalf("after 50 healthy reports of one installation: %+v, guard %+v; want 4 healthy, held at 50%%", st, *st.Guard)
	}
	// The failures continue the liar's chain: written after its 50 lines.
	relinked := relink(t, append(append([]report.Item(nil), healthy...), failed...))[len(healthy):]
	if _, err := rc.Send(ctx, liar, relinked, nil); err != nil {
		t.Fatalf("the enrolled installation's 50 failures: %v", err)
	}
	sent = time.Now()
	st = g.await("the guard counts the repeating failures once", sent, func(st guardStatus) bool { return st.Guard.Failed == 1 })
	if st.State != rollout.Active || st.BasisPoints != 5000 || st.Guard.Breached || st.Guard.Started != 4 || st.Guard.Healthy != 3 {
		t.Fatalf("after 50 failures of one installation: %+v, guard %+v; want 1 failed of 4, active at 50%%", st, *st.Guard)
	}
}

// relink writes items' events again as one chain, as one log would.
func relink(t *testing.T, items []report.Item) []report.Item {
	t.Helper()
	var out []report.Item
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{OnAppend: func(line []byte, st audit.State) {
		out = append(out, report.Item{Seq: st.Seq, Hash: st.Hash, Line: append([]byte(nil), line...)})
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		rec, _, err := audit.ParseLine(it.Line)
		if err != nil {
			t.Fatal(err)
		}
		l.Observe(rec.Event())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
