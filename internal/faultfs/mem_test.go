package faultfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func readAll(t *testing.T, fsys FS, name string) (string, error) {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

func write(t *testing.T, m *Mem, name, data string, sync bool) {
	t.Helper()
	f, err := m.Create(name, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
}

func TestMemRebootDropsUnsynced(t *testing.T) {
	m := NewMem()
	if err := m.WriteFile("/a", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	write(t, m, "/b", "unsynced data", false) // entry synced below, data never
	write(t, m, "/d", "both", true)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	write(t, m, "/c", "synced data", true) // data synced, entry never
	write(t, m, "/e", "x", true)
	if err := m.Rename("/e", "/a"); err != nil { // rename never synced
		t.Fatal(err)
	}
	m.Reboot()
	tests := []struct{ name, want string }{{"/a", "old"}, {"/b", ""}, {"/c", "<missing>"}, {"/d", "both"}}
	for _, tt := range tests {
		got, err := readAll(t, m, tt.name)
		if err != nil {
			got = "<missing>"
		}
		if got != tt.want {
			t.Errorf("%s after reboot = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMemFaultsAndSymlinks(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/r/v1", 0o755)
	write(t, m, "/r/v1/bin", "one", true)
	if err := m.Symlink("v1", "/r/cur"); err != nil {
		t.Fatal(err)
	}
	if got, _ := readAll(t, m, "/r/cur/bin"); got != "one" {
		t.Fatalf("through symlink: %q", got)
	}
	m.FailAt(m.Ops()+1, syscall.ENOSPC)
	if err := m.WriteFile("/r/x", []byte("y"), 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want ENOSPC, got %v", err)
	}
	if _, err := m.Lstat("/r/x"); err == nil {
		t.Fatal("failed write left a file")
	}
	m.CrashAt(m.Ops() + 1)
	if err := m.Mkdir("/r/z", 0o755); !errors.Is(err, ErrCrashed) {
		t.Fatalf("want crash, got %v", err)
	}
	if _, err := m.Lstat("/r"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("reads after crash must fail, got %v", err)
	}
	m.Reboot()
	if _, err := m.Lstat("/r"); err == nil {
		t.Fatal("/r was never synced into / and must vanish")
	}
}

func TestTreeContainment(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "in"), 0o755)
	os.Symlink("..", filepath.Join(dir, "in", "up"))
	m := NewMem()
	m.MkdirAll("/in", 0o755)
	m.Symlink("/", "/in/up")
	for name, fsys := range map[string]FS{"os": OS{}, "mem": m} {
		root := filepath.Join(dir, "in")
		if name == "mem" {
			root = "/in"
		}
		tr, err := fsys.OpenTree(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"../x", "/abs", "up/x"} {
			if f, err := tr.Create(bad, 0o644); err == nil {
				f.Close()
				t.Errorf("%s: Create(%q) escaped the tree", name, bad)
			}
		}
		tr.Close()
	}
	if _, err := os.Lstat(filepath.Join(dir, "x")); err == nil {
		t.Fatal("file created outside the tree")
	}
}

func TestLockBusy(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	for _, fsys := range []FS{OS{}, NewMem()} {
		l, err := fsys.Lock(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fsys.Lock(name); !errors.Is(err, ErrLocked) {
			t.Fatalf("second lock: %v, want ErrLocked", err)
		}
		l.Close()
		l2, err := fsys.Lock(name)
		if err != nil {
			t.Fatalf("lock after release: %v", err)
		}
		l2.Close()
	}
}
