package metastore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-updates/ferry/internal/metastore"
)

// R24: keys map to one file each inside the store directory, distinct
// even where case is folded, and never a Windows device name.
func TestDirRoleNames_R24(t *testing.T) {
	dir := t.TempDir()
	s := metastore.Dir(filepath.Join(dir, "meta"))
	names := []string{"root", "a", "../escape", "/abs", `C:\x`, "%2e%2e", "a\x00b", "?#", "..", ".", "a/b/c", "ümlaut", "CON",
		"timestamp", "Timestamp", "ROOT", "Snapshot.", "snapshot", "con", "nul.json", "COM1", "lpt9.txt", "a", "A", "a.", "a ", "2.root"}
	for _, n := range names {
		if err := s.Save(n, []byte(n)); err != nil {
			t.Fatalf("save %q: %v", n, err)
		}
	}
	for _, n := range names {
		got, err := s.Load(n)
		if err != nil || string(got) != n {
			t.Fatalf("load %q: %q %v", n, got, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	folded := map[string]string{}
	for _, ent := range entries {
		if prev, ok := folded[strings.ToLower(ent.Name())]; ok {
			t.Errorf("%s and %s are one file where case is folded", prev, ent.Name())
		}
		folded[strings.ToLower(ent.Name())] = ent.Name()
		info, _ := ent.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", ent.Name(), info.Mode())
		}
	}
	if want := len(names) - 1; len(entries) != want { // "a" is saved twice
		t.Fatalf("entries %d, want %d", len(entries), want)
	}
	for _, top := range []string{"root", "timestamp", "snapshot"} {
		if _, ok := folded[top+".json"]; !ok {
			t.Errorf("no %s.json", top)
		}
	}
	top, _ := os.ReadDir(dir)
	if len(top) != 1 {
		t.Fatalf("files escaped the store directory: %v", top)
	}
	if _, err := s.Load(""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty role: %v", err)
	}
}
