package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
)

// TestAgentStaleEvent_R15: a repository that answers 503 for longer than
// max_staleness makes the application stale, in the status file and with
// a refresh.stale event; a successful refresh clears it. The clock is
// injected; the 503 comes from the fake repository (see also
// TestAgentStale_R15 against a real server).
func TestAgentStaleEvent_R15(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "interval = \"1h\"\njitter = \"0s\"\nmax_staleness = \"3h\"", appTOML("hello", "a.example", ""))
	a := e.agent(t, c, e.options())
	r := e.repo("a.example")
	a.RunOnce(context.Background()) // a good refresh at 12:00
	r.refreshErr = errors.New("GET https://a.example/metadata/timestamp.json: 503 Service Unavailable")
	for h := 1; h <= 4; h++ {
		e.clock.advance(time.Hour)
		a.RunOnce(context.Background())
		st, err := ReadStatus(c.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		app := st.Apps[0]
		if wantStale := h > 3; app.Stale != wantStale {
			t.Errorf("%dh after the last good refresh: stale %v, want %v", h, app.Stale, wantStale)
		}
		if app.Result != ResultError || !strings.Contains(app.LastError, "503") {
			t.Errorf("%dh: result %q, last error %q", h, app.Result, app.LastError)
		}
	}
	var stale []event.Event
	for _, ev := range e.rec.Events() {
		if ev.Kind == event.Stale {
			stale = append(stale, ev)
		}
	}
	if len(stale) != 1 || stale[0].App != "hello" || stale[0].Evidence["last_refresh"] != "2026-12-04T12:00:00Z" {
		t.Fatalf("stale events %+v, want one for hello with its last refresh", stale)
	}
	r.refreshErr = nil
	e.clock.advance(time.Hour)
	a.RunOnce(context.Background())
	if st := a.Status(); st.Apps[0].Stale || st.Apps[0].Result != ResultUpToDate || st.Apps[0].LastError == "" {
		t.Errorf("after a good refresh: %+v (stale cleared, last error kept)", st.Apps[0])
	}
}

// TestStaleAcrossRestart: a restarted agent does not forget when its
// repository last answered.
func TestStaleAcrossRestart(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "interval = \"1h\"\njitter = \"0s\"\nmax_staleness = \"3h\"", appTOML("hello", "a.example", ""))
	a := e.agent(t, c, e.options())
	a.RunOnce(context.Background())
	a.Close()
	e.repo("a.example").refreshErr = errors.New("503 Service Unavailable")
	e.clock.advance(4 * time.Hour)
	b := e.agent(t, c, e.options())
	b.RunOnce(context.Background())
	if st := b.Status(); !st.Apps[0].Stale {
		t.Errorf("restarted agent 4h after the last good refresh is not stale: %+v", st.Apps[0])
	}
}

// TestStatusFile: written after each application's check, atomically,
// with the installed version, channel, result and the cohort the
// client's events told.
func TestStatusFile(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", "channel = \"beta\""), appTOML("world", "a.example", ""))
	var a *Agent
	e.repo("a.example").update = func(ctx context.Context, tg Target, inst client.Installer) (Outcome, error) {
		if tg.Name == "world" {
			// hello's line is on disk before world is checked.
			st, err := ReadStatus(c.StateDir)
			if err != nil || st.Apps[0].Result != ResultUpdated {
				t.Errorf("status before world's check: %+v %v", st, err)
			}
			return Outcome{From: "2.0.0", Version: "2.0.0", Reason: "up to date"}, nil
		}
		a.events.For("hello").Emit(event.CheckOffered, "1.5.0", "newer release", "bucket", "42", "basis_points", "500")
		return Outcome{From: "1.4.0", Version: "1.5.0", Offered: "1.5.0", Updated: true}, nil
	}
	a = e.agent(t, c, e.options())
	a.RunOnce(context.Background())
	st, err := ReadStatus(c.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	h, w := st.Apps[0], st.Apps[1]
	if h.App != "hello" || h.Installed != "1.5.0" || h.Channel != "beta" || h.Result != ResultUpdated || h.LastCheck == nil {
		t.Errorf("hello %+v", h)
	}
	if h.Cohort == nil || *h.Cohort != (Cohort{Version: "1.5.0", Bucket: 42, BasisPoints: 500}) {
		t.Errorf("hello's cohort %+v", h.Cohort)
	}
	if w.App != "world" || w.Installed != "2.0.0" || w.Channel != "stable" || w.Result != ResultUpToDate {
		t.Errorf("world %+v", w)
	}
	if st.InstallID != a.InstallID() || st.PID != os.Getpid() || st.MaxStaleness != "24h0m0s" {
		t.Errorf("status header %+v", st)
	}
	fi, err := os.Stat(filepath.Join(c.StateDir, StatusFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("status file %v %v", fi, err)
	}
	if m, _ := filepath.Glob(filepath.Join(c.StateDir, "*.tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// TestMaintenanceWindow: outside the window the release is downloaded
// (Download, not Update) and the next cycle is scheduled for the
// window's opening; inside it, it is installed.
func TestMaintenanceWindow(t *testing.T) {
	e := newTestEnv(t)
	// The clock starts on Friday 2026-12-04 12:00 UTC = 13:00 in Berlin.
	c := e.config(t, "interval = \"6h\"\njitter = \"0s\"",
		appTOML("hello", "a.example", "[app.window]\nhours = \"14:00-15:00\"\ntime_zone = \"Europe/Berlin\""))
	r := e.repo("a.example")
	r.update = func(ctx context.Context, tg Target, inst client.Installer) (Outcome, error) {
		return Outcome{From: "1.0.0", Version: "1.0.0", Offered: "1.1.0"}, nil
	}
	a := e.agent(t, c, e.options())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if d := e.clock.next(t); d != time.Hour {
		t.Errorf("wait after a deferred install %v, want 1h (until the window opens), not the 6h interval", d)
	}
	r.mu.Lock()
	r.update = func(ctx context.Context, tg Target, inst client.Installer) (Outcome, error) {
		return Outcome{From: "1.0.0", Version: "1.1.0", Offered: "1.1.0", Updated: true}, nil
	}
	r.mu.Unlock()
	if d := e.clock.next(t); d != 6*time.Hour {
		t.Errorf("wait after the install %v, want the interval", d)
	}
	cancel()
	<-done
	if _, calls := r.stats(); !slices.Equal(calls, []string{"download hello", "update hello"}) {
		t.Errorf("calls %v, want a download outside the window, then an update inside it", calls)
	}
	var deferred bool
	for _, ev := range e.rec.Events() {
		deferred = deferred || ev.Kind == event.InstallDeferred && ev.Version == "1.1.0" && ev.Evidence["opens"] == "2026-12-04T14:00:00+01:00"
	}
	if !deferred {
		t.Errorf("no install.deferred event for 1.1.0: %+v", e.rec.Events())
	}
}

// TestSelfUpdateReexec: when the agent's own executable is updated, the
// new version is started between cycles (after the status is written),
// and --once never re-executes.
func TestSelfUpdateReexec(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("ferry", "a.example", ""), appTOML("hello", "a.example", ""))
	self := filepath.Join(e.dir, "bin", "ferry")
	os.WriteFile(self, []byte("old agent"), 0o755)
	r := e.repo("a.example")
	var order []string
	r.update = func(ctx context.Context, tg Target, inst client.Installer) (Outcome, error) {
		order = append(order, "check "+tg.Name)
		if tg.Name == "ferry" {
			return Outcome{From: "1.0.0", Version: "1.1.0", Offered: "1.1.0", Updated: true}, nil
		}
		return Outcome{}, nil
	}
	reexec := make(chan string, 1)
	opts := e.options()
	opts.Executable = self
	opts.Reexec = func(path string) error {
		order = append(order, "reexec")
		reexec <- path
		return errors.New("exec format error") // the old process carries on
	}
	a := e.agent(t, c, opts)
	a.RunOnce(context.Background())
	select {
	case p := <-reexec:
		t.Fatalf("--once re-executed %s", p)
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.clock.next(t)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := <-reexec; p != self {
		t.Errorf("re-executed %s, want %s", p, self)
	}
	want := []string{"check ferry", "check hello", "check ferry", "check hello", "reexec"}
	if !slices.Equal(order[:5], want) {
		t.Errorf("order %v, want %v (re-exec only after the whole cycle)", order, want)
	}
	// A failed re-exec keeps the lock: a second agent is still refused.
	if _, err := New(c, e.options()); !errors.Is(err, ErrBusy) {
		t.Errorf("after a failed re-exec a second agent got %v, want ErrBusy", err)
	}
}
