package trust_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-updates/ferry/trust"
)

// foldStore is DirStore's naming on a case-insensitive file system (macOS,
// Windows by default): files are found by their DirStore name, folded to
// lower case.
type foldStore struct {
	mu    sync.Mutex
	files map[string][]byte
}

func newFoldStore() *foldStore { return &foldStore{files: map[string][]byte{}} }

func (s *foldStore) file(role string) (string, error) {
	name, err := trust.StoreFileName(role)
	return strings.ToLower(name), err
}

func (s *foldStore) Load(role string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := s.file(role)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, fs.ErrNotExist)
	}
	data, ok := s.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return data, nil
}

func (s *foldStore) Save(role string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := s.file(role)
	if err != nil {
		return err
	}
	s.files[name] = append([]byte(nil), data...)
	return nil
}

// R24 on a case-insensitive file system: delegated roles named like a
// top-level role in another case ("Timestamp") are stored in files of
// their own. Before, "Timestamp.json" replaced timestamp.json there, so the
// next start had no trusted timestamp and accepted an older one.
func TestCaseFoldingStore_R24(t *testing.T) {
	for _, role := range []string{"Timestamp", "TIMESTAMP", "Snapshot", "Root", "Targets"} {
		t.Run(role, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			e.repo.Delegate("targets", role, []string{"*"}, false)
			e.repo.AddTarget(role, "f", []byte("x"), nil)
			e.repo.BumpRoot() // so that root.json is stored too
			e.repo.Publish()
			oldTS := e.repo.Bytes("timestamp.json")
			e.repo.PublishTimestamp()
			st := newFoldStore()
			cfg := e.config()
			cfg.Store = st
			c, err := trust.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Refresh(ctx, e.repo); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Target(ctx, e.repo, "f"); err != nil {
				t.Fatal(err)
			}
			// A restart, then the attacker replays the older timestamp.
			e.repo.Serve("timestamp.json", oldTS)
			c, err = trust.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantKind(t, c.Refresh(ctx, e.repo), trust.ErrRollback)
			if len(st.files) != 6 {
				t.Fatalf("store holds %d files, want 6 (four top-level roles, 2.root and %s)", len(st.files), role)
			}
		})
	}
}

// R24: keys map to one file each inside the store directory, distinct
// even where case is folded, and never a Windows device name.
func TestDirStoreRoleNames_R24(t *testing.T) {
	dir := t.TempDir()
	s := trust.DirStore(filepath.Join(dir, "meta"))
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
