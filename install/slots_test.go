//go:build unix

package install

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestSlotsUpgradeRollbackAndPrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := &Slots{Root: filepath.Join(dir, "srv"), App: "app", Keep: 3}
	live := filepath.Join(s.Current(), "bin", "app")
	s.Health = &Health{Cmd: []string{live}, Timeout: 5 * time.Second}
	versions := []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"}
	for _, v := range versions {
		body := tarBytes(t, KindTarGz, []entry{{name: "bin/app", body: string(script(v, 0)), mode: 0o755}})
		res, err := s.Apply(ctx, artifact(t, dir, "app", v, KindTarGz, body))
		if err != nil || res.Version != v {
			t.Fatalf("apply %s: %+v %v", v, res, err)
		}
		if got := run(t, live); got != v {
			t.Fatalf("current runs %q, want %s", got, v)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root, "app", "versions"))
	var kept []string
	for _, e := range ents {
		kept = append(kept, e.Name())
	}
	if len(kept) != 3 || kept[0] != "1.2.0" || kept[2] != "1.4.0" {
		t.Fatalf("kept slots %v, want the last 3", kept)
	}
	// A broken release: its health check fails and current goes back.
	body := tarBytes(t, KindTarGz, []entry{{name: "bin/app", body: string(script("1.5.0", 1)), mode: 0o755}})
	res, err := s.Apply(ctx, artifact(t, dir, "app", "1.5.0", KindTarGz, body))
	if !errors.Is(err, ErrRolledBack) || res.Version != "1.4.0" {
		t.Fatalf("bad release: %+v %v, want rollback to 1.4.0", res, err)
	}
	if got := run(t, live); got != "1.4.0" {
		t.Fatalf("after rollback current runs %q", got)
	}
	if _, err := os.Stat(filepath.Join(s.Root, "app", "versions", "1.5.0")); err == nil {
		t.Error("the bad version's slot was not pruned")
	}
	st, _ := s.State(ctx)
	if st.Installed.Version != "1.4.0" || st.Previous.Version != "1.3.0" || st.Bad["1.5.0"].Reason == "" {
		t.Fatalf("state %+v", st)
	}
	raw, _ := os.ReadFile(filepath.Join(s.Root, "app", "state.json"))
	var f stateFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Format != stateFormat {
		t.Fatalf("state file: %v %q", err, f.Format)
	}
}

func TestBadNamesRefused(t *testing.T) {
	dir := t.TempDir()
	s := &Slots{Root: dir, App: "app"}
	for _, v := range []string{"../1.0.0", "1.0.0/x", "", ".", "..", "$(reboot)", "a b", "1.0.0\x00", "C:1", `1\2`} {
		a := artifact(t, dir, "app", "x", KindBinary, []byte("x"))
		a.Version = v
		if _, err := s.Apply(context.Background(), a); err == nil {
			t.Errorf("version %q accepted", v)
		}
	}
	a := artifact(t, dir, "app", "1.0.0", KindBinary, []byte("x"))
	a.Hashes = map[string][]byte{"md5": make([]byte, 16)}
	if _, err := s.Apply(context.Background(), a); err == nil {
		t.Error("an artifact with no known hash was accepted")
	}
}

// TestSecondInstallerBusy_R50 runs a helper process that holds the lock in
// the middle of an install; this process must get ErrBusy, not wait and not
// interleave.
func TestSecondInstallerBusy_R50(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	inst, _, _ := killRig(dir, KindBinary)
	if _, err := inst.Apply(context.Background(), killArtifact(t, dir, KindBinary, "1.0.0", 0)); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(killArtifact(t, dir, KindBinary, "2.0.0", 0))
	os.WriteFile(filepath.Join(dir, "artifact.json"), a, 0o600)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=busy", "FERRY_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(dir, "holding")); err == nil {
			break
		}
		if i > 500 {
			t.Fatal("helper never took the lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := inst.Apply(context.Background(), killArtifact(t, dir, KindBinary, "3.0.0", 0))
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second install: %v, want ErrBusy", err)
	}
	if _, err := inst.Recover(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("recover during install: %v, want ErrBusy", err)
	}
}

func TestFirstInstallUnhealthy_R45(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := &Slots{Root: filepath.Join(dir, "srv"), App: "app"}
	s.healthFn = func(context.Context, []string) error { return errors.New("unhealthy") }
	_, err := s.Apply(ctx, artifact(t, dir, "app", "1.0.0", KindBinary, script("1.0.0", 1)))
	var re *RollbackError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want *RollbackError (nothing to roll back to)", err)
	}
	st, err := s.State(ctx)
	if err != nil || st.Installed == nil || st.Installed.Version != "1.0.0" || st.Pending != nil || st.Bad["1.0.0"].Reason == "" {
		t.Fatalf("state %+v pending %+v: %v", st.Installed, st.Pending, err)
	}
	s.healthFn = nil
	if _, err := s.Apply(ctx, artifact(t, dir, "app", "1.0.1", KindBinary, script("1.0.1", 0))); err != nil {
		t.Fatalf("a newer release after a failed first install: %v", err)
	}
}
