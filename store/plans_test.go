package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
)

func testPlans(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	p := RolloutPlan{App: "web", Version: "1.1.0", Created: t0, StageSince: t0,
		Plan: guard.Plan{Stages: []int{100, 1000, 5000, rollout.Full}, StageWait: 30 * time.Minute, MinHealthy: 20, Budget: 500, CheckInterval: time.Hour}}
	if err := s.PutPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.Plan(ctx, "web", "1.1.0")
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("Plan = %+v, %v; want %+v", got, err, p)
	}
	// The guard moves it on and records what it found.
	p.Stage, p.StageSince = 1, t0.Add(time.Hour)
	p.Status = guard.Status{App: "web", Version: "1.1.0", Plan: p.Plan, Stage: 1, StageSince: p.StageSince, BasisPoints: 1000,
		State: rollout.Active, Started: 25, Healthy: 24, Failed: 1, StageHealthy: 3, FailedShare: 0.04,
		Reason: "stage 2 of 4 (10%): 29m of its wait left", Verdict: "none", Evaluated: t0.Add(time.Hour + time.Minute)}
	if err := s.PutPlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Plan(ctx, "web", "1.1.0"); err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("Plan after the guard's update = %+v, %v; want %+v", got, err, p)
	}
	watched := RolloutPlan{App: "api", Version: "2.0.0", Created: t0, Plan: guard.Plan{Budget: 1000}}
	if err := s.PutPlan(ctx, watched); err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListPlans(ctx, ""); err != nil || len(l) != 2 || l[0].App != "api" || l[0].Plan.Stages != nil {
		t.Fatalf("ListPlans() = %+v, %v", l, err)
	}
	if l, err := s.ListPlans(ctx, "web"); err != nil || len(l) != 1 || l[0].Version != "1.1.0" {
		t.Fatalf("ListPlans(web) = %+v, %v", l, err)
	}
	for _, bad := range []RolloutPlan{
		{App: "web", Version: "1.2.0", Plan: guard.Plan{Stages: []int{1000, 100}}},
		{App: "web", Version: "1.2.0", Plan: guard.Plan{Stages: []int{100}}, Stage: 1},
		{App: "web", Version: "1.2.0", Stage: 1},
		{App: "", Version: "1.2.0"},
	} {
		if err := s.PutPlan(ctx, bad); err == nil {
			t.Errorf("PutPlan(%+v) accepted", bad)
		}
	}
	if _, err := s.Plan(ctx, "web", "1.2.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Plan of a release without one: %v, want ErrNotFound", err)
	}
	if err := s.DeletePlan(ctx, "web", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePlan(ctx, "web", "1.1.0"); err != nil {
		t.Fatalf("deleting no plan: %v", err)
	}
	if _, err := s.Plan(ctx, "web", "1.1.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Plan after DeletePlan: %v, want ErrNotFound", err)
	}
}

// Outcomes gives one row per enrolled installation, its first receipt of
// each kind of report, whatever else or however often it sent.
func testOutcomes(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enroll(t, s, "a", "b", "c", "d", "e")
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	report := func(id string, m int, kinds ...event.Kind) {
		t.Helper()
		h, _ := s.ChainHead(ctx, id)
		var batch []Event
		for i, k := range kinds {
			seq := h.Seq + uint64(i) + 1
			// The installation's own clock says an hour earlier: the
			// server's receive time is what counts.
			batch = append(batch, Event{Seq: seq, Hash: lineHash(id, seq), Received: at(m),
				Event: event.Event{Time: at(m - 60), Kind: k, App: "web", Version: "1.1.0"}})
		}
		if _, err := s.AppendEvents(ctx, id, batch); err != nil {
			t.Fatal(err)
		}
	}
	report("a", 1, event.CheckOffered, event.InstallStarted, event.Swapped, event.HealthPassed, event.InstallDone)
	report("a", 5, event.InstallStarted, event.HealthPassed) // again, later: the first counts
	report("b", 2, event.InstallStarted, event.HealthFailed)
	report("b", 3, event.RolledBack)
	report("c", 3, event.InstallStarted) // silent since
	report("d", 4, event.InstallFailed)  // no install.started
	for range 50 {                       // e repeats itself
		report("e", 6, event.InstallStarted, event.HealthPassed)
	}
	// Other releases and applications, and kinds that are no outcome.
	if _, err := s.AppendEvents(ctx, "c", []Event{
		{Seq: 100, Hash: "h1", Received: at(9), Event: event.Event{Time: at(9), Kind: event.HealthFailed, App: "web", Version: "1.0.0"}},
		{Seq: 101, Hash: "h2", Received: at(9), Event: event.Event{Time: at(9), Kind: event.HealthFailed, App: "api", Version: "1.1.0"}},
		{Seq: 102, Hash: "h3", Received: at(9), Event: event.Event{Time: at(9), Kind: event.DownloadDone, App: "web", Version: "1.1.0"}},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Outcomes(ctx, "web", "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	want := []guard.Outcome{
		{InstallID: "a", Started: at(1), Healthy: at(1)},
		{InstallID: "b", Started: at(2), Failed: at(2)},
		{InstallID: "c", Started: at(3)},
		{InstallID: "d", Failed: at(4)},
		{InstallID: "e", Started: at(6), Healthy: at(6)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Outcomes =\n%+v\nwant\n%+v", got, want)
	}
	if got, err := s.Outcomes(ctx, "web", "9.9.9"); err != nil || len(got) != 0 {
		t.Fatalf("Outcomes of a release nobody reported = %+v, %v", got, err)
	}
}

// Outcomes counts only installations whose enrollment token is for the
// release's application (or every one) and not revoked: an installation
// enrolled for another application, or through a token revoked since, says
// nothing about this release (R68, R69).
func testOutcomesScope(t *testing.T, b backend) {
	ctx := context.Background()
	s := b.newStore(t)
	enrollWith := func(tk Token, ids ...string) {
		t.Helper()
		h := newToken(t, s, Enroll, tk)
		for _, id := range ids {
			if err := s.Enroll(ctx, Installation{ID: id, CredentialHash: hashOf("cred-" + id), Enrolled: t0}, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	enrollWith(Token{ID: "all", Scope: "*"}, "any")
	enrollWith(Token{ID: "web", Scope: "web"}, "web")
	enrollWith(Token{ID: "api", Scope: "api"}, "other")
	enrollWith(Token{ID: "leaked", Scope: "web"}, "leak")
	for _, id := range []string{"any", "web", "other", "leak"} {
		if _, err := s.AppendEvents(ctx, id, []Event{{Seq: 1, Hash: lineHash(id, 1), Received: t0,
			Event: event.Event{Time: t0, Kind: event.HealthFailed, App: "web", Version: "1.1.0"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken(ctx, "leaked", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Outcomes(ctx, "web", "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range got {
		ids = append(ids, o.InstallID)
	}
	if !reflect.DeepEqual(ids, []string{"any", "web"}) {
		t.Fatalf("Outcomes counts %q, want [any web]: not %q (enrolled for api) nor %q (its token revoked)", ids, "other", "leak")
	}
	// Installation says what the token allows, for the reporting API.
	for id, want := range map[string][2]string{"any": {"*", ""}, "other": {"api", ""}, "leak": {"web", "revoked"}} {
		in, err := s.Installation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if in.TokenScope != want[0] || in.TokenRevoked.IsZero() != (want[1] == "") {
			t.Errorf("Installation(%s): scope %q, revoked %v; want %q, %s", id, in.TokenScope, in.TokenRevoked, want[0], want[1])
		}
	}
	// The real machine behind "leak" enrolls again with a new token: it
	// counts again. One whose token is valid cannot be enrolled over.
	h := newToken(t, s, Enroll, Token{ID: "new", Scope: "web"})
	if err := s.Enroll(ctx, Installation{ID: "leak", CredentialHash: hashOf("new-cred"), Enrolled: t0.Add(time.Hour)}, h); err != nil {
		t.Fatalf("enroll again after the token's revocation: %v", err)
	}
	if in, err := s.Installation(ctx, "leak"); err != nil || in.TokenID != "new" || in.CredentialHash != hashOf("new-cred") || !in.TokenRevoked.IsZero() {
		t.Fatalf("Installation(leak) after enrolling again = %+v, %v", in, err)
	}
	if err := s.Enroll(ctx, Installation{ID: "other", CredentialHash: hashOf("x"), Enrolled: t0}, h); !errors.Is(err, ErrConflict) {
		t.Fatalf("enroll over an installation whose token is valid: %v, want ErrConflict", err)
	}
	if got, err := s.Outcomes(ctx, "web", "1.1.0"); err != nil || len(got) != 3 {
		t.Fatalf("Outcomes after leak enrolled again = %+v, %v; want any, leak, web", got, err)
	}
	// An installation revoked on its own counts no more, and stays revoked.
	if err := s.RevokeInstallation(ctx, "any", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeInstallation(ctx, "any", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if in, err := s.Installation(ctx, "any"); err != nil || !in.Revoked.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Installation(any) after RevokeInstallation = %+v, %v; want revoked at +2h (the first time)", in, err)
	}
	if err := s.RevokeInstallation(ctx, "nobody", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RevokeInstallation(nobody) = %v, want ErrNotFound", err)
	}
	if got, err := s.Outcomes(ctx, "web", "1.1.0"); err != nil || len(got) != 2 || got[0].InstallID != "leak" {
		t.Fatalf("Outcomes after any was revoked = %+v, %v; want leak, web", got, err)
	}
	if err := s.RevokeToken(ctx, "all", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h2 := newToken(t, s, Enroll, Token{ID: "later"})
	if err := s.Enroll(ctx, Installation{ID: "any", CredentialHash: hashOf("y"), Enrolled: t0}, h2); !errors.Is(err, ErrInstallationRevoked) {
		t.Fatalf("enroll over a revoked installation: %v, want ErrInstallationRevoked", err)
	}
	// The dashboard's counters count what the guard counts: leak and web.
	for _, id := range []string{"any", "web", "other", "leak"} {
		if err := s.Seen(ctx, id, t0.Add(4*time.Hour), []App{{App: "web", Version: "1.1.0", Channel: "stable"}}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.ReleaseStats(ctx, "web", "1.1.0"); err != nil || st != (Stats{Started: 2, Failed: 2}) {
		t.Errorf("ReleaseStats(web 1.1.0) = %+v, %v; want 2 started, 2 failed, as Outcomes", st, err)
	}
	if f, err := s.Fleet(ctx, "web"); err != nil || len(f) != 1 || f[0] != (FleetCount{"1.1.0", "stable", 2}) {
		t.Errorf("Fleet(web) = %v, %v; want 2 at 1.1.0 in stable, as Outcomes", f, err)
	}
	// The list says who was revoked, and whose token.
	list, err := s.ListInstallations(ctx, InstallationQuery{})
	if err != nil || len(list) != 4 {
		t.Fatalf("ListInstallations = %+v, %v", list, err)
	}
	for _, in := range list {
		if wantSelf, wantToken := in.ID == "any", in.ID == "any"; in.Revoked.IsZero() == wantSelf || in.TokenRevoked.IsZero() == wantToken {
			t.Errorf("ListInstallations: %s revoked %v, its token revoked %v", in.ID, in.Revoked, in.TokenRevoked)
		}
	}
}

// TestOutcomesIndexText: the partial index of migration 0004 has the
// WHERE that Outcomes writes, so the databases can use it.
func TestOutcomesIndexText(t *testing.T) {
	b, err := migrationFiles.ReadFile("migrations/0004_events_outcomes.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "WHERE "+outcomeKinds+";") {
		t.Fatalf("migration 0004 does not end with WHERE %s;", outcomeKinds)
	}
}

// TestOutcomesUseIndex: SQLite's plan of the Outcomes query reads the
// partial index (a broken match would scan events_release and sort).
func TestOutcomesUseIndex(t *testing.T) {
	loc := filepath.Join(t.TempDir(), "ferry.db")
	openStore(t, loc)
	db, _ := rawDB(t, loc)
	q := "EXPLAIN QUERY PLAN " + outcomesQuery
	rows, err := db.Query(q, "web", "1.1.0", "web")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if !strings.Contains(plan.String(), "events_outcomes") {
		t.Fatalf("the Outcomes query does not use events_outcomes:\n%s", plan.String())
	}
}
