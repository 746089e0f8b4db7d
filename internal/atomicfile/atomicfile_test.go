package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func wantFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s: %q, %v; want %q", path, got, err, want)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		wantFile(t, p, content)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	if n := entries(t, dir); len(n) != 1 {
		t.Errorf("left behind: %v", n)
	}
}

func TestWriteFillFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o600, func(w io.Writer) error { w.Write([]byte("half")); return boom })
	if !errors.Is(err, boom) || errors.Is(err, ErrNotDurable) {
		t.Fatalf("got %v", err)
	}
	wantFile(t, p, "old")
	if n := entries(t, dir); len(n) != 1 {
		t.Errorf("left behind: %v", n)
	}
}

// R30/R43: when the directory sync fails after the rename, the new bytes
// are in place, so the error must say so (ErrNotDurable) rather than claim
// the old content was kept.
func TestDirSyncFailsAfterRename_R43(t *testing.T) {
	eio := errors.New("injected EIO")
	syncDir = func(string) error { return eio }
	t.Cleanup(func() { syncDir = SyncDir })

	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(p, []byte("new"), 0o600)
	if !errors.Is(err, ErrNotDurable) || !errors.Is(err, eio) {
		t.Fatalf("Write: got %v, want ErrNotDurable wrapping the sync error", err)
	}
	wantFile(t, p, "new")
	if n := entries(t, dir); len(n) != 1 {
		t.Errorf("left behind: %v", n)
	}

	q := filepath.Join(dir, "g")
	err = Rename(p, q)
	if !errors.Is(err, ErrNotDurable) || !errors.Is(err, eio) {
		t.Fatalf("Rename: got %v, want ErrNotDurable", err)
	}
	wantFile(t, q, "new")

	syncDir = SyncDir
	if err := WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

func TestWriteFillPanics(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate")
			}
		}()
		Write(p, 0o600, func(w io.Writer) error { w.Write([]byte("half")); panic("boom") })
	}()
	wantFile(t, p, "old")
	if n := entries(t, dir); len(n) != 1 {
		t.Errorf("left behind: %v", n)
	}
}

// A symlink planted at the temporary file's name (made predictable here)
// is never written through: the write goes to a fresh name, the link's
// target keeps its bytes, and a symlink at the destination is replaced,
// not followed (R51).
func TestPlantedTempSymlink_R51(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	victim := filepath.Join(other, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	names := []string{".f.tmp-planted", ".f.tmp-fresh"}
	orig := tempName
	tempName = func(string) string {
		n := names[0]
		if len(names) > 1 {
			names = names[1:]
		}
		return n
	}
	t.Cleanup(func() { tempName = orig })
	if err := os.Symlink(victim, filepath.Join(dir, ".f.tmp-planted")); err != nil {
		t.Skip("no symlinks:", err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "f"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFile(t, victim, "precious")
	wantFile(t, filepath.Join(dir, "f"), "new")
	if fi, err := os.Lstat(filepath.Join(dir, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("destination: %v, %v; want a regular file", fi, err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, ".f.tmp-planted")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the planted link was touched: %v, %v", fi, err)
	}
}
