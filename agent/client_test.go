package agent

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/event"
	"github.com/ferry-updates/ferry/repo"
	"github.com/ferry-updates/ferry/rollout"
	"github.com/ferry-updates/ferry/server"
)

// liveRepo is a real repository (package repo) served by package server
// over TLS on 127.0.0.1, which can be told to answer 503 to everything,
// and which counts the requests for each path.
type liveRepo struct {
	srv    *httptest.Server
	dir    string
	rp     *repo.Repo
	down   atomic.Bool
	mu     sync.Mutex
	counts map[string]int
}

func newLiveRepo(t *testing.T) *liveRepo {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	pass := []byte("agent test")
	if err := repo.Init(ctx, dir, repo.InitOptions{Passphrase: pass, InsecureScryptWorkFactor: 8}); err != nil {
		t.Fatal(err)
	}
	rp, err := repo.Open(dir, pass)
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.Repository(filepath.Join(dir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	l := &liveRepo{dir: dir, rp: rp, counts: map[string]int{}}
	l.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.counts[r.URL.Path]++
		l.mu.Unlock()
		if l.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *liveRepo) publish(t *testing.T, app, version string, body []byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), app)
	if err := os.WriteFile(src, body, 0o755); err != nil {
		t.Fatal(err)
	}
	rel := repo.Release{App: app, Version: version, Platform: runtime.GOOS + "/" + runtime.GOARCH, Kind: "binary"}
	if err := l.rp.Publish(context.Background(), rel, []string{src}); err != nil {
		t.Fatal(err)
	}
}

// appTOML returns an [[app]] of this repository, with its root and CA
// copied into dir.
func (l *liveRepo) appTOML(t *testing.T, dir, name string) string {
	t.Helper()
	root, err := os.ReadFile(filepath.Join(l.dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.srv.Certificate().Raw})
	if os.WriteFile(filepath.Join(dir, "live-root.json"), root, 0o644) != nil || os.WriteFile(filepath.Join(dir, "live-ca.pem"), ca, 0o644) != nil {
		t.Fatal("cannot write the root and CA")
	}
	return fmt.Sprintf(`
[[app]]
name = %q
urls = [%q]
trusted_root = "live-root.json"
ca = "live-ca.pem"
[app.install]
strategy = "binary"
target = "bin/%s"
`, name, l.srv.URL+"/", name)
}

// liveEnv is a testEnv whose agent uses the real client.
func liveEnv(t *testing.T) (*testEnv, Options) {
	e := newTestEnv(t)
	e.clock = newFakeClock(time.Now()) // the repository's expiry dates are real
	opts := e.options()
	opts.NewRepository = nil
	return e, opts
}

// TestAgentStale_R15: the agent's repository (real, over HTTPS) answers
// 503 from some moment on; once no refresh has succeeded for longer than
// max_staleness on the agent's clock, the application is stale in the
// status and a refresh.stale event is emitted; when the server is back,
// it is not stale any more.
func TestAgentStale_R15(t *testing.T) {
	l := newLiveRepo(t)
	l.publish(t, "hello", "1.0.0", []byte("#!/bin/sh\necho hello 1.0.0\n"))
	e, opts := liveEnv(t)
	c := e.config(t, "interval = \"1h\"\njitter = \"0s\"\nmax_staleness = \"3h\"", l.appTOML(t, e.dir, "hello"))
	a := e.agent(t, c, opts)
	if rep := a.RunOnce(context.Background()); rep.Apps[0].Result != ResultUpdated {
		t.Fatalf("first cycle: %+v", rep.Apps[0])
	}
	l.down.Store(true)
	for h := 1; h <= 4; h++ {
		e.clock.advance(time.Hour)
		rep := a.RunOnce(context.Background())
		st, err := ReadStatus(c.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		if wantStale := h > 3; st.Apps[0].Stale != wantStale {
			t.Errorf("%dh after the last good refresh: stale %v, want %v", h, st.Apps[0].Stale, wantStale)
		}
		if rep.Apps[0].Result != ResultError || !strings.Contains(st.Apps[0].LastError, "503") {
			t.Errorf("%dh: %+v; last error %q", h, rep.Apps[0], st.Apps[0].LastError)
		}
	}
	n := 0
	for _, ev := range e.rec.Events() {
		if ev.Kind == event.Stale && ev.App == "hello" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d refresh.stale events, want 1 (the 4th hour)", n)
	}
	l.down.Store(false)
	e.clock.advance(time.Hour)
	if rep := a.RunOnce(context.Background()); rep.Apps[0].Result != ResultUpToDate || a.Status().Apps[0].Stale {
		t.Errorf("server back: %+v, stale %v", rep.Apps[0], a.Status().Apps[0].Stale)
	}
}

// TestOneTimestampPerCycle: three applications of one repository cost
// one timestamp.json per cycle, and nothing else when nothing changed.
func TestOneTimestampPerCycle(t *testing.T) {
	l := newLiveRepo(t)
	for _, app := range []string{"hello", "world", "third"} {
		l.publish(t, app, "1.0.0", []byte("#!/bin/sh\necho "+app+"\n"))
	}
	e, opts := liveEnv(t)
	c := e.config(t, "", l.appTOML(t, e.dir, "hello"), l.appTOML(t, e.dir, "world"), l.appTOML(t, e.dir, "third"))
	a := e.agent(t, c, opts)
	if rep := a.RunOnce(context.Background()); !rep.OK() {
		t.Fatalf("first cycle: %+v", rep)
	}
	before := map[string]int{}
	l.mu.Lock()
	for k, v := range l.counts {
		before[k] = v
	}
	l.mu.Unlock()
	for range 3 {
		if rep := a.RunOnce(context.Background()); !rep.OK() {
			t.Fatalf("cycle: %+v", rep)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for path, n := range l.counts {
		switch d := n - before[path]; {
		case path == "/metadata/timestamp.json" && d != 3:
			t.Errorf("timestamp.json fetched %d times in 3 cycles, want 3", d)
		case path != "/metadata/timestamp.json" && !strings.HasSuffix(path, ".root.json") && d != 0:
			t.Errorf("%s fetched %d times in cycles where nothing changed", path, d)
		}
	}
}

// TestDeferredDownloadIsReused: outside the window the real client
// downloads and verifies the release and the agent installs nothing; in
// the window it installs it from the cache, without downloading it again.
func TestDeferredDownloadIsReused(t *testing.T) {
	l := newLiveRepo(t)
	body := []byte("#!/bin/sh\necho hello 1.0.0\n")
	l.publish(t, "hello", "1.0.0", body)
	e, opts := liveEnv(t)
	now := e.clock.Now().UTC()
	opens := now.Add(2 * time.Hour).Truncate(time.Hour)
	window := fmt.Sprintf("[app.window]\nhours = %q\ntime_zone = \"UTC\"\n", opens.Format("15:04")+"-"+opens.Add(time.Hour).Format("15:04"))
	c := e.config(t, "", l.appTOML(t, e.dir, "hello")+window)
	a := e.agent(t, c, opts)
	rep := a.RunOnce(context.Background())
	if r := rep.Apps[0]; r.Result != ResultDeferred || r.Offered != "1.0.0" || !r.Opens.Equal(opens) {
		t.Fatalf("outside the window: %+v, want deferred until %v", r, opens)
	}
	target := filepath.Join(e.dir, "bin", "hello")
	if _, err := os.Stat(target); err == nil {
		t.Fatal("installed outside the maintenance window")
	}
	downloads := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for p, k := range l.counts {
			if strings.HasPrefix(p, "/targets/") {
				n += k
			}
		}
		return n
	}
	if n := downloads(); n != 1 {
		t.Fatalf("%d target downloads outside the window, want 1", n)
	}
	e.clock.advance(opens.Sub(now) + time.Minute)
	rep = a.RunOnce(context.Background())
	if r := rep.Apps[0]; r.Result != ResultUpdated || r.Version != "1.0.0" {
		t.Fatalf("inside the window: %+v", r)
	}
	if b, _ := os.ReadFile(target); string(b) != string(body) {
		t.Errorf("target holds %q", b)
	}
	if n := downloads(); n != 1 {
		t.Errorf("%d target downloads in all, want 1: the install must use the verified download", n)
	}
}

// TestPullRevertsFromDisk_R49: a signed pull of the installed release moves
// the agent's application back to the previous release, which the
// installer still keeps on disk: nothing is downloaded for it.
func TestPullRevertsFromDisk_R49(t *testing.T) {
	l := newLiveRepo(t)
	v1, v2 := []byte("#!/bin/sh\necho hello 1.0.0\n"), []byte("#!/bin/sh\necho hello 1.1.0\n")
	l.publish(t, "hello", "1.0.0", v1)
	e, opts := liveEnv(t)
	c := e.config(t, "", l.appTOML(t, e.dir, "hello"))
	a := e.agent(t, c, opts)
	target := filepath.Join(e.dir, "bin", "hello")
	if rep := a.RunOnce(context.Background()); rep.Apps[0].Version != "1.0.0" {
		t.Fatalf("first cycle: %+v", rep.Apps[0])
	}
	l.publish(t, "hello", "1.1.0", v2)
	if rep := a.RunOnce(context.Background()); rep.Apps[0].Version != "1.1.0" {
		t.Fatalf("second cycle: %+v", rep.Apps[0])
	}
	before := l.targetFetches()
	if _, err := l.rp.Rollout(context.Background(), "hello", rollout.Action{Kind: rollout.Pull, Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	rep := a.RunOnce(context.Background())
	if r := rep.Apps[0]; r.Result != ResultUpdated || r.Version != "1.0.0" || r.From != "1.1.0" {
		t.Fatalf("after the pull: %+v, want 1.1.0 → 1.0.0", r)
	}
	if b, _ := os.ReadFile(target); string(b) != string(v1) {
		t.Errorf("target holds %q after the pull", b)
	}
	if n := l.targetFetches() - before; n != 0 {
		t.Errorf("%d target downloads for the pull, want 0 (the previous version is on disk)", n)
	}
}

func (l *liveRepo) targetFetches() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for p, k := range l.counts {
		if strings.HasPrefix(p, "/targets/") {
			n += k
		}
	}
	return n
}

// TestLostStateNoDowngrade_R52: the agent installed 1.5.0 over the
// configured "installed = 1.0.0"; 1.5.0 is halted since (those that run it
// keep it) and 1.4.0 is the newest release offered to others. When the
// installer's state and its copy are lost, the agent must not take its
// static config version for the installed one again: the live executable
// is the signed 1.5.0, and nothing may move it to 1.4.0 without a signed
// pull (R49).
func TestLostStateNoDowngrade_R52(t *testing.T) {
	l := newLiveRepo(t)
	for _, v := range []string{"1.0.0", "1.4.0", "1.5.0"} {
		l.publish(t, "hello", v, []byte("#!/bin/sh\necho hello "+v+"\n"))
	}
	e, opts := liveEnv(t)
	app := strings.Replace(l.appTOML(t, e.dir, "hello"), "[app.install]", "installed = \"1.0.0\"\n[app.install]", 1)
	c := e.config(t, "", app)
	a := e.agent(t, c, opts)
	if r := a.RunOnce(context.Background()).Apps[0]; r.Result != ResultUpdated || r.Version != "1.5.0" {
		t.Fatalf("first cycle: %+v, want 1.0.0 → 1.5.0", r)
	}
	if _, err := l.rp.Rollout(context.Background(), "hello", rollout.Action{Kind: rollout.Halt, Version: "1.5.0"}); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(c.StateDir, "apps", "hello", "state.json")
	for _, f := range []string{state, state + ".copy"} {
		if err := os.WriteFile(f, []byte("{corrupt"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := a.RunOnce(context.Background()).Apps[0]
	target := filepath.Join(e.dir, "bin", "hello")
	if b, _ := os.ReadFile(target); string(b) != "#!/bin/sh\necho hello 1.5.0\n" || r.Result == ResultUpdated {
		t.Fatalf("after the state was lost: %+v, target holds %q; want 1.5.0 kept (an error or up to date)", r, b)
	}
	t.Logf("after the state was lost: %s: %s", r.Result, r.Detail)
}
