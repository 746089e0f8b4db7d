package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/rollout"
)

// fleetSite is a repository of two applications served by a real ferry
// serve over HTTPS on 127.0.0.1, with a publisher token for its admin API.
type fleetSite struct {
	*ferryCmd
	srv      *serveProc
	tokens   map[string]string // app -> its publisher token file, for the admin API
	rollouts map[string]string // app -> its rollout token file (ferry token create --rollout)
	apps     []string
}

var platform = runtime.GOOS + "/" + runtime.GOARCH

// program is the content of APP VERSION as published: a shell script that
// prints "APP VERSION".
func program(app, version string) string {
	return fmt.Sprintf("#!/bin/sh\necho '%s %s'\n", app, version)
}

func newFleetSite(t *testing.T, apps ...string) *fleetSite {
	t.Helper()
	f := newFerryCmd(t)
	f.run("init", "repo")
	s := &fleetSite{ferryCmd: f, apps: apps, tokens: map[string]string{}, rollouts: map[string]string{}}
	for _, app := range apps {
		s.publishLocal(app, "1.0.0")
		tok := f.run("token", "create", "--repo", "repo", "--app", app)
		s.tokens[app] = f.write(app+".token", strings.TrimSpace(tok)+"\n", 0o600)
		tok = f.run("token", "create", "--repo", "repo", "--rollout", "--app", app)
		s.rollouts[app] = f.write(app+"-rollout.token", strings.TrimSpace(tok)+"\n", 0o600)
	}
	s.srv = f.serve("repo")
	return s
}

// publishLocal publishes app at version into the repository directory
// (ferry serve serves what is on disk), extra flags appended.
func (s *fleetSite) publishLocal(app, version string, extra ...string) {
	s.t.Helper()
	src := s.write(filepath.Join("dist", app, version, app), program(app, version), 0o755)
	args := append([]string{"release", "publish", "--repo", "repo", "--app", app, "--version", version, "--platform", platform}, extra...)
	s.run(append(args, src)...)
}

// rollout runs ferry rollout ACTION against the server's admin API.
func (s *fleetSite) rollout(action, app, version string, extra ...string) string {
	s.t.Helper()
	args := append([]string{"rollout", action, "--server", s.srv.url, "--ca", s.srv.ca, "--token-file", s.rollouts[app],
		"--app", app, "--version", version}, extra...)
	return s.run(args...)
}

// salt reads the salt of app's version from ferry rollout status --json.
func (s *fleetSite) salt(app, version string) string {
	s.t.Helper()
	out := s.run("rollout", "status", "--server", s.srv.url, "--ca", s.srv.ca, "--token-file", s.tokens[app], "--app", app, "--json")
	var st struct {
		Releases []struct {
			Version string `json:"version"`
			Salt    string `json:"salt"`
		} `json:"releases"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		s.t.Fatalf("ferry rollout status --json: %v\n%s", err, out)
	}
	for _, r := range st.Releases {
		if r.Version == version && len(r.Salt) == 32 {
			return r.Salt
		}
	}
	s.t.Fatalf("ferry rollout status --json names no salt for %s %s:\n%s", app, version, out)
	return ""
}

// update runs ferry update --out from a new state directory that holds
// install ID id, and returns its JSON result's status and version.
func (s *fleetSite) update(id, app, current string) string {
	s.t.Helper()
	state := s.path("update-" + id)
	s.write(filepath.Join("update-"+id, "install-id"), id+"\n", 0o600)
	if err := os.Chmod(state, 0o700); err != nil {
		s.t.Fatal(err)
	}
	out := s.run("update", "--repo", s.srv.url, "--root", s.path("repo", "root.json"), "--ca", s.srv.ca,
		"--app", app, "--current", current, "--out", s.path("update-"+id, "out"), "--state-dir", state, "--json")
	var res struct{ Status, Version string }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		s.t.Fatalf("ferry update --json: %v\n%s", err, out)
	}
	return res.Status + " " + res.Version
}

// machine is one machine: a ferry agent with its own state directory (so
// its own install ID) managing every application of the site as an
// executable under its bin directory.
type machine struct {
	s      *fleetSite
	name   string
	config string
}

func (s *fleetSite) agent(name string, health string) *machine {
	s.t.Helper()
	a := &machine{s: s, name: name}
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = %q\ninterval = \"10s\"\n", s.path(name, "state"))
	for _, app := range s.apps {
		fmt.Fprintf(&b, "\n[[app]]\nname = %q\nurls = [%q]\ntrusted_root = %q\nca = %q\n",
			app, s.srv.url, s.path("repo", "root.json"), s.srv.ca)
		fmt.Fprintf(&b, "[app.install]\nstrategy = \"binary\"\ntarget = %q\n", s.path(name, "bin", app))
		if health != "" {
			fmt.Fprintf(&b, "[app.health]\ncmd = [\"/bin/sh\", %q]\ntimeout = \"60s\"\n", health)
		}
	}
	if err := os.MkdirAll(s.path(name, "bin"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	a.config = s.write(name+".toml", b.String(), 0o644)
	return a
}

// once runs ferry agent --once and fails the test if it fails.
func (a *machine) once() string {
	a.s.t.Helper()
	return a.s.run("agent", "--config", a.config, "--once")
}

// installID is the agent's install ID, from its state directory.
func (a *machine) installID() string {
	a.s.t.Helper()
	b, err := os.ReadFile(a.s.path(a.name, "state", "install-id"))
	if err != nil {
		a.s.t.Fatalf("agent %s: %v", a.name, err)
	}
	id := strings.TrimSpace(string(b))
	if len(id) != 32 {
		a.s.t.Fatalf("agent %s: install ID %q is not 32 hex digits", a.name, id)
	}
	return id
}

// agentStatus is what ferry agent status --json says (the members the
// tests read).
type agentStatus struct {
	InstallID string      `json:"install_id"`
	Apps      []appStatus `json:"apps"`
}

type appStatus struct {
	App       string `json:"app"`
	Installed string `json:"installed"`
	Result    string `json:"result"`
	Cohort    *struct {
		Version     string `json:"version"`
		Bucket      int    `json:"bucket"`
		BasisPoints int    `json:"basis_points"`
	} `json:"cohort"`
}

// app is the status of one application (the zero value if absent).
func (st agentStatus) app(name string) appStatus {
	for _, a := range st.Apps {
		if a.App == name {
			return a
		}
	}
	return appStatus{}
}

// status runs ferry agent status --json for the machine's agent and checks
// that it names the machine's install ID.
func (a *machine) status() agentStatus {
	a.s.t.Helper()
	out := a.s.run("agent", "status", "--config", a.config, "--json")
	var st agentStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		a.s.t.Fatalf("ferry agent status --json: %v\n%s", err, out)
	}
	if st.InstallID != a.installID() {
		a.s.t.Fatalf("ferry agent status says install ID %q, the state directory %q", st.InstallID, a.installID())
	}
	return st
}

// runs reports the version app's executable on agent a prints.
func (a *machine) runs(app string) string {
	a.s.t.Helper()
	b, err := os.ReadFile(a.s.path(a.name, "bin", app))
	if err != nil {
		return "none"
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if string(b) == program(app, v) {
			return v
		}
	}
	return fmt.Sprintf("unknown (%q)", b)
}

// expect checks the version of every application on every agent.
func expect(t *testing.T, step string, want map[*machine]map[string]string) {
	t.Helper()
	for a, apps := range want {
		for app, v := range apps {
			if got := a.runs(app); got != v {
				t.Errorf("%s: agent %s runs %s %s, want %s", step, a.name, app, got, v)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// between returns a share, in basis points, that reaches the installation
// with bucket in and not the one with bucket out (in < out), and the
// --percent argument that says it.
func between(t *testing.T, in, out int) (int, string) {
	t.Helper()
	if in >= out {
		t.Fatalf("no share reaches bucket %d and not bucket %d", in, out)
	}
	bp := out // in < bp <= out: in is in, out is not
	p := strings.TrimSuffix(rollout.Percent(bp), "%")
	if got, err := rollout.ParsePercent(p); err != nil || got != bp {
		t.Fatalf("--percent %s is %d basis points (%v), want %d", p, got, err, bp)
	}
	return bp, p
}

// TestAgentsStagedRollout: two agents (two state directories, so two
// install IDs) each manage two applications of one repository served by
// ferry serve over HTTPS. The staged rollout of each application's 1.1.0,
// at a share computed from the two install IDs and the release's signed
// salt, reaches one agent and not the other (and ferry update with the
// same install ID gets the same answer). At 100% both agents take both. A signed pull of
// hello 1.1.0 takes both agents back to hello 1.0.0 and leaves world alone.
func TestAgentsStagedRollout(t *testing.T) {
	t.Parallel()
	s := newFleetSite(t, "hello", "world")
	a, b := s.agent("a", ""), s.agent("b", "")
	a.once()
	b.once()
	all := func(v string) map[string]string { return map[string]string{"hello": v, "world": v} }
	expect(t, "first run", map[*machine]map[string]string{a: all("1.0.0"), b: all("1.0.0")})
	idA, idB := a.installID(), b.installID()
	if idA == idB {
		t.Fatalf("agents a and b share install ID %s", idA)
	}

	// 1.1.0 of both, published at 0%: nobody is offered it.
	for _, app := range s.apps {
		s.publishLocal(app, "1.1.0", "--percent", "0")
	}
	a.once()
	b.once()
	expect(t, "at 0%", map[*machine]map[string]string{a: all("1.0.0"), b: all("1.0.0")})

	// Each release reaches the agent with the lower bucket for its salt,
	// and not the other.
	reached := map[string]*machine{}
	staged := map[*machine]map[string]string{a: all("1.0.0"), b: all("1.0.0")}
	for _, app := range s.apps {
		salt := s.salt(app, "1.1.0")
		in, out := a, b
		if rollout.Bucket(b.installID(), salt) < rollout.Bucket(a.installID(), salt) {
			in, out = b, a
		}
		bin, bout := rollout.Bucket(in.installID(), salt), rollout.Bucket(out.installID(), salt)
		bp, p := between(t, bin, bout)
		t.Logf("%s 1.1.0: salt %s, buckets %s=%d %s=%d, share %d bp (--percent %s)", app, salt, in.name, bin, out.name, bout, bp, p)
		s.rollout("start", app, "1.1.0", "--percent", p)
		reached[app] = in
		staged[in][app] = "1.1.0"
	}
	// ferry update from a state directory holding the same install ID
	// obeys the same decision.
	for _, m := range []*machine{a, b} {
		want := "up-to-date 1.0.0"
		if reached["hello"] == m {
			want = "updated 1.1.0"
		}
		if got := s.update(m.installID(), "hello", "1.0.0"); got != want {
			t.Errorf("ferry update with agent %s's install ID: %s, want %s", m.name, got, want)
		}
	}
	a.once()
	b.once()
	expect(t, "staged", staged)
	// ferry agent status shows the reached agent's cohort: its bucket for
	// the release, below the share.
	for _, app := range s.apps {
		in := reached[app]
		want := rollout.Bucket(in.installID(), s.salt(app, "1.1.0"))
		if c := in.status().app(app).Cohort; c == nil || c.Version != "1.1.0" || c.Bucket != want || c.Bucket >= c.BasisPoints {
			t.Errorf("ferry agent status of agent %s for %s: cohort %+v, want 1.1.0 with bucket %d inside the share", in.name, app, c, want)
		}
	}

	// 100%: both agents take both.
	for _, app := range s.apps {
		s.rollout("start", app, "1.1.0", "--percent", "100")
	}
	a.once()
	b.once()
	expect(t, "at 100%", map[*machine]map[string]string{a: all("1.1.0"), b: all("1.1.0")})

	// A signed pull of hello 1.1.0 takes both back to hello 1.0.0.
	s.rollout("pull", "hello", "1.1.0")
	a.once()
	b.once()
	back := map[string]string{"hello": "1.0.0", "world": "1.1.0"}
	expect(t, "after the pull", map[*machine]map[string]string{a: back, b: back})
}

// TestAgentSIGTERMDuringInstall: SIGTERM reaches the agent while the
// health check of a new version is running (blocked on a FIFO the test
// holds). The agent does not interrupt the install: it waits for the health
// check, then exits with status 0. A health check that passes leaves the
// new version installed; one that fails leaves the old one. Either way the
// executable, the install state and ferry agent status agree, and the next
// run of the agent finds nothing to recover.
func TestAgentSIGTERMDuringInstall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer, want string
	}{
		{"health passes", "pass", "1.1.0"},
		{"health fails", "fail", "1.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); sigtermDuringInstall(t, tc.answer, tc.want) })
	}
}

// healthScript blocks a health check of version 1.1.0 until the test
// answers: it writes "started" into the FIFO started (which blocks until
// the test opens it), then reads the answer from the FIFO answer and
// passes only on "pass". Other versions pass at once.
const healthScript = `#!/bin/sh
dir=$(dirname "$0")
if [ "$FERRY_VERSION" = 1.1.0 ]; then
  echo started > "$dir/started"
  read answer < "$dir/answer"
  [ "$answer" = pass ] || { echo "health check told to fail" >&2; exit 1; }
fi
exit 0
`

func sigtermDuringInstall(t *testing.T, answer, want string) {
	s := newFleetSite(t, "hello")
	health := s.write("health/check.sh", healthScript, 0o755)
	for _, fifo := range []string{"started", "answer"} {
		if err := mkfifo(s.path("health", fifo)); err != nil {
			t.Fatal(err)
		}
	}
	a := s.agent("a", health)
	a.once()
	expect(t, "first run", map[*machine]map[string]string{a: {"hello": "1.0.0"}})

	s.publishLocal("hello", "1.1.0")
	// The agent's first check installs 1.1.0 and starts its health check,
	// which opens the FIFO.
	p := s.start("agent", "--config", a.config)
	started := make(chan error, 1)
	go func() {
		b, err := os.ReadFile(s.path("health", "started"))
		if err == nil && strings.TrimSpace(string(b)) != "started" {
			err = fmt.Errorf("read %q from the started FIFO", b)
		}
		started <- err
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-p.done:
		t.Fatalf("agent exited (%v) before the health check started; stderr:\n%s", p.err, p.stderr)
	case <-time.After(45 * time.Second):
		t.Fatalf("the health check of 1.1.0 did not start within 45 s; agent stderr:\n%s", p.stderr)
	}
	if err := p.cmd.Process.Signal(sigterm); err != nil {
		t.Fatal(err)
	}
	// The install is still running: the health check waits for the
	// answer. The FIFO is opened read-write, which does not block, and
	// kept open until the agent has exited, so the answer is there when
	// the health check reads it and the test does not hang if nothing does.
	fifo, err := os.OpenFile(s.path("health", "answer"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	if _, err := fifo.WriteString(answer + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(60 * time.Second); err != nil {
		t.Fatalf("agent after SIGTERM: %v, want exit status 0; stderr:\n%s", err, p.stderr)
	}
	expect(t, "after SIGTERM", map[*machine]map[string]string{a: {"hello": want}})
	if st := a.status(); len(st.Apps) != 1 || st.Apps[0].Installed != want {
		t.Errorf("ferry agent status after SIGTERM: %+v, want hello %s installed", st.Apps, want)
	}
	// The next run has nothing to finish or roll back, and keeps the version
	// (a 1.1.0 that failed is marked bad and not retried).
	out := a.once()
	if strings.Contains(out, "recovered") {
		t.Errorf("the run after SIGTERM recovered an install:\n%s", out)
	}
	expect(t, "next run", map[*machine]map[string]string{a: {"hello": want}})
}
