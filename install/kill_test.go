//go:build unix

package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ferry-updates/ferry/internal/faultfs"
)

// The KILL tests re-execute the test binary as a helper that installs 2.0.0
// over 1.0.0 and SIGKILLs itself at a fail-point; the test then recovers and
// checks that 1.0.0 or 2.0.0 runs, never neither, and that the state agrees.

const helperEnv = "FERRY_INSTALL_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "kill":
		os.Exit(killHelper())
	case "busy":
		os.Exit(busyHelper())
	case "selfupdate":
		os.Exit(selfUpdateHelper())
	}
	os.Exit(2)
}

type installer interface {
	Apply(context.Context, Artifact) (Result, error)
	Recover(context.Context) (Result, error)
	State(context.Context) (State, error)
}

// killRig builds the installer for kind in dir, identically in the test
// and in the helper.
func killRig(dir, kind string) (installer, *hooks, string) {
	if kind == KindBinary {
		b := &Binary{App: "app", Target: filepath.Join(dir, "bin", "app"), StateDir: filepath.Join(dir, "state")}
		b.healthFn = scriptHealthy(b.Target)
		return b, &b.hooks, b.Target
	}
	s := &Slots{Root: filepath.Join(dir, "srv"), App: "app"}
	live := filepath.Join(s.Current(), "app")
	s.healthFn = scriptHealthy(live)
	return s, &s.hooks, live
}

// scriptHealthy checks the live script without running it: the machine
// this runs on is shared, and process starts are its most expensive part.
// Real health commands are exercised by TestHealthFailuresRollBack_R44.
func scriptHealthy(live string) func(context.Context, []string) error {
	return func(context.Context, []string) error {
		b, err := os.ReadFile(live)
		if err != nil || !strings.Contains(string(b), "exit 0") {
			return fmt.Errorf("unhealthy: %v", err)
		}
		return nil
	}
}

func killArtifact(t *testing.T, dir, kind, v string, code int) Artifact {
	body := script(v, code)
	if kind != KindBinary {
		body = archive(t, kind, []entry{{name: "app", body: string(body), mode: 0o755}, {name: "doc/README", body: v}})
	}
	return artifact(t, dir, "app", v, kind, body)
}

// killFS SIGKILLs the process at its nth mutating operation.
type killFS struct {
	faultfs.OS
	n, at int64
}

func (k *killFS) op() {
	if atomic.AddInt64(&k.n, 1) == k.at {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

func (k *killFS) Create(name string, perm fs.FileMode) (faultfs.File, error) {
	k.op()
	f, err := k.OS.Create(name, perm)
	if err != nil {
		return nil, err
	}
	return killFile{f, k}, nil
}
func (k *killFS) Mkdir(n string, p fs.FileMode) error    { k.op(); return k.OS.Mkdir(n, p) }
func (k *killFS) MkdirAll(n string, p fs.FileMode) error { k.op(); return k.OS.MkdirAll(n, p) }
func (k *killFS) Rename(a, b string) error               { k.op(); return k.OS.Rename(a, b) }
func (k *killFS) Link(a, b string) error                 { k.op(); return k.OS.Link(a, b) }
func (k *killFS) Symlink(a, b string) error              { k.op(); return k.OS.Symlink(a, b) }
func (k *killFS) Remove(n string) error                  { k.op(); return k.OS.Remove(n) }
func (k *killFS) RemoveAll(n string) error               { k.op(); return k.OS.RemoveAll(n) }
func (k *killFS) SyncDir(n string) error                 { k.op(); return k.OS.SyncDir(n) }
func (k *killFS) WriteFile(n string, b []byte, p fs.FileMode) error {
	k.op()
	return k.OS.WriteFile(n, b, p)
}
func (k *killFS) OpenTree(dir string) (faultfs.Tree, error) {
	t, err := k.OS.OpenTree(dir)
	return killTree{t, k}, err
}

type killTree struct {
	faultfs.Tree
	k *killFS
}

func (t killTree) Mkdir(n string, p fs.FileMode) error { t.k.op(); return t.Tree.Mkdir(n, p) }
func (t killTree) SyncDir(n string) error              { t.k.op(); return t.Tree.SyncDir(n) }
func (t killTree) Create(n string, p fs.FileMode) (faultfs.File, error) {
	t.k.op()
	f, err := t.Tree.Create(n, p)
	if err != nil {
		return nil, err
	}
	return killFile{f, t.k}, nil
}

type killFile struct {
	faultfs.File
	k *killFS
}

func (f killFile) Sync() error { f.k.op(); return f.File.Sync() }

// intactScript returns the version of the executable script at p if it is
// byte for byte one of the installed versions and executable.
func intactScript(p string) string {
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm()&0o100 == 0 {
		return "<not executable>"
	}
	b, _ := os.ReadFile(p)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		for code := range 2 {
			if string(b) == string(script(v, code)) {
				return v
			}
		}
	}
	return fmt.Sprintf("<unknown content %q>", b)
}

// killHelper runs in the child: FERRY_KILL_AT is "fp:NAME" or "op:N".
func killHelper() int {
	dir, kind := os.Getenv("FERRY_DIR"), os.Getenv("FERRY_KIND")
	inst, h, _ := killRig(dir, kind)
	at := os.Getenv("FERRY_KILL_AT")
	if n, ok := strings.CutPrefix(at, "op:"); ok {
		k, _ := strconv.ParseInt(n, 10, 64)
		h.fs = &killFS{at: k}
	} else {
		name := strings.TrimPrefix(at, "fp:")
		h.failpoint = func(fp string) {
			if fp == name {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
	var a Artifact
	b, _ := os.ReadFile(filepath.Join(dir, "artifact.json"))
	if err := json.Unmarshal(b, &a); err != nil {
		return 3
	}
	do := inst.Apply
	if os.Getenv("FERRY_OP") == "revert" {
		do = inst.(Reverter).Revert
	}
	if _, err := do(context.Background(), a); err != nil && !errors.Is(err, ErrRolledBack) {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	return 0
}

// killOnce prepares 1.0.0, runs the helper to install 2.0.0 with a kill at
// at, recovers, and checks the invariants. It reports whether the helper
// was killed.
//
// With adopt, 1.0.0 is put in place by other means (os.WriteFile, as a
// package manager would), so the install of 2.0.0 is a first self-update.
func killOnce(t *testing.T, base, kind, at string, healthy, adopt bool) (killed bool, err error) {
	dir, err := os.MkdirTemp(base, "k")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	inst, _, live := killRig(dir, kind)
	if adopt {
		if err := os.WriteFile(live, script("1.0.0", 0), 0o755); err != nil {
			return false, err
		}
	} else if _, err := inst.Apply(context.Background(), killArtifact(t, dir, kind, "1.0.0", 0)); err != nil {
		return false, err
	}
	code := 0
	if !healthy {
		code = 1
	}
	a, _ := json.Marshal(killArtifact(t, dir, kind, "2.0.0", code))
	os.WriteFile(filepath.Join(dir, "artifact.json"), a, 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=kill", "FERRY_DIR="+dir, "FERRY_KIND="+kind, "FERRY_KILL_AT="+at)
	cmd.Stderr = io.Discard
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			return false, fmt.Errorf("%s %s: helper failed: %v", kind, at, err)
		}
		killed = true
	} else if err != nil {
		return false, err
	}
	what := fmt.Sprintf("%s healthy=%v adopt=%v kill at %s", kind, healthy, adopt, at)
	if _, err := inst.Recover(context.Background()); err != nil && !errors.Is(err, ErrRolledBack) {
		return killed, fmt.Errorf("%s: recover: %v", what, err)
	}
	var runs string
	if strings.HasPrefix(at, "fp:") {
		runs = run(t, live) // really run it
	} else {
		runs = intactScript(live) // same bytes and mode, without a process start
	}
	st, err := inst.State(context.Background())
	switch {
	case err != nil:
		return killed, fmt.Errorf("%s: state: %v", what, err)
	case runs != "1.0.0" && runs != "2.0.0":
		return killed, fmt.Errorf("%s: live program prints %q: neither version runs", what, runs)
	case !healthy && runs != "1.0.0":
		return killed, fmt.Errorf("%s: unhealthy 2.0.0 stayed live", what)
	case !stateAgrees(st, runs, adopt):
		return killed, fmt.Errorf("%s: state %+v pending %+v bad %v disagrees with live %s", what, st.Installed, st.Pending, st.Bad, runs)
	case kind != KindBinary:
		return killed, unknownSlots(dir, st)
	}
	return killed, nil
}

// stateAgrees reports whether st records live as installed. An adopted
// 1.0.0 is recorded with an unknown version and its SHA-256, or not at all
// if the install never got as far as saving an intent; 2.0.0 is never
// marked bad while it is live, nor recorded as installed while 1.0.0 is.
func stateAgrees(st State, live string, adopt bool) bool {
	if st.Pending != nil {
		return false
	}
	if _, bad := st.Bad[live]; bad {
		return false
	}
	if adopt && live == "1.0.0" {
		sum := sha256.Sum256(script("1.0.0", 0))
		return st.Installed == nil || st.Installed.Version == "" && st.Installed.SHA256 == hex.EncodeToString(sum[:])
	}
	return st.Installed != nil && st.Installed.Version == live
}

// unknownSlots fails if ROOT/APP/versions holds a slot the state does not
// name: a crash must not leak slots that prune never removes.
func unknownSlots(dir string, st State) error {
	known := map[string]bool{}
	for _, v := range []*Installed{st.Installed, st.Previous} {
		if v != nil {
			known[v.Version] = true
		}
	}
	for _, v := range st.History {
		known[v] = true
	}
	for v := range st.Bad {
		known[v] = true
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "srv", "app", "versions"))
	for _, e := range ents {
		if !known[e.Name()] {
			return fmt.Errorf("slot %s is on disk but not in the state %+v", e.Name(), st)
		}
	}
	return nil
}

var failpoints = []string{"copy", "binary.copied", "slots.copied", "extract", "slots.unpacked", "staged", "intent",
	"binary.backup", "slots.linked", "swapped", "trial", "checked", "committed", "rollback", "restored", "rolledback", "slots.prune"}

func TestKillAnywhere_R42(t *testing.T) {
	base := t.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		// SIGKILL keeps the page cache, so fsync costs nothing here: use
		// tmpfs to keep 200+ kills fast. Power loss is TestPowerLoss_R43.
		if d, err := os.MkdirTemp("/dev/shm", "ferry-kill"); err == nil {
			base = d
			defer os.RemoveAll(d)
		}
	}
	var kills atomic.Int64
	var wg sync.WaitGroup
	// One goroutine per strategy and health: the cost is process starts.
	type rig struct {
		kind  string
		adopt bool // a Binary's first self-update over a program ferry did not install
	}
	rigs := []rig{{KindBinary, false}, {KindBinary, true}, {KindTarGz, false}, {KindTarZst, false}, {KindZip, false}}
	for _, r := range rigs {
		kind, adopt := r.kind, r.adopt
		for _, healthy := range []bool{true, false} {
			wg.Go(func() {
				for _, at := range failpoints {
					killed, err := killOnce(t, base, kind, "fp:"+at, healthy, adopt)
					if err != nil {
						t.Error(err)
						return
					}
					if killed {
						kills.Add(1)
					}
				}
				for n := 1; ; n++ {
					killed, err := killOnce(t, base, kind, "op:"+strconv.Itoa(n), healthy, adopt)
					if err != nil {
						t.Error(err)
						return
					}
					if !killed {
						return
					}
					kills.Add(1)
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d kills", kills.Load())
	if kills.Load() < 200 {
		t.Fatalf("only %d kills, want at least 200", kills.Load())
	}
}

// busyHelper holds the app lock by running a slow health check.
func busyHelper() int {
	inst, h, _ := killRig(os.Getenv("FERRY_DIR"), KindBinary)
	h.healthFn = func(context.Context, []string) error {
		os.WriteFile(filepath.Join(os.Getenv("FERRY_DIR"), "holding"), nil, 0o600)
		select {}
	}
	var a Artifact
	b, _ := os.ReadFile(filepath.Join(os.Getenv("FERRY_DIR"), "artifact.json"))
	json.Unmarshal(b, &a)
	inst.Apply(context.Background(), a)
	return 0
}

// selfUpdateHelper installs the artifact over FERRY_TARGET and re-executes
// it, as a self-updating program would.
func selfUpdateHelper() int {
	dir := os.Getenv("FERRY_DIR")
	b := &Binary{App: "app", Target: os.Getenv("FERRY_TARGET"), StateDir: filepath.Join(dir, "state"),
		Health: &Health{Cmd: []string{os.Getenv("FERRY_TARGET")}}}
	var a Artifact
	raw, _ := os.ReadFile(filepath.Join(dir, "artifact.json"))
	json.Unmarshal(raw, &a)
	if _, err := b.Apply(context.Background(), a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 5
	}
	fmt.Fprintln(os.Stderr, Reexec(b.Target)) // returns only on failure
	return 6
}
