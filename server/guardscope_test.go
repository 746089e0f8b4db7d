package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/audit"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/guard"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/store"
)

// The reporting API on the guard fixture's store and clock, for
// installations that report through it as a real agent does.
func scopeReporting(t *testing.T, gf *guardFixture) *reportFixture {
	t.Helper()
	h, err := Reporting(ReportConfig{Store: gf.st, Now: gf.clock})
	if err != nil {
		t.Fatal(err)
	}
	f := &reportFixture{st: gf.st, logs: &lockedBuffer{}, now: gf.clock()}
	f.srv = httptest.NewTLSServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

// releaseLines are the lines of a fresh audit log of app's version, one
// event of each kind.
func releaseLines(t *testing.T, app, version string, kinds ...event.Kind) []string {
	t.Helper()
	var lines []string
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Options{
		OnAppend: func(line []byte, _ audit.State) { lines = append(lines, string(line)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, k := range kinds {
		l.Observe(event.Event{Time: time.Now(), Kind: k, App: app, Version: version})
	}
	return lines
}

// enrollFor enrolls installation id through the reporting API with secret,
// running app, and returns its credential.
func enrollFor(t *testing.T, f *reportFixture, secret, id, app string) string {
	t.Helper()
	code, _, body := f.post(t, "/api/v1/enroll", secret, EnrollRequest{InstallID: id, Hostname: "h",
		Apps: []App{{App: app, Version: "1.0.0", Channel: "stable"}}})
	if code != http.StatusOK {
		t.Fatalf("enroll %s: %d %s", id, code, body)
	}
	var ans EnrollAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatal(err)
	}
	return ans.Credential
}

// TestOtherAppInstallationsCannotHalt_R68: installations enrolled with a
// token for another application report, through the reporting API, that
// they started and failed hello 1.1.0. The API refuses the batch (403, a
// security event), and even such events stored anyway (before this check
// existed) are not the guard's evidence: hello's rollout goes on.
func TestOtherAppInstallationsCannotHalt_R68(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "ok", 4)
	f := scopeReporting(t, gf)
	secret, _ := f.token(t, func(tk *store.Token) { tk.Scope = "other"; tk.Uses = 50 })
	for i := range 2 {
		id := fmt.Sprintf("%032x", 0xf00+i)
		cred := enrollFor(t, f, secret, id, "other")
		code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id,
			Lines: releaseLines(t, "hello", "1.1.0", event.InstallStarted, event.HealthFailed)})
		if code != http.StatusForbidden || !strings.Contains(string(body), "for application other") {
			t.Fatalf("events about hello from an installation enrolled for other: %d %s; want 403", code, body)
		}
		// Its own application's reports are still taken.
		code, _, body = f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id,
			Lines: releaseLines(t, "other", "1.0.0", event.CheckUpToDate)})
		if code != http.StatusOK {
			t.Fatalf("events about other: %d %s", code, body)
		}
		sec, err := gf.st.ListSecurity(context.Background(), id, 0)
		if err != nil || len(sec) != 1 || sec[0].Kind != SecurityOutOfScope {
			t.Fatalf("security events of %s = %+v, %v; want one %s", id, sec, err, SecurityOutOfScope)
		}
	}
	// Stored without the API's check: still not counted.
	for i := range 2 {
		id := fmt.Sprintf("%032x", 0xe00+i)
		if err := gf.st.Enroll(context.Background(), store.Installation{ID: id, CredentialHash: hashToken("c" + id), Enrolled: guardT0}, hashToken(secret)); err != nil {
			t.Fatal(err)
		}
		if _, err := gf.st.AppendEvents(context.Background(), id, []store.Event{{Seq: 1, Hash: "h" + id, Received: gf.clock(),
			Event: event.Event{Time: gf.clock(), Kind: event.HealthFailed, App: "hello", Version: "1.1.0"}}}); err != nil {
			t.Fatal(err)
		}
	}
	e, st := gf.evaluate(t)
	if e.State != rollout.Active || st.Started != 4 || st.Failed != 0 {
		t.Fatalf("entry %+v, status started=%d failed=%d (%s); want active, 4 started, none failed", e, st.Started, st.Failed, st.Reason)
	}
}

// TestOtherAppInstallationsCannotAdvance_R68: a real failure rate of 50%
// halts the stage even though four installations enrolled for another
// application report hello 1.1.0 healthy (which, counted, would lower it
// to 1 in 6 and give the stage its healthy reports).
func TestOtherAppInstallationsCannotAdvance_R68(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.report(t, "real0", event.InstallStarted, event.HealthFailed)
	gf.report(t, "real1", event.InstallStarted, event.HealthPassed, event.InstallDone)
	f := scopeReporting(t, gf)
	secret, _ := f.token(t, func(tk *store.Token) { tk.Scope = "other"; tk.Uses = 50 })
	gf.set(11 * time.Minute)
	for i := range 4 {
		id := fmt.Sprintf("%032x", 0xa00+i)
		cred := enrollFor(t, f, secret, id, "other")
		code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id,
			Lines: releaseLines(t, "hello", "1.1.0", event.InstallStarted, event.HealthPassed, event.InstallDone)})
		if code != http.StatusForbidden {
			t.Fatalf("events: %d %s; want 403", code, body)
		}
		// Nor may it claim to run hello.
		code, _, body = f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id,
			Apps: []App{{App: "hello", Version: "1.1.0", Channel: "stable"}}})
		if code != http.StatusForbidden {
			t.Fatalf("apps claiming hello: %d %s; want 403", code, body)
		}
	}
	e, st := gf.evaluate(t)
	if e.State != rollout.Halted || e.BasisPoints != 1000 || st.Started != 2 {
		t.Fatalf("entry %+v, status started=%d failed=%d stage_healthy=%d (%s); want halted at 10%% on 1 of 2 failed",
			e, st.Started, st.Failed, st.StageHealthy, st.Reason)
	}
}

// TestRevokedTokenInstallationsRefused_R69: once the enrollment token an
// installation was enrolled with is revoked, its reports are refused
// (403, saying why and what to do) and what it reported before is no
// longer the guard's evidence: a leaked token's installations cannot hold
// a rollout up after the operator revoked it.
func TestRevokedTokenInstallationsRefused_R69(t *testing.T) {
	gf := newGuardFixture(t)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "ok", 4)
	f := scopeReporting(t, gf)
	secret, tok := f.token(t, func(tk *store.Token) { tk.Scope = "hello"; tk.Uses = 50 })
	var creds []string
	for i := range 2 {
		id := fmt.Sprintf("%032x", 0xb00+i)
		cred := enrollFor(t, f, secret, id, "hello")
		code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id,
			Lines: releaseLines(t, "hello", "1.1.0", event.InstallStarted, event.HealthFailed)})
		if code != http.StatusOK {
			t.Fatalf("events before the revocation: %d %s", code, body)
		}
		creds = append(creds, cred)
	}
	if err := gf.st.RevokeToken(context.Background(), tok.ID, gf.clock()); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%032x", 0xb00)
	code, _, body := f.post(t, "/api/v1/events", creds[0], EventsRequest{InstallID: id,
		Lines: releaseLines(t, "hello", "1.1.0", event.InstallStarted)})
	if code != http.StatusForbidden || !strings.Contains(string(body), "revoked") || !strings.Contains(string(body), "ferry agent enroll") {
		t.Fatalf("events after the revocation: %d %s; want 403 saying the token is revoked", code, body)
	}
	e, st := gf.evaluate(t)
	if e.State != rollout.Active || st.Started != 4 || st.Failed != 0 {
		t.Fatalf("entry %+v, status started=%d failed=%d (%s); want the revoked token's installations not counted", e, st.Started, st.Failed, st.Reason)
	}
	// The machine enrolls again, same install ID, with a new token: its
	// reports are taken again (and the old credential stays refused).
	secret2, _ := f.token(t, func(tk *store.Token) { tk.Scope = "hello"; tk.Uses = 1 })
	cred := enrollFor(t, f, secret2, id, "hello")
	if code, _, body := f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id}); code != http.StatusOK {
		t.Fatalf("events after enrolling again: %d %s", code, body)
	}
	if code, _, _ := f.post(t, "/api/v1/events", creds[0], EventsRequest{InstallID: id}); code != http.StatusUnauthorized {
		t.Fatalf("the old credential after enrolling again: %d, want 401", code)
	}
	// One installation revoked on its own (ferry installation revoke).
	if err := gf.st.RevokeInstallation(context.Background(), id, gf.clock()); err != nil {
		t.Fatal(err)
	}
	code, _, body = f.post(t, "/api/v1/events", cred, EventsRequest{InstallID: id})
	if code != http.StatusForbidden || !strings.Contains(string(body), "ferry installation revoke") {
		t.Fatalf("events of a revoked installation: %d %s; want 403", code, body)
	}
}

// TestGuardRetiresPlans_R68 (review 9 F9): a halted rollout, and one
// offered to everyone for longer than its stage wait and two check
// intervals, are evaluated once more (the status says retired) and then no
// longer every tick, so a pass stays short however many releases were
// ever guarded; a resume makes the guard evaluate the rollout again.
func TestGuardRetiresPlans_R68(t *testing.T) {
	ctx := context.Background()
	gf := newGuardFixture(t)
	c := gf.client(t, gf.roll)
	gf.start(t, 1000, &staged)
	gf.healthy(t, "ok", 2)
	if _, st := gf.evaluate(t); st.Retired {
		t.Fatalf("an active rollout at 10%% retired: %+v", st)
	}
	if _, err := c.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Halt, Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	gf.set(time.Minute)
	_, halted := gf.evaluate(t)
	if !halted.Retired || halted.State != rollout.Halted || !halted.Evaluated.Equal(guardT0.Add(time.Minute)) {
		t.Fatalf("halted: status %+v; want retired, evaluated at +1m", halted)
	}
	gf.set(2 * time.Minute)
	gf.report(t, "bad", event.InstallStarted, event.HealthFailed)
	if _, st := gf.evaluate(t); !st.Evaluated.Equal(halted.Evaluated) || st.Failed != 0 {
		t.Fatalf("a retired plan was evaluated again: %+v", st)
	}
	if _, err := c.Rollout(ctx, "hello", rollout.Action{Kind: rollout.Resume, Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	gf.set(3 * time.Minute)
	if e, st := gf.evaluate(t); st.Retired || st.Failed != 1 || e.State != rollout.Halted {
		t.Fatalf("after a resume: entry %+v, status %+v; want evaluated again (and halted: 1 of 3 failed)", e, st)
	}

	// A watched rollout offered to everyone retires after two intervals
	// (its plan has no stage wait).
	gf.start(t, rollout.Full, &guard.Plan{Budget: 5000, CheckInterval: time.Hour})
	gf.set(3*time.Minute + 2*time.Hour)
	if _, st := gf.evaluate(t); st.Retired {
		t.Fatalf("retired at exactly two intervals: %+v", st)
	}
	gf.set(4*time.Minute + 2*time.Hour)
	_, done := gf.evaluate(t)
	if !done.Retired || !strings.Contains(done.Reason, "retired: offered to everyone") {
		t.Fatalf("finished rollout: status %+v; want retired", done)
	}
	gf.set(5*time.Minute + 2*time.Hour)
	gf.report(t, "bad2", event.InstallStarted, event.HealthFailed)
	if _, st := gf.evaluate(t); !st.Evaluated.Equal(done.Evaluated) {
		t.Fatalf("a retired plan was evaluated again: %+v", st)
	}
}
