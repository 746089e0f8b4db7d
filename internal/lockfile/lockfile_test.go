package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-updates/ferry/internal/safefile"
)

// A held lock is refused with the holder's pid, and taken again once it
// is released.
func TestLockHeldNamesPID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(p)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLocked) || held.PID != os.Getpid() {
		t.Fatalf("second lock: %v; want a HeldError naming pid %d", err, os.Getpid())
	}
	l.Close()
	l, err = Lock(p)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Close()
}

// A symlink planted at the lock's name is never followed: the file it
// points to keeps its bytes (R51).
func TestLockPlantedSymlink_R51(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "lock")
	if err := os.Symlink(victim, p); err != nil {
		t.Skip("no symlinks:", err)
	}
	if _, err := Lock(p); !errors.Is(err, safefile.ErrUnsafe) {
		t.Fatalf("lock through a symlink: %v; want a refusal", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("victim now holds %q", b)
	}
}
