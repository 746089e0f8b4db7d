package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/install"
)

// TestOneRefreshPerRepository: three applications from two repositories
// cost two refreshes per cycle, and every application is checked.
func TestOneRefreshPerRepository(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""), appTOML("world", "b.example", ""), appTOML("third", "a.example", ""))
	a := e.agent(t, c, e.options())
	for cycle := 1; cycle <= 3; cycle++ {
		rep := a.RunOnce(context.Background())
		if !rep.OK() || len(rep.Apps) != 3 {
			t.Fatalf("cycle %d: %+v", cycle, rep)
		}
	}
	ra, calls := e.repo("a.example").stats()
	rb, _ := e.repo("b.example").stats()
	if ra != 3 || rb != 3 {
		t.Errorf("refreshes after 3 cycles: a %d, b %d; want 3 each", ra, rb)
	}
	if want := []string{"update hello", "update third"}; !slices.Equal(calls[:2], want) {
		t.Errorf("repository a: calls %v, want %v first", calls, want)
	}
	if len(e.repos) != 2 {
		t.Errorf("%d repositories opened, want 2", len(e.repos))
	}
}

// TestRefreshFailureSkipsApps: a repository that cannot be refreshed is
// not asked to update its applications; the others carry on.
func TestRefreshFailureSkipsApps(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""), appTOML("world", "b.example", ""))
	a := e.agent(t, c, e.options())
	e.repo("a.example").refreshErr = errors.New("GET https://a.example/metadata/timestamp.json: 503 Service Unavailable")
	rep := a.RunOnce(context.Background())
	if rep.Apps[0].Result != ResultError || rep.Apps[1].Result != ResultUpToDate {
		t.Fatalf("report %+v", rep)
	}
	if _, calls := e.repo("a.example").stats(); len(calls) != 0 {
		t.Errorf("repository a was asked %v after a failed refresh", calls)
	}
	if rep.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1", rep.ExitCode())
	}
}

// TestOnceExitCodes: 0 up to date or updated or deferred, 2 a rollback,
// 1 any error (which wins over a rollback).
func TestOnceExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		results map[string]func() (Outcome, error)
		want    int
	}{
		{"all up to date", nil, 0},
		{"one updated", map[string]func() (Outcome, error){
			"hello": func() (Outcome, error) {
				return Outcome{From: "1.0.0", Version: "1.1.0", Offered: "1.1.0", Updated: true}, nil
			}}, 0},
		{"one rolled back", map[string]func() (Outcome, error){
			"hello": func() (Outcome, error) {
				return Outcome{From: "1.0.0", Version: "1.0.0", Offered: "1.1.0", RolledBack: true, Reason: "health check: exit status 1"},
					fmt.Errorf("update: %w", install.ErrRolledBack)
			}}, 2},
		{"rolled back and an error", map[string]func() (Outcome, error){
			"hello": func() (Outcome, error) {
				return Outcome{From: "1.0.0", Version: "1.0.0", Offered: "1.1.0", RolledBack: true}, install.ErrRolledBack
			},
			"world": func() (Outcome, error) { return Outcome{}, errors.New("download refused: sha256 mismatch") },
		}, 1},
		{"rollback failed", map[string]func() (Outcome, error){
			"world": func() (Outcome, error) {
				return Outcome{Offered: "1.1.0"}, &install.RollbackError{App: "world", Version: "1.1.0", Reason: "health", Err: errors.New("no old copy")}
			}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			c := e.config(t, "", appTOML("hello", "a.example", ""), appTOML("world", "a.example", ""))
			e.repo("a.example").update = func(ctx context.Context, tg Target, inst client.Installer) (Outcome, error) {
				if f := tc.results[tg.Name]; f != nil {
					return f()
				}
				return Outcome{Reason: "up to date"}, nil
			}
			a := e.agent(t, c, e.options())
			rep := a.RunOnce(context.Background())
			if got := rep.ExitCode(); got != tc.want {
				t.Errorf("exit code %d, want %d; report %+v", got, tc.want, rep)
			}
		})
	}
}

// TestLock: one agent per state directory; the second is told who holds it.
func TestLock(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""))
	a := e.agent(t, c, e.options())
	_, err := New(c, e.options())
	if !errors.Is(err, ErrBusy) || !errors.Is(err, client.ErrBusy) {
		t.Fatalf("second agent: %v, want ErrBusy", err)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the holder (%s)", err, want)
	}
	a.Close()
	b, err := New(c, e.options())
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	b.Close()
}

// TestInstallID: created once, 32 hex digits, kept across restarts; a
// malformed file is an error and is left alone.
func TestInstallID(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""))
	a := e.agent(t, c, e.options())
	id := a.InstallID()
	a.Close()
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("install id %q", id)
	}
	file := filepath.Join(c.StateDir, "install-id")
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("install-id: %v %v", fi.Mode(), err)
	}
	b := e.agent(t, c, e.options())
	if b.InstallID() != id {
		t.Errorf("install id changed on restart: %s then %s", id, b.InstallID())
	}
	b.Close()
	os.WriteFile(file, []byte("not-an-id\n"), 0o600)
	if _, err := New(c, e.options()); err == nil || !strings.Contains(err.Error(), "install id") {
		t.Fatalf("malformed install id: %v", err)
	}
	if got, _ := os.ReadFile(file); string(got) != "not-an-id\n" {
		t.Errorf("malformed install id replaced by %q", got)
	}
	if got := e.repo("a.example").targets; len(got) > 0 && got[0].InstallID != id {
		t.Errorf("the repository was asked with install id %q, want %q", got[0].InstallID, id)
	}
}

// TestTargetCarriesChannelAndID: the repository is asked with the
// application's channel, platform and this installation's ID.
func TestTargetCarriesChannelAndID(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", "channel = \"beta\"\nplatform = \"linux/arm64\"\ninstalled = \"1.0.0\""))
	a := e.agent(t, c, e.options())
	a.RunOnce(context.Background())
	got := e.repo("a.example").targets
	want := Target{Name: "hello", Platform: "linux/arm64", Channel: "beta", Installed: "1.0.0", InstallID: a.InstallID()}
	if len(got) != 1 || got[0] != want {
		t.Errorf("targets %+v, want %+v", got, want)
	}
}

// artifact writes a file and describes it as a signed artifact.
func artifact(t *testing.T, dir, app, version string, body []byte) install.Artifact {
	t.Helper()
	f := filepath.Join(dir, app+"-"+version)
	if err := os.WriteFile(f, body, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return install.Artifact{File: f, Length: int64(len(body)), Hashes: map[string][]byte{"sha256": sum[:]},
		App: app, Version: version, Kind: install.KindBinary, Name: app}
}

// TestShutdownWaitsForInstall: SIGTERM (ctx cancelled) while an install
// runs: the install finishes with the new version in place, Run returns
// nil only after it, and no further check starts.
func TestShutdownWaitsForInstall(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "", appTOML("hello", "a.example", ""), appTOML("world", "a.example", ""))
	os.WriteFile(filepath.Join(e.dir, "bin", "hello"), []byte("old"), 0o755)
	art := artifact(t, e.dir, "hello", "1.1.0", []byte("new version"))
	ctx, cancel := context.WithCancel(context.Background())
	installing := make(chan struct{})
	e.repo("a.example").update = func(uctx context.Context, tg Target, inst client.Installer) (Outcome, error) {
		if tg.Name != "hello" {
			t.Errorf("%s checked after the shutdown began", tg.Name)
			return Outcome{}, nil
		}
		close(installing)
		<-uctx.Done() // the signal arrives while the install runs
		res, err := inst.Apply(uctx, art)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{From: "", Version: res.Version, Offered: "1.1.0", Updated: true}, nil
	}
	a := e.agent(t, c, e.options())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-installing
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(e.dir, "bin", "hello")); string(b) != "new version" {
		t.Errorf("after the shutdown the target holds %q, want the new version", b)
	}
	s := a.Status()
	if s.Apps[0].Result != ResultUpdated || s.Apps[0].Installed != "1.1.0" {
		t.Errorf("status %+v", s.Apps[0])
	}
	if !slices.Contains(e.rec.Kinds(), event.AgentStopping) {
		t.Errorf("no %s event: %v", event.AgentStopping, e.rec.Kinds())
	}
}

// TestScheduleRun: the agent waits interval plus jitter between cycles,
// and backs off after failed ones.
func TestScheduleRun(t *testing.T) {
	e := newTestEnv(t)
	c := e.config(t, "interval = \"1m\"\njitter = \"10s\"\nbackoff_max = \"5m\"", appTOML("hello", "a.example", ""))
	opts := e.options()
	opts.Rand = func(n int64) int64 { return n / 2 }
	a := e.agent(t, c, opts)
	r := e.repo("a.example")
	fail := errors.New("503 Service Unavailable")
	r.script = []error{nil, fail, fail, fail, fail, nil}
	cycles := len(r.script)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var waits []time.Duration
	for range cycles {
		waits = append(waits, e.clock.next(t))
	}
	cancel()
	if err := <-done; err != nil { // Run returns while waiting: no fire needed
		t.Fatal(err)
	}
	// Interval plus half the jitter; after failures 1m, 2m, 4m, then the
	// 5m cap; a good cycle resets it.
	want := []time.Duration{65 * time.Second, 65 * time.Second, 125 * time.Second, 245 * time.Second, 305 * time.Second, 65 * time.Second}
	if !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if n, _ := r.stats(); n < 6 {
		t.Errorf("%d refreshes, want one per cycle", n)
	}
}
