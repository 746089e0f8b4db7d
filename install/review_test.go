//go:build unix

package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/internal/faultfs"
)

// preinstalled writes 1.0.0 over b.Target by other means (a package
// manager), so that the next Apply is a first self-update.
func preinstalled(t *testing.T, b *Binary) string {
	t.Helper()
	body := script("1.0.0", 0)
	if err := os.WriteFile(b.Target, body, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// A program ferry did not install self-updates for the first time, and the
// new release fails its health check: the program it replaced runs again.
func TestFirstSelfUpdateFailsHealth_R44(t *testing.T) {
	ctx := context.Background()
	b, dir := newBinary(t)
	sha1 := preinstalled(t, b)
	b.Health = &Health{Cmd: []string{b.Target}}
	res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 1)))
	if !errors.Is(err, ErrRolledBack) || !res.RolledBack {
		t.Fatalf("got %+v, %v; want a rollback", res, err)
	}
	if got := run(t, b.Target); got != "1.0.0" {
		t.Fatalf("after the rollback the target prints %q, want 1.0.0", got)
	}
	st, err := b.State(ctx)
	switch {
	case err != nil:
		t.Fatal(err)
	case st.Installed == nil || st.Installed.SHA256 != sha1 || st.Installed.Version != "":
		t.Fatalf("installed %+v, want the adopted program (sha256 %s, version unknown)", st.Installed, sha1)
	case st.Bad["2.0.0"].Reason == "" || st.Pending != nil || st.Failure != nil:
		t.Fatalf("state %+v: want 2.0.0 marked bad, nothing pending, no failure", st)
	}
}

// The same first self-update, interrupted right after its intent: recovery
// finds the adopted program live and drops the install; 2.0.0 is neither
// installed nor marked bad, and a retry installs it.
func TestFirstSelfUpdateCrashAtIntent_R42(t *testing.T) {
	ctx := context.Background()
	for _, at := range []string{"intent", "binary.backup"} {
		b, dir := newBinary(t)
		preinstalled(t, b)
		b.failpoint = func(n string) {
			if n == at {
				panic("crash")
			}
		}
		func() {
			defer func() { recover() }()
			b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0)))
		}()
		b.failpoint = nil
		if _, err := b.Recover(ctx); err != nil {
			t.Fatalf("%s: recover: %v", at, err)
		}
		st, err := b.State(ctx)
		if got := run(t, b.Target); got != "1.0.0" || err != nil || st.Pending != nil || len(st.Bad) > 0 ||
			st.Installed == nil || st.Installed.Version != "" {
			t.Fatalf("%s: target prints %q; state %+v (%v)", at, got, st, err)
		}
		if res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0))); err != nil || res.Version != "2.0.0" {
			t.Fatalf("%s: retry: %+v %v", at, res, err)
		}
	}
}

// failSyncAfterSwap fails the directory sync that follows the first
// rename of a new executable over target.
type failSyncAfterSwap struct {
	faultfs.OS
	target        string
	renamed, done bool
}

func (f *failSyncAfterSwap) Rename(a, b string) error {
	err := f.OS.Rename(a, b)
	f.renamed = err == nil && !f.done && b == f.target && strings.Contains(a, ".ferry-new-")
	return err
}

func (f *failSyncAfterSwap) SyncDir(d string) error {
	if f.renamed {
		f.renamed, f.done = false, true
		return errors.New("EIO (injected)")
	}
	return f.OS.SyncDir(d)
}

// The swap's rename succeeds but the directory sync fails: the new version
// is live, so Apply runs its trial and reports what the state says.
func TestSwapSyncFailsResultAgrees_R46(t *testing.T) {
	ctx := context.Background()
	for _, healthy := range []bool{true, false} {
		b, dir := newBinary(t)
		if _, err := b.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
			t.Fatal(err)
		}
		code, want := 0, "2.0.0"
		if !healthy {
			code, want = 1, "1.0.0"
		}
		b.Health = &Health{Cmd: []string{b.Target}}
		b.fs = &failSyncAfterSwap{target: b.Target}
		res, err := b.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", code)))
		b.fs = nil
		st, serr := b.State(ctx)
		if serr != nil || st.Installed == nil || st.Installed.Version != want || res.Version != want {
			t.Fatalf("healthy=%v: Apply %+v %v; state %+v %v; want %s", healthy, res, err, st.Installed, serr, want)
		}
		if healthy && err != nil || !healthy && !errors.Is(err, ErrRolledBack) {
			t.Fatalf("healthy=%v: Apply error %v disagrees with the state (%s installed)", healthy, err, want)
		}
		if got := run(t, b.Target); got != want {
			t.Fatalf("healthy=%v: target prints %q, want %s", healthy, got, want)
		}
	}
}

// Two installers of one Target with different state directories (say the
// CLI and the application's own SelfUpdate) are serialized by the lock next
// to the Target.
func TestSameTargetOtherStateDirBusy_R50(t *testing.T) {
	ctx := context.Background()
	a, dir := newBinary(t)
	if _, err := a.Apply(ctx, artifact(t, dir, "hello", "1.0.0", KindBinary, script("1.0.0", 0))); err != nil {
		t.Fatal(err)
	}
	b := &Binary{App: "hello", Target: a.Target, StateDir: filepath.Join(dir, "state2")}
	var second error
	a.healthFn = func(context.Context, []string) error {
		_, second = b.Apply(ctx, artifact(t, dir, "hello", "3.0.0", KindBinary, script("3.0.0", 0)))
		return nil
	}
	if _, err := a.Apply(ctx, artifact(t, dir, "hello", "2.0.0", KindBinary, script("2.0.0", 0))); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(second, ErrBusy) {
		t.Fatalf("second installer during the first one's trial: %v, want ErrBusy", second)
	}
	if got := run(t, a.Target); got != "2.0.0" {
		t.Fatalf("target prints %q, want 2.0.0", got)
	}
}

// A crash after staging a slot but before the intent leaves no slot that
// pruning never removes.
func TestNoLeakedSlotAfterCrash_R42(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := &Slots{Root: filepath.Join(dir, "srv"), App: "app", Keep: 2}
	art := func(v string) Artifact { return artifact(t, dir, "app", v, KindBinary, script(v, 0)) }
	if _, err := s.Apply(ctx, art("1.0.0")); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"staged", "intent"} {
		s.failpoint = func(n string) {
			if n == at {
				panic("crash")
			}
		}
		func() { defer func() { recover() }(); s.Apply(ctx, art("2.0.0")) }()
		s.failpoint = nil
		if _, err := s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"3.0.0", "4.0.0", "5.0.0"} {
		if _, err := s.Apply(ctx, art(v)); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root, "app", "versions"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"4.0.0", "5.0.0"}; !slices.Equal(names, want) {
		t.Fatalf("Keep=2: versions on disk %v, want %v", names, want)
	}
}
