//go:build unix

package install

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-updates/ferry/internal/faultfs"
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
	for _, v := range []string{"../1.0.0", "1.0.0/x", "", ".", "..", "$(reboot)", "a b", "1.0.0\x00", "C:1", `1\2`,
		"x", "1.0", "v1.0.0", "1.1.0+rebuild"} {
		a := artifact(t, dir, "app", "1.0.0", KindBinary, []byte("x"))
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

// ROOT/APP/.staging is where an artifact is verified and unpacked: one
// planted as a symlink (to a directory the attacker reads or writes), one
// that group or others may write, or one owned by someone else is refused
// before anything is written, and left as it is (R51).
func TestSlotsStagingPrivate_R51(t *testing.T) {
	cases := []struct {
		name  string
		plant func(t *testing.T, staging, attacker string)
	}{
		{"symlink", func(t *testing.T, staging, attacker string) {
			if err := os.Symlink(attacker, staging); err != nil {
				t.Skip("no symlinks:", err)
			}
		}},
		{"group-writable", func(t *testing.T, staging, _ string) {
			if err := os.Mkdir(staging, 0o700); err != nil {
				t.Fatal(err)
			}
			os.Chmod(staging, 0o770)
		}},
		{"someone else's", func(t *testing.T, staging, _ string) {
			if err := os.Mkdir(staging, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(staging, 65534, 65534); err != nil {
				t.Skip("cannot give a directory away (not root):", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			dir, attacker := t.TempDir(), t.TempDir()
			s := &Slots{Root: filepath.Join(dir, "srv"), App: "app"}
			if err := os.MkdirAll(filepath.Join(s.Root, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			// The attacker wins the race right after the engine's cleanup
			// removed whatever was there before.
			staging := filepath.Join(s.Root, "app", ".staging")
			s.fs = &racer{staging: staging, plant: func() { c.plant(t, staging, attacker) }}
			body := tarBytes(t, KindTarGz, []entry{{name: "bin/app", body: string(script("1.0.0", 0)), mode: 0o755}})
			res, err := s.Apply(ctx, artifact(t, dir, "app", "1.0.0", KindTarGz, body))
			if err == nil || !strings.Contains(err.Error(), staging) {
				t.Fatalf("apply with a planted .staging: %+v %v; want a refusal naming %s", res, err, staging)
			}
			if ents, _ := os.ReadDir(attacker); len(ents) > 0 {
				t.Fatalf("files written into the attacker's directory: %v", ents)
			}
			if _, err := os.Lstat(staging); err != nil {
				t.Fatalf("the refused .staging was removed: %v", err)
			}
			if _, err := os.Lstat(s.Current()); err == nil {
				t.Fatal("current exists after a refused install")
			}
		})
	}
}

// racer is the OS file system with an attacker who plants something at
// staging right after it is removed, once.
type racer struct {
	faultfs.OS
	staging string
	plant   func()
}

func (r *racer) RemoveAll(name string) error {
	err := r.OS.RemoveAll(name)
	if name == r.staging && r.plant != nil {
		p := r.plant
		r.plant = nil
		p()
	}
	return err
}
