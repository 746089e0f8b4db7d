package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/client"
	"github.com/ferry-updates/ferry/event"
)

// fakeClock is the agent's clock in tests: After hands the requested wait
// to the test, which fires it when it wants.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waits: make(chan fakeWait, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeWait{d, ch}
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// next waits for the agent to ask for a wait, moves the clock by it and
// fires it; it returns the wait.
func (c *fakeClock) next(t *testing.T) time.Duration {
	t.Helper()
	select {
	case w := <-c.waits:
		c.advance(w.d)
		w.fire <- c.Now()
		return w.d
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not schedule its next cycle")
		return 0
	}
}

// fakeRepo is a Repository whose answers the test decides.
type fakeRepo struct {
	mu         sync.Mutex
	refreshes  int
	refreshErr error
	script     []error  // if set, the errors of the next refreshes, in order (then refreshErr)
	calls      []string // "update APP" or "download APP", in order
	targets    []Target
	update     func(ctx context.Context, t Target, inst client.Installer) (Outcome, error)
}

func (r *fakeRepo) Refresh(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshes++
	if len(r.script) > 0 {
		err := r.script[0]
		r.script = r.script[1:]
		return false, err
	}
	return false, r.refreshErr
}

func (r *fakeRepo) Update(ctx context.Context, t Target, inst client.Installer) (Outcome, error) {
	return r.call(ctx, "update", t, inst)
}

func (r *fakeRepo) Download(ctx context.Context, t Target, inst client.Installer) (Outcome, error) {
	return r.call(ctx, "download", t, inst)
}

func (r *fakeRepo) call(ctx context.Context, what string, t Target, inst client.Installer) (Outcome, error) {
	r.mu.Lock()
	r.calls = append(r.calls, what+" "+t.Name)
	r.targets = append(r.targets, t)
	f := r.update
	r.mu.Unlock()
	if f == nil {
		return Outcome{From: t.Installed, Version: t.Installed, Reason: "up to date"}, nil
	}
	return f(ctx, t, inst)
}

func (r *fakeRepo) stats() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshes, append([]string(nil), r.calls...)
}

// testEnv is a state directory, a trusted root file and a config.
type testEnv struct {
	dir   string
	repos map[string]*fakeRepo // by first URL
	clock *fakeClock
	rec   *event.Recorder
}

func newTestEnv(t *testing.T) *testEnv {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &testEnv{dir: dir, repos: map[string]*fakeRepo{},
		clock: newFakeClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)), rec: &event.Recorder{}}
}

// app returns one [[app]] in repository repo (a host name), binary
// strategy with a target in the test's directory.
func appTOML(name, repo, extra string) string {
	return fmt.Sprintf(`
[[app]]
name = %q
urls = ["https://%s/"]
trusted_root = "root.json"
%s
[app.install]
strategy = "binary"
target = "bin/%s"
`, name, repo, extra, name)
}

func (e *testEnv) config(t *testing.T, top string, apps ...string) *Config {
	t.Helper()
	src := "state_dir = \"state\"\n" + top + "\n" + strings.Join(apps, "")
	c, err := Parse(filepath.Join(e.dir, "agent.toml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *testEnv) repo(host string) *fakeRepo {
	if e.repos[host] == nil {
		e.repos[host] = &fakeRepo{}
	}
	return e.repos[host]
}

func (e *testEnv) options() Options {
	return Options{
		Events: e.rec,
		Clock:  e.clock,
		Rand:   func(int64) int64 { return 0 },
		NewRepository: func(rc RepositoryConfig) (Repository, error) {
			host := strings.TrimSuffix(strings.TrimPrefix(rc.URLs[0], "https://"), "/")
			return e.repo(host), nil
		},
		Reexec: func(string) error { return fmt.Errorf("no re-exec in this test") },
	}
}

func (e *testEnv) agent(t *testing.T, c *Config, opts Options) *Agent {
	t.Helper()
	a, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}
