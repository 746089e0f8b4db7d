//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// OpenPartial creates a missing file 0600 and reopens one of this user;
// anything planted at the name is refused and left as it is (R51).
func TestOpenPartialRefusesPlanted_R51(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, p string)
	}{
		{"symlink", func(t *testing.T, p string) { must(t, os.Symlink(victim, p)) }},
		{"hard link", func(t *testing.T, p string) { must(t, os.Link(victim, p)) }},
		{"group-writable", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte("x"), 0o600))
			must(t, os.Chmod(p, 0o660))
		}},
		{"directory", func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o700)) }},
		{"someone else's", func(t *testing.T, p string) {
			must(t, os.WriteFile(p, []byte("x"), 0o600))
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Skip("cannot give a file away (not root):", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f.part")
			c.plant(t, p)
			before, _ := os.Lstat(p)
			f, err := OpenPartial(p)
			if err == nil {
				f.Close()
			}
			var ue *UnsafeError
			if c.name != "directory" && (!errors.Is(err, ErrUnsafe) || !errors.As(err, &ue) || ue.Path != p) {
				t.Fatalf("OpenPartial: %v; want an UnsafeError for %s", err, p)
			}
			if err == nil {
				t.Fatal("OpenPartial opened a planted file")
			}
			if after, err := os.Lstat(p); err != nil || !os.SameFile(before, after) || after.Size() != before.Size() {
				t.Fatalf("the planted file was changed: %v", err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Fatalf("victim now holds %q", b)
			}
		})
	}
	p := filepath.Join(dir, "new.part")
	f, err := OpenPartial(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("abc"))
	f.Close()
	if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v, %v; want mode 0600", fi, err)
	}
	if f, err = OpenPartial(p); err != nil {
		t.Fatalf("reopening our own file: %v", err)
	}
	f.Close()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
