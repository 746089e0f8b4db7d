package guard

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

// fleet makes outcomes: n installations named prefix0.. that started at
// start and, if set, reported healthy or failed a minute later.
func fleet(prefix string, n int, start time.Time, kind string) []Outcome {
	var out []Outcome
	for i := range n {
		o := Outcome{InstallID: fmt.Sprintf("%s%d", prefix, i), Started: start}
		switch kind {
		case "healthy":
			o.Healthy = start.Add(time.Minute)
		case "failed":
			o.Failed = start.Add(time.Minute)
		}
		out = append(out, o)
	}
	return out
}

func cat(parts ...[]Outcome) []Outcome {
	var out []Outcome
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	staged := Plan{Stages: []int{100, 1000, 5000, rollout.Full}, StageWait: 30 * time.Minute, MinHealthy: 20, Budget: 500, CheckInterval: time.Hour}
	stage0 := Current{State: rollout.Active, BasisPoints: 100, Stage: 0, StageSince: t0}
	now := t0.Add(time.Hour) // the stage's wait is over
	repeated := make([]Outcome, 100)
	for i := range repeated {
		repeated[i] = Outcome{InstallID: "liar", Started: t0, Failed: t0.Add(time.Minute)}
	}
	oneHealthy := make([]Outcome, 30)
	for i := range oneHealthy {
		oneHealthy[i] = Outcome{InstallID: "same", Started: t0, Healthy: t0.Add(time.Minute)}
	}
	cases := []struct {
		name   string
		plan   Plan
		cur    Current
		ev     []Outcome
		now    time.Time
		action Action
		bp     int    // Advance: the share
		held   bool   // Status.Held
		reason string // in Status.Reason
		counts [5]int // started, healthy, failed, silent, pending
	}{
		{name: "no data never advances", plan: staged, cur: stage0, now: now, held: true, reason: "holds: 0 of the 20"},
		{name: "enough healthy advances", plan: staged, cur: stage0, ev: fleet("h", 20, t0, "healthy"), now: now,
			action: Advance, bp: 1000, reason: "advancing to 10%", counts: [5]int{20, 20, 0, 0, 0}},
		{name: "one short holds", plan: staged, cur: stage0, ev: fleet("h", 19, t0, "healthy"), now: now,
			held: true, reason: "19 of the 20", counts: [5]int{19, 19, 0, 0, 0}},
		{name: "wait not over", plan: staged, cur: stage0, ev: fleet("h", 40, t0, "healthy"), now: t0.Add(10 * time.Minute),
			reason: "20m0s of its wait left", counts: [5]int{40, 40, 0, 0, 0}},
		{name: "healthy of an earlier stage do not count", plan: staged,
			cur: Current{State: rollout.Active, BasisPoints: 1000, Stage: 1, StageSince: t0},
			ev:  cat(fleet("old", 30, t0.Add(-time.Hour), "healthy"), fleet("new", 5, t0, "healthy")), now: now,
			held: true, reason: "stage 2 of 4 (10%) holds: 5 of the 20", counts: [5]int{35, 35, 0, 0, 0}},
		{name: "one installation repeating healthy counts once", plan: staged, cur: stage0, ev: oneHealthy, now: now,
			held: true, reason: "1 of the 20", counts: [5]int{1, 1, 0, 0, 0}},
		{name: "budget crossed halts", plan: staged, cur: stage0, ev: cat(fleet("h", 18, t0, "healthy"), fleet("f", 2, t0, "failed")), now: now,
			action: Halt, reason: "failure budget of 5% crossed: 2 of 20", counts: [5]int{20, 18, 2, 0, 0}},
		{name: "at the budget is no breach", plan: staged, cur: stage0, ev: cat(fleet("h", 19, t0, "healthy"), fleet("f", 1, t0, "failed")), now: now,
			held: true, counts: [5]int{20, 19, 1, 0, 0}},
		{name: "budget crossed halts during the wait", plan: staged, cur: stage0, ev: fleet("f", 1, t0, "failed"), now: t0.Add(time.Minute),
			action: Halt, counts: [5]int{1, 0, 1, 0, 0}},
		{name: "silence counts as failed", plan: staged, cur: stage0,
			ev: cat(fleet("h", 19, t0, "healthy"), fleet("s", 2, t0.Add(-2*time.Hour), "")), now: now.Add(time.Second),
			action: Halt, reason: "2 silent for over 2h0m0s", counts: [5]int{21, 19, 0, 2, 0}},
		{name: "not silent before two intervals", plan: staged, cur: stage0,
			ev: cat(fleet("h", 20, t0, "healthy"), fleet("s", 2, now.Add(-2*time.Hour), "")), now: now,
			action: Advance, bp: 1000, counts: [5]int{22, 20, 0, 0, 2}},
		{name: "one installation repeating a failure counts once", plan: staged, cur: stage0,
			ev: cat(fleet("h", 20, t0, "healthy"), repeated), now: now,
			action: Advance, bp: 1000, counts: [5]int{21, 20, 1, 0, 0}},
		{name: "failed and healthy is failed", plan: staged, cur: stage0,
			ev: []Outcome{{InstallID: "a", Started: t0, Healthy: t0.Add(time.Minute)}, {InstallID: "a", Failed: t0.Add(2 * time.Minute)}}, now: now,
			action: Halt, counts: [5]int{1, 0, 1, 0, 0}},
		{name: "a failure without install.started counts as started", plan: staged, cur: stage0,
			ev: cat(fleet("h", 30, t0, "healthy"), []Outcome{{InstallID: "x", Failed: t0}, {InstallID: "y", Failed: t0}}), now: now,
			action: Halt, counts: [5]int{32, 30, 2, 0, 0}},
		{name: "outcome without any report is ignored", plan: staged, cur: stage0,
			ev: cat(fleet("h", 20, t0, "healthy"), []Outcome{{InstallID: "ghost"}}), now: now,
			action: Advance, bp: 1000, counts: [5]int{20, 20, 0, 0, 0}},
		{name: "advance never narrows", plan: staged, cur: Current{State: rollout.Active, BasisPoints: 6000, Stage: 1, StageSince: t0},
			ev: fleet("h", 20, t0, "healthy"), now: now, action: Advance, bp: 6000},
		{name: "last stage watches", plan: staged, cur: Current{State: rollout.Active, BasisPoints: rollout.Full, Stage: 3, StageSince: t0},
			ev: fleet("h", 1, t0, "healthy"), now: now, reason: "last stage, watching", counts: [5]int{1, 1, 0, 0, 0}},
		{name: "watched rollout never widens", plan: Plan{Budget: 1000}, cur: Current{State: rollout.Active, BasisPoints: 500, StageSince: t0},
			ev: fleet("h", 100, t0, "healthy"), now: now, reason: "watching the budget", counts: [5]int{100, 100, 0, 0, 0}},
		{name: "watched rollout halts", plan: Plan{Budget: 1000}, cur: Current{State: rollout.Active, BasisPoints: 500, StageSince: t0},
			ev: cat(fleet("h", 8, t0, "healthy"), fleet("f", 1, t0, "failed")), now: now, action: Halt, reason: "budget of 10%"},
		{name: "zero plan has the default budget", plan: Plan{}, cur: Current{State: rollout.Active, BasisPoints: 500, StageSince: t0},
			ev: cat(fleet("h", 9, t0, "healthy"), fleet("f", 1, t0, "failed")), now: now, action: Halt, reason: "budget of 5%"},
		{name: "halted is left alone", plan: staged, cur: Current{State: rollout.Halted, BasisPoints: 100, StageSince: t0},
			ev: fleet("f", 5, t0, "failed"), now: now, reason: "halted: the guard acts only", counts: [5]int{5, 0, 5, 0, 0}},
		{name: "pulled is left alone", plan: staged, cur: Current{State: rollout.Pulled, BasisPoints: 100, StageSince: t0},
			ev: fleet("h", 30, t0, "healthy"), now: now, reason: "pulled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Evaluate(c.plan, c.cur, c.ev, c.now)
			st := v.Status
			if v.Action != c.action || (c.action == Advance && (v.BasisPoints != c.bp || v.Stage != c.cur.Stage+1)) {
				t.Errorf("verdict %v stage %d at %d bp, want %v at %d bp (reason: %s)", v.Action, v.Stage, v.BasisPoints, c.action, c.bp, st.Reason)
			}
			if st.Held != c.held || st.Breached != (c.action == Halt) || st.Verdict != c.action.String() {
				t.Errorf("held %v breached %v verdict %q, want held %v, breached %v (reason: %s)", st.Held, st.Breached, st.Verdict, c.held, c.action == Halt, st.Reason)
			}
			if !strings.Contains(st.Reason, c.reason) {
				t.Errorf("reason %q does not say %q", st.Reason, c.reason)
			}
			if c.counts != ([5]int{}) {
				if got := [5]int{st.Started, st.Healthy, st.Failed, st.Silent, st.Pending}; got != c.counts {
					t.Errorf("started, healthy, failed, silent, pending = %v, want %v", got, c.counts)
				}
			}
			if st.Started > 0 && st.FailedShare != float64(st.Failed+st.Silent)/float64(st.Started) {
				t.Errorf("failed share %v", st.FailedShare)
			}
			if strings.Contains(st.Reason, "\n") || st.Evaluated != c.now {
				t.Errorf("reason %q, evaluated %v", st.Reason, st.Evaluated)
			}
		})
	}
}

func TestPlanCheck(t *testing.T) {
	for _, c := range []struct {
		p   Plan
		bad string
	}{
		{Plan{Stages: []int{100, 1000, 10000}}, ""},
		{Plan{}, ""},
		{Plan{Stages: []int{0, 100}}, "stage 1 is 0 basis points"},
		{Plan{Stages: []int{100, 100}}, "not above stage 1"},
		{Plan{Stages: []int{5000, 1000}}, "not above"},
		{Plan{Stages: []int{10001}}, "want 1..10000"},
		{Plan{StageWait: -1}, "negative"},
		{Plan{MinHealthy: -1}, "negative"},
		{Plan{Budget: 10001}, "budget"},
		{Plan{CheckInterval: -time.Second}, "negative"},
	} {
		err := c.p.Check()
		if (c.bad == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.bad) {
			t.Errorf("Check(%+v) = %v, want %q", c.p, err, c.bad)
		}
	}
}

func TestParseStages(t *testing.T) {
	got, err := ParseStages("1, 10,50,100")
	if err != nil || fmt.Sprint(got) != "[100 1000 5000 10000]" {
		t.Fatalf("ParseStages = %v, %v", got, err)
	}
	if s := FormatStages(got); s != "1,10,50,100" {
		t.Fatalf("FormatStages = %q", s)
	}
	if s := FormatStages([]int{50, 1250}); s != "0.5,12.5" {
		t.Fatalf("FormatStages = %q", s)
	}
	for _, bad := range []string{"", "1,,10", "10,1", "1,101", "x", "0"} {
		if _, err := ParseStages(bad); err == nil {
			t.Errorf("ParseStages(%q) accepted", bad)
		}
	}
}

// TestSignedAdvance: once the advance is signed, the status is of the new
// stage and its reason says the advance happened ("advanced to 10%"), not
// that it is to come, beside a stage line that already says stage 2.
func TestSignedAdvance(t *testing.T) {
	plan := Plan{Stages: []int{100, 1000, rollout.Full}, MinHealthy: 1}
	v := Evaluate(plan, Current{State: rollout.Active, BasisPoints: 100, StageSince: t0}, fleet("h", 1, t0, "healthy"), t0.Add(time.Minute))
	if v.Action != Advance || !strings.HasSuffix(v.Status.Reason, "; advancing to 10%") || !strings.Contains(v.Status.Reason, "done: 1 healthy report,") {
		t.Fatalf("verdict %v, reason %q", v.Action, v.Status.Reason)
	}
	at := t0.Add(2 * time.Minute)
	v.Signed(rollout.Entry{State: rollout.Active, BasisPoints: 1000}, at)
	st := v.Status
	want := "stage 1 of 3 (1%) done: 1 healthy report, 0 of 1 failed, budget 5%; advanced to 10%"
	if st.Reason != want || st.Stage != 1 || !st.StageSince.Equal(at) || st.StageHealthy != 0 || st.BasisPoints != 1000 {
		t.Fatalf("signed: %+v, reason %q; want stage 2 since %v, reason %q", st, st.Reason, at, want)
	}
	if p := st.Phase(); p != "guarded, stage 2 of 3" {
		t.Errorf("Phase() = %q", p)
	}
}

// TestPhase: what a status shows beside a guarded release.
func TestPhase(t *testing.T) {
	staged := Plan{Stages: []int{5000, rollout.Full}}
	for _, c := range []struct {
		st   Status
		want string
	}{
		{Status{Plan: staged}, "guarded, stage 1 of 2"},
		{Status{Plan: staged, Stage: 1}, "guarded, last stage"},
		{Status{Plan: Plan{Budget: 500}}, "guarded, watched"},
		{Status{Plan: staged, Stage: 1, Retired: true}, "guard retired"},
	} {
		if got := c.st.Phase(); got != c.want {
			t.Errorf("Phase(%+v) = %q, want %q", c.st, got, c.want)
		}
	}
}

// TestDescribeWords: no "each at least 0s", no "1 healthy reports".
func TestDescribeWords(t *testing.T) {
	for _, c := range []struct {
		p    Plan
		want string
	}{
		{Plan{Stages: []int{5000, rollout.Full}, MinHealthy: 1}, "stages 50% 100%, no stage wait, each at least 1 healthy report; halts above 5% failed (silent for 2h0m0s counts as failed)"},
		{Plan{Stages: []int{5000, rollout.Full}, StageWait: time.Hour, MinHealthy: 3}, "stages 50% 100%, each at least 1h0m0s and 3 healthy reports; halts above 5% failed (silent for 2h0m0s counts as failed)"},
	} {
		if got := c.p.Describe(); got != c.want {
			t.Errorf("Describe() = %q, want %q", got, c.want)
		}
	}
}
