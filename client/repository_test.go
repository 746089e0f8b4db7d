package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
)

// tenApps publishes app0..app9, each at 1.0.0 and 1.1.0.
func tenApps(t *testing.T) (*repoSim, []string) {
	var apps []string
	for i := range 10 {
		apps = append(apps, fmt.Sprintf("app%d", i))
	}
	s := newRepoSim(t, apps...)
	for _, app := range apps {
		s.add(app, "1.0.0", "linux/amd64", map[string][]byte{app: []byte(app + " 1.0.0")}, false)
		s.add(app, "1.1.0", "linux/amd64", map[string][]byte{app: []byte(app + " 1.1.0")}, false)
	}
	s.r.Publish()
	return s, apps
}

// Ten applications of one repository, checked and updated from ten
// goroutines at once after one Refresh: each gets its own release, the
// metadata is refreshed once (one timestamp.json), and the checks fetch
// nothing but each application's delegated role, once. Run with -race.
func TestRepositoryConcurrentApps(t *testing.T) {
	s, apps := tenApps(t)
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	ctx := context.Background()
	if changed, err := r.Refresh(ctx); err != nil || !changed {
		t.Fatalf("first refresh: changed %v, %v", changed, err)
	}
	after := s.log()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(apps))
	insts := make([]*fakeInstaller, len(apps))
	for i, app := range apps {
		insts[i] = &fakeInstaller{installed: "1.0.0"}
		wg.Add(2)
		go func() {
			defer wg.Done()
			o, err := r.Check(ctx, client.App{Name: app, Platform: "linux/amd64", Installed: "1.0.0"})
			if err == nil && (o.Release == nil || o.Release.App != app || o.Release.Version != "1.1.0") {
				err = fmt.Errorf("check %s offers %+v", app, o)
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			out, err := r.Update(ctx, client.App{Name: app, Platform: "linux/amd64"}, insts[i])
			if err == nil && (!out.Updated() || out.Release.Version != "1.1.0" || out.From != "1.0.0") {
				err = fmt.Errorf("update %s: %+v", app, out)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, f := range insts {
		if len(f.applied) != 1 || f.applied[0].App != apps[i] {
			t.Errorf("%s: applied %+v", apps[i], f.applied)
		}
	}
	got := s.log()
	for p, n := range got {
		n -= after[p]
		switch {
		case n == 0:
		case strings.HasPrefix(p, "/targets/") && n == 1:
		case strings.HasPrefix(p, "/metadata/") && strings.Contains(p, ".app") && n == 1:
		case p == "/metadata/1._rollout.json" && n == 1:
		default:
			t.Errorf("after the refresh: %s requested %d times", p, n)
		}
	}
	if n := got["/metadata/timestamp.json"]; n != 1 {
		t.Errorf("timestamp.json fetched %d times, want once", n)
	}
	if n := count(rec, event.Refreshed); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// The Goal "an agent with 10 applications from one repository fetches
// only timestamp.json per cycle when nothing changed": a cycle is one
// Refresh and a Check of each application; after the first, each cycle
// fetches timestamp.json once, and probes the next root once (TUF 5.3
// requires the probe; it answers 404), and nothing else.
func TestIdleCycleFetchesOnlyTimestamp(t *testing.T) {
	s, apps := tenApps(t)
	r := s.repo(t, nil)
	ctx := context.Background()
	cycle := func() bool {
		changed, err := r.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, app := range apps {
			if v := offered(t, r, client.App{Name: app, Platform: "linux/amd64", Installed: "1.0.0"}); v == "" {
				t.Fatalf("%s offered nothing", app)
			}
		}
		return changed
	}
	cycle()
	for i := range 3 {
		s.reset()
		if cycle() {
			t.Errorf("cycle %d: refresh reports a change", i)
		}
		want := map[string]int{"/metadata/timestamp.json": 1, "/metadata/2.root.json": 1}
		if got := s.log(); !equalCounts(got, want) {
			t.Errorf("cycle %d fetched %v, want %v", i, got, want)
		}
	}
	// A change is seen at the next cycle.
	s.publish("app3", "1.2.0", "app3 1.2.0")
	s.reset()
	if !cycle() {
		t.Error("refresh after a publish reports no change")
	}
	if v := offered(t, r, client.App{Name: "app3", Platform: "linux/amd64", Installed: "1.0.0"}); v != "1.2.0" {
		t.Errorf("after the publish app3 is offered %q", v)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Check before any Refresh refreshes once; a second Check does not.
func TestCheckRefreshesOnlyFirst(t *testing.T) {
	s := newRepoSim(t, "hello")
	s.publish("hello", "1.0.0", "hello 1.0.0")
	rec := &event.Recorder{}
	r := s.repo(t, rec)
	for range 2 {
		if v := offered(t, r, hello("", "")); v != "1.0.0" {
			t.Fatalf("offered %q", v)
		}
	}
	if n := s.log()["/metadata/timestamp.json"]; n != 1 {
		t.Errorf("timestamp.json fetched %d times, want 1", n)
	}
	kinds := rec.Kinds()
	if count(rec, event.CheckStarted) != 2 || count(rec, event.CheckOffered) != 2 || count(rec, event.Refreshed) != 1 {
		t.Errorf("events %v", kinds)
	}
}

// The install ID is created once per state directory (32 hex digits, mode
// 0600), read back the same, and a malformed one is an error, not
// replaced.
func TestInstallID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	id, err := client.InstallID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("install id %q", id)
	}
	again, err := client.InstallID(dir)
	if err != nil || again != id {
		t.Fatalf("second read %q, %v; want %q", again, err, id)
	}
	fi, err := os.Stat(filepath.Join(dir, "install-id"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("install-id: %v %v", fi, err)
	}
	other, _ := client.InstallID(filepath.Join(t.TempDir(), "other"))
	if other == id {
		t.Fatal("two state directories share an install id")
	}
	bad := []byte("not-an-id\n")
	os.WriteFile(filepath.Join(dir, "install-id"), bad, 0o600)
	if _, err := client.InstallID(dir); err == nil || !strings.Contains(err.Error(), "install id") {
		t.Fatalf("malformed install id: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "install-id")); string(b) != string(bad) {
		t.Fatal("a malformed install id was replaced")
	}
	r := newRepoSim(t, "hello")
	r.publish("hello", "1.0.0", "x")
	_, err = r.repo(t, nil).Check(context.Background(), client.App{Name: "hello", InstallID: "ABC"})
	if err == nil {
		t.Fatal("check accepted a malformed App.InstallID")
	}
	if !strings.Contains(err.Error(), "InstallID") {
		t.Fatalf("error %v does not name InstallID", err)
	}
}
