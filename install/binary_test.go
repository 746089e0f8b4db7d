//go:build unix

package install

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// run executes path and returns its trimmed output ("<error>" if it fails).
func run(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command(path).Output()
	for try := 0; errors.Is(err, syscall.ETXTBSY) && try < 50; try++ {
		time.Sleep(20 * time.Millisecond) // see runCmd
		out, err = exec.Command(path).Output()
	}
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimSpace(string(out))
}

func newBinary(t *testing.T) (*Binary, string) {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	return &Binary{App: "hello", Target: filepath.Join(dir, "bin", "hello"), StateDir: filepath.Join(dir, "state")}, dir
}

func TestBinaryApplyAndUpgrade(t *testing.T) {
	ctx := context.Background()
	b, dir := newBinary(t)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		res, err := b.Apply(ctx, artifact(t, dir, "hello", v, KindBinary, script(v, 0)))
		if err != nil || res.Version != v {
			t.Fatalf("apply %s: %+v %v", v, res, err)
		}
		if got := run(t, b.Target); got != v {
			t.Fatalf("after apply %s the target prints %q", v, got)
		}
	}
	if got := run(t, filepath.Join(dir, "bin", ".hello.ferry-old")); got != "1.0.0" {
		t.Errorf("kept previous prints %q, want 1.0.0", got)
	}
	st, err := b.State(ctx)
	if err != nil || st.Installed.Version != "1.1.0" || st.Previous.Version != "1.0.0" || st.Pending != nil {
		t.Fatalf("state %+v %v", st, err)
	}
	res, err := b.Apply(ctx, artifact(t, dir, "hello", "1.1.0", KindBinary, script("1.1.0", 0)))
	if err != nil || !res.Unchanged {
		t.Errorf("re-apply: %+v %v, want Unchanged", res, err)
	}
	bad := artifact(t, dir, "hello", "1.2.0", KindBinary, script("1.2.0", 0))
	bad.Hashes["sha256"][31] ^= 0x80
	if _, err := b.Apply(ctx, bad); !errors.Is(err, ErrVerify) {
		t.Fatalf("wrong hash: %v, want ErrVerify", err)
	}
	if got := run(t, b.Target); got != "1.1.0" {
		t.Fatalf("after a refused artifact the target prints %q", got)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "bin", ".hello.ferry-new-*")); len(leftovers) > 0 {
		t.Errorf("staging left behind: %v", leftovers)
	}
}

// TestSwapDownloadAfterVerify_R36 replaces the downloaded file with other
// bytes in a loop while installs run: whatever ends up at the target must
// be the signed bytes, or the install must fail with ErrVerify.
func TestSwapDownloadAfterVerify_R36(t *testing.T) {
	ctx := context.Background()
	b, dir := newBinary(t)
	good := script("2.0.0", 0)
	evil := script("666", 0)
	evilFile := filepath.Join(dir, "evil")
	for i := range 30 {
		v := "2.0." + strconv.Itoa(i)
		a := artifact(t, dir, "hello", v, KindBinary, good)
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			for !stop.Load() {
				os.WriteFile(evilFile, evil, 0o600)
				os.Rename(evilFile, a.File) // the attacker's swap
				os.WriteFile(a.File+".x", good, 0o600)
				os.Rename(a.File+".x", a.File)
			}
		})
		_, err := b.Apply(ctx, a)
		stop.Store(true)
		wg.Wait()
		if err != nil && !errors.Is(err, ErrVerify) {
			t.Fatalf("apply: %v", err)
		}
		if got := run(t, b.Target); got != "2.0.0" && (err == nil || got == "666") {
			t.Fatalf("target prints %q (apply err %v): unverified bytes installed", got, err)
		}
	}
}

func TestHealthFailuresRollBack_R44(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cases := []struct {
		name   string
		health func(target string) *Health
		want   string
	}{
		{"exits 1", func(p string) *Health { return &Health{Cmd: []string{p, "x"}} }, "exit status 1"},
		{"hangs", func(string) *Health { return &Health{Cmd: []string{"sleep", "5"}, Timeout: 200 * time.Millisecond} }, "hang"},
		{"crash loop", func(string) *Health {
			return &Health{Cmd: []string{"/bin/sh", "-c", "kill -9 $$"}, Retries: 2, Interval: 10 * time.Millisecond}
		}, "3 attempts failed"},
		{"url 503", func(string) *Health { return &Health{URL: srv.URL, Timeout: time.Second} }, "503"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			b, dir := newBinary(t)
			if _, err := b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
				t.Fatal(err)
			}
			b.Health = c.health(b.Target)
			if strings.Contains(c.name, "exits") {
				b.Health = &Health{Cmd: []string{b.Target}}
			}
			res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 1)))
			if !errors.Is(err, ErrRolledBack) || !res.RolledBack || !strings.Contains(res.Reason, c.want) {
				t.Fatalf("got %+v, %v; want a rollback because of %q", res, err, c.want)
			}
			if got := run(t, b.Target); got != "1.0.0" {
				t.Fatalf("after rollback the target prints %q", got)
			}
			st, _ := b.State(ctx)
			if st.Installed.Version != "1.0.0" || st.Bad["2.0.0"].Reason == "" || st.Pending != nil {
				t.Fatalf("state after rollback: %+v", st)
			}
			b.Health = nil
			if _, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0))); !errors.Is(err, ErrMarkedBad) {
				t.Fatalf("retrying a bad version: %v, want ErrMarkedBad", err)
			}
			if _, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.1", KindBinary, script("2.0.1", 0))); err != nil {
				t.Fatalf("a newer release after a bad one: %v", err)
			}
		})
	}
}

func TestHealthPassesCommits(t *testing.T) {
	ctx := context.Background()
	b, dir := newBinary(t)
	b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0)))
	marker := filepath.Join(dir, "restarted")
	b.Health = &Health{Cmd: []string{"/bin/sh", "-c", `test "$("$FERRY_PATH")" = "$FERRY_VERSION"`}}
	b.Restart = []string{"/bin/sh", "-c", `echo "$FERRY_VERSION" >> ` + marker}
	res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0)))
	if err != nil || res.Version != "2.0.0" || res.Previous != "1.0.0" {
		t.Fatalf("%+v %v", res, err)
	}
	if got := readFile(t, marker); got != "2.0.0\n" {
		t.Errorf("restart command saw %q", got)
	}
}

func TestRollbackFails_R45(t *testing.T) {
	for _, damage := range []string{"delete", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			ctx := context.Background()
			b, dir := newBinary(t)
			b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0)))
			failing := 0
			b.healthFn = func(context.Context, []string) error {
				failing++
				old := filepath.Join(dir, "bin", ".hello.ferry-old")
				if damage == "delete" {
					return errors.Join(errors.New("unhealthy"), os.Remove(old))
				}
				os.Remove(old)
				return errors.Join(errors.New("unhealthy"), os.WriteFile(old, script("evil", 0), 0o755))
			}
			_, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 1)))
			var re *RollbackError
			if !errors.As(err, &re) || re.Version != "2.0.0" || errors.Is(err, ErrRolledBack) {
				t.Fatalf("got %v, want a *RollbackError (and not a successful rollback)", err)
			}
			if got := run(t, b.Target); got == "evil" {
				t.Fatal("an unverified backup was restored")
			}
			st, err := b.State(ctx) // recovery retries the rollback and fails again, loudly
			if !errors.As(err, &re) {
				t.Errorf("recovery: got %v, want a *RollbackError again", err)
			}
			if st.Failure == nil || st.Pending == nil || st.Pending.Rollback == "" {
				t.Fatalf("failed rollback not recorded: %+v", st)
			}
		})
	}
}

var stateMangles = map[string]func([]byte) []byte{
	"truncated": func(b []byte) []byte { return b[:len(b)/2] },
	"flipped":   func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
	"empty":     func([]byte) []byte { return nil },
	"garbage":   func([]byte) []byte { return []byte("\x00\x01 not json") },
	"other app": func(b []byte) []byte { return []byte(strings.Replace(string(b), `"app":"hello"`, `"app":"other"`, 1)) },
	"deleted":   nil,
}

// damage applies mangle to the file at path (nil: removes it).
func damage(t *testing.T, path string, mangle func([]byte) []byte) {
	t.Helper()
	if mangle == nil {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mangle(raw), 0o600); err != nil {
		t.Fatal(err)
	}
}

// installedWithBadMark installs 1.0.0 and 2.0.0, then a 3.0.0 that fails
// its health check and is marked bad.
func installedWithBadMark(t *testing.T) (*Binary, string) {
	t.Helper()
	ctx := context.Background()
	b, dir := newBinary(t)
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if _, err := b.Apply(ctx, artifact(t, dir, "hello", v, KindBinary, script(v, 0))); err != nil {
			t.Fatal(err)
		}
	}
	b.healthFn = func(context.Context, []string) error { return errors.New("unhealthy") }
	if _, err := b.Apply(ctx, artifact(t, dir, "hello", "3.0.0", KindBinary, script("3.0.0", 1))); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("3.0.0: %v, want a rollback", err)
	}
	b.healthFn = nil
	return b, dir
}

// A damaged state file does not take the installed version and the bad
// marks with it: they come back from the copy (R52).
func TestCorruptStateKeepsFloorAndBadMarks_R52(t *testing.T) {
	for name, mangle := range stateMangles {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b, dir := installedWithBadMark(t)
			sp := filepath.Join(b.StateDir, "state.json")
			damage(t, sp, mangle)
			st, err := b.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Lost || st.Installed == nil || st.Installed.Version != "2.0.0" {
				t.Fatalf("state after damage: installed %+v, lost %v; want 2.0.0 from the copy", st.Installed, st.Lost)
			}
			if _, ok := st.Bad["3.0.0"]; !ok {
				t.Fatalf("bad mark of 3.0.0 lost: %+v", st.Bad)
			}
			if _, err := b.Apply(ctx, artifact(t, dir, "hello", "3.0.0", KindBinary, script("3.0.0", 0))); !errors.Is(err, ErrMarkedBad) {
				t.Fatalf("3.0.0 installed again after the state file was damaged: %v", err)
			}
			if _, err := os.ReadFile(sp); err != nil {
				t.Fatalf("state file not rewritten from the copy: %v", err)
			}
		})
	}
}

// With both the file and its copy damaged, the state is rebuilt from disk
// and says so (Lost), and a later install clears it (R52).
func TestCorruptStateAndCopy_R52(t *testing.T) {
	for name, mangle := range stateMangles {
		if mangle == nil {
			continue // both files gone is a fresh state: there is nothing to tell it from
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b, dir := installedWithBadMark(t)
			sp := filepath.Join(b.StateDir, "state.json")
			damage(t, sp, mangle)
			damage(t, sp+copySuffix, mangle)
			st, err := b.State(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := hashFile(b.fsys(), b.Target)
			if !st.Lost || st.Installed == nil || st.Installed.SHA256 != want || st.Installed.Version != "" {
				t.Fatalf("rebuilt state %+v (lost %v) does not describe the live executable as lost", st.Installed, st.Lost)
			}
			if _, err := os.Stat(sp + ".corrupt"); err != nil {
				t.Errorf("corrupt state not kept aside: %v", err)
			}
			if st, err = b.State(ctx); err != nil || !st.Lost {
				t.Fatalf("Lost not kept across loads: %v %v", st.Lost, err)
			}
			if _, err := b.Apply(ctx, artifact(t, dir, "hello", "4.0.0", KindBinary, script("4.0.0", 0))); err != nil || run(t, b.Target) != "4.0.0" {
				t.Fatalf("install after recovery: %v", err)
			}
			if st, _ := b.State(ctx); st.Lost {
				t.Error("a committed install did not clear Lost")
			}
		})
	}
}

// Installing the bytes that are already live (ferry update --out, then
// --install binary on the same file) records the version and changes
// nothing on disk: no swap, no backup of identical bytes.
func TestReinstallSameBytesIsNoop(t *testing.T) {
	ctx := context.Background()
	b, dir := newBinary(t)
	body := script("1.1.0", 0)
	if err := os.WriteFile(b.Target, body, 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(b.Target)
	res, err := b.Apply(ctx, artifact(t, dir, "hello", "1.1.0", KindBinary, body))
	if err != nil || !res.Unchanged || res.Version != "1.1.0" {
		t.Fatalf("got %+v %v, want 1.1.0 unchanged", res, err)
	}
	after, _ := os.Stat(b.Target)
	if !os.SameFile(before, after) {
		t.Error("the live executable was replaced by identical bytes")
	}
	if _, err := os.Lstat(filepath.Join(dir, "bin", ".hello.ferry-old")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a backup of identical bytes was kept: %v", err)
	}
	if st, _ := b.State(ctx); st.Installed == nil || st.Installed.Version != "1.1.0" {
		t.Fatalf("state does not record 1.1.0: %+v", st.Installed)
	}
	// Different bytes are a real install, with a backup.
	res, err = b.Apply(ctx, artifact(t, dir, "hello", "1.2.0", KindBinary, script("1.2.0", 0)))
	if err != nil || res.Unchanged || res.Previous != "1.1.0" || run(t, b.Target) != "1.2.0" {
		t.Fatalf("1.2.0: %+v %v", res, err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := &State{App: "a", Installed: &Installed{Version: "1.0.0", SHA256: "ab"}, Pending: &Pending{Version: "2.0.0", Tries: 1},
		Bad: map[string]Bad{"0.1.0": {Reason: "r"}}, History: []string{"0.1.0", "1.0.0"}}
	b, err := encodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeState(b, "a")
	if err != nil || got.Pending.Tries != 1 || got.Bad["0.1.0"].Reason != "r" || got.Installed.SHA256 != "ab" {
		t.Fatalf("%+v %v", got, err)
	}
	for i := range b { // every single byte flip is detected or harmless
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		if s, err := decodeState(c, "a"); err == nil && (s.Installed == nil || s.Installed.Version != "1.0.0") {
			t.Fatalf("flip at %d gave a different valid state", i)
		}
	}
}

// TestStateRefusesBadVersions: a state file naming a version package
// release refuses (1.1.0+rebuild escaping the mark against 1.1.0, say) is
// not ferry's record and is refused like a corrupt one.
func TestStateRefusesBadVersions(t *testing.T) {
	for _, st := range []*State{
		{App: "a", Bad: map[string]Bad{"1.1.0+rebuild": {Reason: "r"}}},
		{App: "a", Installed: &Installed{Version: "v1.0.0"}},
		{App: "a", Previous: &Installed{Version: "1.0"}},
		{App: "a", Pending: &Pending{Version: "1.0.0+x"}},
		{App: "a", History: []string{"1.0.0", "1"}},
		{App: "a", Failure: &RollbackFailed{Version: "../1.0.0"}},
	} {
		b, err := encodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeState(b, "a"); err == nil || !strings.Contains(err.Error(), "invalid version") {
			t.Errorf("decodeState(%s) = %v, want an invalid version error", b, err)
		}
	}
	ok := &State{App: "a", Installed: &Installed{Version: ""}, Previous: &Installed{Version: "1.0.0-rc.1"}}
	b, _ := encodeState(ok)
	if _, err := decodeState(b, "a"); err != nil {
		t.Errorf("an adopted version was refused: %v", err)
	}
}

// TestSelfUpdateReexec runs a copy of the test binary that replaces itself
// with a new program and re-executes into it with the same arguments.
func TestSelfUpdateReexec(t *testing.T) {
	dir := t.TempDir()
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "app")
	if err := os.WriteFile(target, self, 0o755); err != nil {
		t.Fatal(err)
	}
	newer := []byte("#!/bin/sh\necho \"2.0.0 args:$*\"\n")
	a, _ := json.Marshal(artifact(t, dir, "app", "2.0.0", KindBinary, newer))
	os.WriteFile(filepath.Join(dir, "artifact.json"), a, 0o600)
	cmd := exec.Command(target, "-test.run=^$", "extra")
	cmd.Env = append(os.Environ(), helperEnv+"=selfupdate", "FERRY_DIR="+dir, "FERRY_TARGET="+target)
	out, err := cmd.Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != "2.0.0 args:-test.run=^$ extra" {
		t.Fatalf("self-update printed %q, err %v", got, err)
	}
	if string(self) != readFile(t, filepath.Join(dir, ".app.ferry-old")) {
		t.Error("the previous executable was not kept")
	}
}

// TestInterruptedTrialsCrashLoop_R44: every trial dies before it decides
// (here: the context is cancelled, as when the process is killed); after
// MaxTries started trials the next recovery rolls back instead of starting
// the new version again.
func TestInterruptedTrialsCrashLoop_R44(t *testing.T) {
	b, dir := newBinary(t)
	b.Apply(context.Background(), artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0)))
	trials := 0
	var cancel context.CancelFunc
	b.healthFn = func(ctx context.Context, _ []string) error {
		trials++
		cancel() // the process "dies" during the trial
		return ctx.Err()
	}
	die := func() context.Context {
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		return ctx
	}
	if _, err := b.Apply(die(), artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0))); err == nil {
		t.Fatal("an interrupted trial committed")
	}
	for range 2 {
		if _, err := b.Recover(die()); err == nil {
			t.Fatal("an interrupted trial committed")
		}
	}
	res, err := b.Recover(context.Background())
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(res.Reason, "crash loop") || trials != 3 {
		t.Fatalf("after %d interrupted trials: %+v %v, want a crash-loop rollback", trials, res, err)
	}
	if got := run(t, b.Target); got != "1.0.0" {
		t.Fatalf("target prints %q", got)
	}
}
